"""A switchover under a stream of new connections refuses none; the hold timeout explains
itself; before blocking, the proxy lets the logins under way finish."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import dataclass

import psycopg2
import pytest

from tests.harness.ports import LOOPBACK
from tests.harness.postgres import POSTGRES_BIN
from tests.integration.test_proxy_support import (
    FAST_TIMING,
    ProxyProcess,
    TcpRelay,
    server_port,
    wait_for,
)

pytestmark = pytest.mark.integration

CLIENT_THREADS = 4
HELD_PHASE = 1.5


@dataclass(frozen=True)
class Attempt:
    started: float
    finished: float
    port: int | None
    error: str | None


def connect_continuously(proxy: ProxyProcess, stop: threading.Event, attempts: list[Attempt]):
    while not stop.is_set():
        started = time.monotonic()
        try:
            connection = proxy.connect()
            try:
                port, error = server_port(connection), None
            finally:
                connection.close()
        except psycopg2.Error as failure:
            port, error = None, str(failure).strip()
        attempts.append(Attempt(started, time.monotonic(), port, error))


def test_switchover_under_new_connections_refuses_none(postgres_factory, sentinel, proxy):
    pg1, pg2 = postgres_factory("pg1"), postgres_factory("pg2")
    sentinel.members.update(pg1=pg1, pg2=pg2)
    sentinel.route_to("pg1")
    proxy.start()
    stop = threading.Event()
    attempts: list[Attempt] = []
    clients = [
        threading.Thread(target=connect_continuously, args=(proxy, stop, attempts))
        for _ in range(CLIENT_THREADS)
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(0.5)
        nowhere = sentinel.route_to(None)
        wait_for(lambda: sentinel.acknowledged() == nowhere, what="acknowledgement of 'none'")
        acknowledged_nowhere = time.monotonic()
        wait_for(
            lambda: (
                proxy.metric('rhizome_proxy_held_connections{port="read_write"}') == CLIENT_THREADS
            ),
            what="every client to be held",
        )
        time.sleep(HELD_PHASE)
        routed_at = time.monotonic()
        sentinel.route_to("pg2")
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)
    # Sessions on the old master when it stopped being the target are closed: that is the
    # fence. Every connection opened after the proxy acknowledged it must succeed.
    cut = [a for a in attempts if a.error and a.started < acknowledged_nowhere]
    assert all("closed the connection" in str(a.error) for a in cut), cut
    errors = [a.error for a in attempts if a.error and a.started >= acknowledged_nowhere]
    assert not errors, f"{len(errors)} of {len(attempts)} connections failed: {errors[:3]}"
    before = [a for a in attempts if a.finished < acknowledged_nowhere and not a.error]
    held = [a for a in attempts if a.started < routed_at < a.finished]
    after = [a for a in attempts if a.started > acknowledged_nowhere]
    assert before and all(a.port == pg1.port for a in before)
    assert len(held) == CLIENT_THREADS, "every client thread was held until the new target"
    assert all(routed_at - a.started >= HELD_PHASE for a in held)
    assert len(after) > len(held) and all(a.port == pg2.port for a in after)
    refused = proxy.metric('rhizome_proxy_refused_connections_total{port="read_write"}')
    assert refused == 0


def test_hold_timeout_refuses_with_an_error_the_client_shows(postgres_factory, sentinel, proxy):
    pg1 = postgres_factory("pg1")
    sentinel.members["pg1"] = pg1
    sentinel.update_spec(timing=FAST_TIMING.with_changes(proxy_hold_timeout=1.0))
    sentinel.route_to("pg1")
    proxy.start()
    nowhere = sentinel.route_to(None)
    wait_for(lambda: sentinel.acknowledged() == nowhere, what="acknowledgement of 'none'")
    for ssl_mode in ("prefer", "disable"):  # with and without an SSLRequest first
        started = time.monotonic()
        with pytest.raises(psycopg2.OperationalError) as refused:
            proxy.connect(sslmode=ssl_mode)
        waited = time.monotonic() - started
        assert "rhizome-proxy: no master available (failover in progress)" in str(refused.value)
        assert 0.9 < waited < 5, waited
    psql_command = [str(POSTGRES_BIN / "psql"), "-h", LOOPBACK, "-p", str(proxy.port)]
    psql = subprocess.run(
        [*psql_command, "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert psql.returncode == 2
    assert "FATAL:  rhizome-proxy: no master available (failover in progress)" in psql.stderr
    refused_total = (
        'rhizome_proxy_refused_connections_total{port="read_write",reason="hold_timeout"}'
    )
    assert proxy.metric(refused_total) == 3
    sentinel.route_to("pg1")
    wait_for(lambda: proxy.health()[1]["read_write_target"] is not None)
    connection = proxy.connect()
    assert server_port(connection) == pg1.port
    connection.close()


class GatedRelay(TcpRelay):
    """A relay whose server-to-client bytes wait at a gate: logins that take long."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.gate = threading.Event()
        super().__init__(target)

    def connections(self) -> int:
        with self.lock:
            return len(self.sockets) // 2

    def before_forwarding(self, source: socket.socket) -> None:
        if source.getpeername() == self.target:
            self.gate.wait()


def connect_in_background(proxy: ProxyProcess, outcomes: list[int | str]) -> threading.Thread:
    """A client connecting through the proxy; its server port (or error) lands in `outcomes`."""

    def run() -> None:
        try:
            connection = proxy.connect(connect_timeout=20)
            try:
                outcomes.append(server_port(connection))
            finally:
                connection.close()
        except psycopg2.Error as failure:
            outcomes.append(str(failure).strip())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def gated_master(postgres_factory, sentinel, proxy):
    """pg1 behind a relay whose gate is closed, routed to, with the proxy started."""
    pg1 = postgres_factory("pg1")
    relay = GatedRelay((LOOPBACK, pg1.port))
    sentinel.members["pg1"] = (LOOPBACK, relay.port)
    sentinel.route_to("pg1")
    proxy.start()
    wait_for(lambda: proxy.health()[1]["read_write_target"] is not None, what="routing to pg1")
    yield pg1, relay
    relay.gate.set()
    relay.close()


def test_a_planned_switchover_waits_for_the_logins_under_way(gated_master, sentinel, proxy):
    pg1, relay = gated_master
    first: list[int | str] = []
    logging_in = connect_in_background(proxy, first)
    wait_for(lambda: relay.connections() == 1, what="the login to reach PostgreSQL")
    generation = sentinel.hold_new_clients()
    second: list[int | str] = []
    held = connect_in_background(proxy, second)
    held_metric = 'rhizome_proxy_held_connections{port="read_write"}'
    wait_for(lambda: proxy.metric(held_metric) == 1, what="the new client to be held")
    assert sentinel.acknowledged() < generation, "acknowledged with a login under way"
    opened_at = time.monotonic()
    relay.gate.set()
    wait_for(lambda: sentinel.acknowledged() == generation, what="the drained generation")
    acknowledged_after = time.monotonic() - opened_at
    logging_in.join(timeout=10)
    assert first == [pg1.port], "the login under way succeeded"
    assert acknowledged_after < 0.9, "acknowledged when the login ended, not at the limit"
    assert proxy.metric(held_metric) == 1
    sentinel.route_to("pg1")  # the switchover abandoned: the held client goes on
    held.join(timeout=10)
    assert second == [pg1.port]


def test_a_login_that_never_ends_delays_the_acknowledgement_by_the_drain_limit(
    gated_master, sentinel, proxy
):
    _, relay = gated_master
    sentinel.members["pg2"] = (LOOPBACK, 2)  # a standby whose lag keeps changing the routes
    routed = sentinel.route_to("pg1")
    wait_for(lambda: sentinel.acknowledged() == routed, what="routing with a standby")
    outcome: list[int | str] = []
    stuck = connect_in_background(proxy, outcome)
    wait_for(lambda: relay.connections() == 1, what="the login to reach PostgreSQL")
    started = time.monotonic()
    generation = sentinel.hold_new_clients()
    lag = 1 << 30
    while sentinel.acknowledged() != generation and time.monotonic() < started + 5:
        lag += 1  # routes re-applied during the drain must not restart its limit
        sentinel.publish_keeper("pg2", lag_bytes=lag)
        time.sleep(0.2)
    waited = time.monotonic() - started
    assert 0.9 < waited < 1.6, waited
    nowhere = sentinel.route_to(None)
    wait_for(lambda: sentinel.acknowledged() == nowhere, what="acknowledgement of 'none'")
    stuck.join(timeout=10)
    assert outcome and "closed the connection" in str(outcome[0]), outcome
