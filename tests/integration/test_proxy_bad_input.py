"""Bad input never stalls the proxy: other clients keep being served."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

import psycopg2
import pytest

from tests.harness.ports import LOOPBACK
from tests.integration.test_proxy_support import (
    ProxyProcess,
    port_through,
    server_port,
    wait_for,
)

pytestmark = pytest.mark.integration

CHURN_CONNECTIONS = 2000
IDLE_CLIENTS = 100
CONNECTION_LIMIT = 300


@pytest.fixture
def proxy(etcd, tmp_path, sentinel):
    process = ProxyProcess(tmp_path / "proxy", etcd.client_url, max_connections=CONNECTION_LIMIT)
    yield process
    process.stop()


class Canary(threading.Thread):
    """Runs a query every 10 ms on one connection and records the slowest answer."""

    def __init__(self, proxy: ProxyProcess) -> None:
        super().__init__(daemon=True)
        self.connection = proxy.connect()
        self.stop = threading.Event()
        self.queries = 0
        self.slowest = 0.0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with self.connection.cursor() as cursor:
                while not self.stop.is_set():
                    started = time.monotonic()
                    cursor.execute("SELECT 1")
                    cursor.fetchone()
                    self.slowest = max(self.slowest, time.monotonic() - started)
                    self.queries += 1
                    time.sleep(0.01)
        except Exception as error:
            self.error = error

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=10)
        self.connection.close()
        assert self.error is None, self.error
        assert self.queries > 10


def closes_soon(raw: socket.socket, timeout: float = 5.0) -> bool:
    raw.settimeout(timeout)
    try:
        while raw.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    finally:
        raw.close()
    return True


def open_and_drop(port: int, count: int) -> None:
    """Open `count` connections and drop each at once (every other one with a reset)."""
    for index in range(count):
        raw = socket.create_connection((LOOPBACK, port), timeout=5)
        if index % 2:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()


def test_garbage_silence_and_churn_leave_other_clients_served(postgres_factory, sentinel, proxy):
    pg1 = postgres_factory("pg1", settings={"max_connections": "200"})
    sentinel.members["pg1"] = pg1
    sentinel.route_to("pg1")
    proxy.start()
    canary = Canary(proxy)
    canary.start()
    silent = [socket.create_connection((LOOPBACK, proxy.port)) for _ in range(IDLE_CLIENTS)]
    half_sent = [socket.create_connection((LOOPBACK, proxy.port)) for _ in range(10)]
    for raw in half_sent:
        raw.sendall(struct.pack("!I", 200))  # a startup packet's length, and nothing more
    garbage = [socket.create_connection((LOOPBACK, proxy.port)) for _ in range(10)]
    for raw in garbage:
        raw.sendall(os.urandom(64 * 1024))
    churners = [
        threading.Thread(target=open_and_drop, args=(proxy.port, CHURN_CONNECTIONS // 2))
        for _ in range(2)
    ]
    for thread in churners:
        thread.start()
    for thread in churners:
        thread.join(timeout=120)
    assert all(closes_soon(raw) for raw in garbage), "PostgreSQL rejects garbage; so must we"
    assert port_through(proxy) == pg1.port, "a new client is served amid the noise"
    for raw in silent + half_sent:
        raw.close()
    canary.finish()
    assert canary.slowest < 2.0, f"a query took {canary.slowest:.2f} s"
    wait_for(
        lambda: proxy.metric('rhizome_proxy_connections{port="read_write"}') == 0,
        20,
        "every dropped connection to be released",
    )
    accepted = proxy.metric('rhizome_proxy_accepted_connections_total{port="read_write"}')
    assert accepted >= CHURN_CONNECTIONS + IDLE_CLIENTS + 20


def test_garbage_from_a_held_client_is_dropped_at_once(postgres_factory, sentinel, proxy):
    pg1 = postgres_factory("pg1")
    sentinel.members["pg1"] = pg1
    sentinel.route_to("pg1")
    proxy.start()
    nowhere = sentinel.route_to(None)
    wait_for(lambda: sentinel.acknowledged() == nowhere)
    raw = socket.create_connection((LOOPBACK, proxy.port))
    raw.sendall(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    assert closes_soon(raw, timeout=2)
    assert proxy.metric('rhizome_proxy_invalid_clients_total{port="read_write"}') == 1
    silent = socket.create_connection((LOOPBACK, proxy.port))  # held, sends nothing
    sentinel.route_to("pg1")
    assert port_through(proxy) == pg1.port
    silent.close()


def test_the_connection_limit_refuses_with_an_error_and_recovers(
    postgres_factory, sentinel, etcd, tmp_path
):
    pg1 = postgres_factory("pg1")
    sentinel.members["pg1"] = pg1
    sentinel.route_to("pg1")
    proxy = ProxyProcess(tmp_path / "limited", etcd.client_url, max_connections=3)
    try:
        proxy.start()
        connections = [proxy.connect() for _ in range(3)]
        with pytest.raises(psycopg2.OperationalError, match="too many connections"):
            proxy.connect()
        connections.pop().close()
        wait_for(lambda: proxy.metric('rhizome_proxy_connections{port="read_write"}') == 2)
        extra = proxy.connect()
        assert server_port(extra) == pg1.port
        for connection in [*connections, extra]:
            connection.close()
        reason = 'rhizome_proxy_refused_connections_total{port="read_write",reason="limit"}'
        assert proxy.metric(reason) == 1
    finally:
        proxy.stop()
