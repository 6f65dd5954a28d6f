"""Planned switchovers under clients writing through rhizome-proxy (plain text or TLS)."""

from __future__ import annotations

import time

from bench.probes import WritingClient, create_table, failures
from bench.rhizome_system import RhizomeSystem

SWITCHOVERS = 3
NEW_CONNECTION_CLIENTS = 3


def check_switchovers_under_writers(system: RhizomeSystem) -> None:
    """SWITCHOVERS switchovers while clients write through system.endpoint (three opening
    a new connection per transaction, one keeping its session): no failed connect, no
    lost write, every switchover done."""
    endpoint = system.endpoint
    create_table(endpoint)
    clients = [
        WritingClient(endpoint, f"new{number}", new_connection_per_transaction=True)
        for number in range(NEW_CONNECTION_CLIENTS)
    ]
    clients.append(WritingClient(endpoint, "session"))
    started = time.monotonic()
    for client in clients:
        client.start()
    try:
        for _ in range(SWITCHOVERS):
            time.sleep(1)
            system.switchover()
            system.wait_healthy()
        time.sleep(1)
    finally:
        for client in clients:
            client.stop()
    for client in clients:
        failed_connects, _ = failures(client.attempts, started)
        errors = [attempt.error for attempt in client.attempts if attempt.connection_failed]
        assert failed_connects == 0, f"{client.name}: {errors}\n{system.diagnostics()}"
        assert client.lost_writes() == 0, client.name
        assert client.attempts[-1].acknowledged, f"{client.name} writes after the switchovers"
    state = system.cluster.state()
    assert state is not None
    results = state.command_results[-SWITCHOVERS:]
    assert [result.outcome for result in results] == ["done"] * SWITCHOVERS
