"""Planned switchovers through a real rhizome-proxy fail no new connection and lose nothing.

etcd, three keepers, a sentinel and rhizome-proxy on loopback (the bench's
RhizomeSystem); clients write every 10 ms through the proxy, three opening a
new connection per transaction and one keeping its session. Before blocking
writes the proxies hold new clients and let the logins under way finish, so
a login is never cut: only a transaction in flight on an open session may
fail (the fence closes those sessions).
"""

from __future__ import annotations

import time

import pytest

from bench.probes import WritingClient, create_table, failures
from bench.rhizome_system import RhizomeSystem
from rhizome.config import ETCD_APIS

pytestmark = pytest.mark.integration

SWITCHOVERS = 3
NEW_CONNECTION_CLIENTS = 3


@pytest.fixture
def system(tmp_path, etcd, etcd_api):
    rhizome = RhizomeSystem(tmp_path / "rhizome", etcd, etcd_api=etcd_api)
    try:
        rhizome.start()
    except AssertionError as error:
        raise AssertionError(f"{error}\n{rhizome.diagnostics()}") from error
    yield rhizome
    rhizome.stop()


@pytest.mark.parametrize("etcd_api", ETCD_APIS)
def test_switchovers_fail_no_new_connection_and_lose_no_write(system):
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
    results = system.cluster.state().command_results[-SWITCHOVERS:]
    assert [result.outcome for result in results] == ["done"] * SWITCHOVERS
