"""A stalled or frozen proxy forwards nothing to the master once its close deadline passed.

(P1 hole 2.) After a stall the event loop finds the client's bytes waiting
in its socket and reads them before it runs the deadline timer: the data
path itself must refuse to write them to the old master. After SIGSTOP /
SIGCONT uvloop 0.23's libuv happens to run the timers first (epoll_wait
fails with EINTR and the poll's timeout has elapsed), but nothing in the
design may rest on that order.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from pathlib import Path

import pytest

from tests.harness.ports import LOOPBACK
from tests.harness.processes import ServerProcess
from tests.integration.test_proxy_store_loss import seconds_until_closed
from tests.integration.test_proxy_support import FAST_TIMING, ProxyProcess, wait_for

pytestmark = pytest.mark.integration

FREEZE_MARGIN = 0.8
"""Seconds the proxy stays frozen beyond its close deadline (still within its lease TTL)."""


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def read_until_ready(raw: socket.socket) -> bytes:
    """Read the server's messages up to ReadyForQuery; return everything read."""
    received = b""
    while True:
        chunk = raw.recv(65536)
        assert chunk, f"the connection closed during the login: {received!r}"
        received += chunk
        offset = 0
        while offset + 5 <= len(received):
            kind = received[offset : offset + 1]
            (length,) = struct.unpack_from("!I", received, offset + 1)
            if offset + 1 + length > len(received):
                break
            assert kind != b"E", f"the server answered an error: {received!r}"
            if kind == b"Z":
                return received
            offset += 1 + length


def logged_in_socket(port: int) -> socket.socket:
    """A PostgreSQL session (trust authentication) on a raw socket, ready for a query."""
    raw = socket.create_connection((LOOPBACK, port), timeout=10)
    parameters = b"user\0postgres\0database\0postgres\0\0"
    startup = struct.pack("!II", len(parameters) + 8, 3 << 16) + parameters
    raw.sendall(startup)
    read_until_ready(raw)
    return raw


INJECTOR = Path(__file__).with_name("proxy_fault_injector.py")


class FaultyProxy(ProxyProcess):
    """rhizome-proxy run through the fault injector: faults are files in `faults`."""

    def __init__(self, directory: Path, etcd_url: str) -> None:
        super().__init__(directory, etcd_url)
        self.faults = directory / "faults"
        self.faults.mkdir()
        argv = [sys.executable, str(INJECTOR), str(self.faults), "-c", str(self.config_path)]
        self.process = ServerProcess(argv, directory / f"{self.id}.log")

    def inject(self, fault: str, text: str = "") -> None:
        (self.faults / fault).write_text(text)

    def stalled(self) -> bool:
        """The injected stall holds the GIL: the proxy's event loop cannot run."""
        marker = self.faults / "stall.started"
        return marker.exists() and marker.read_bytes() == b"\1"


def forwarding_session(pg1, sentinel, proxy: ProxyProcess) -> socket.socket:
    """A logged-in raw client session through the started proxy to pg1."""
    pg1.execute("CREATE TABLE written (id int)")
    sentinel.members["pg1"] = pg1
    sentinel.route_to("pg1")
    proxy.start()
    raw = logged_in_socket(proxy.port)
    raw.sendall(message(b"Q", b"SELECT 1\0"))
    read_until_ready(raw)
    return raw


def assert_not_written(pg1, raw: socket.socket, since: float) -> None:
    """The client's connection closes and its INSERT never reached pg1."""
    raw.setblocking(True)
    closed_after = seconds_until_closed(raw, since, timeout=10)
    assert closed_after < FAST_TIMING.proxy_close_deadline + FREEZE_MARGIN + 2
    time.sleep(0.5)  # an INSERT that did get through has committed by now
    assert pg1.execute("SELECT count(*) FROM written") == [(0,)], (
        "a write sent through the proxy reached the old master after the proxy's deadline"
    )


def test_bytes_a_client_sent_while_the_proxy_was_stalled_never_reach_the_old_master(
    postgres_factory, etcd, sentinel, tmp_path
):
    pg1 = postgres_factory("pg1")
    proxy = FaultyProxy(tmp_path / "proxy", etcd.client_url)
    try:
        raw = forwarding_session(pg1, sentinel, proxy)
        proxy.inject("stall", str(FAST_TIMING.proxy_close_deadline + FREEZE_MARGIN))
        wait_for(proxy.stalled, 5, "the stall")
        stalled_at = time.monotonic()
        raw.setblocking(False)
        raw.send(message(b"Q", b"INSERT INTO written VALUES (1)\0"))
        sentinel.route_to(None)  # the failover goes on without the stalled proxy
        assert_not_written(pg1, raw, stalled_at)
        wait_for(lambda: proxy.health()[0] == 200, 10, "the proxy to resume")
    finally:
        proxy.stop()


def test_bytes_a_client_sent_while_the_proxy_was_frozen_never_reach_the_old_master(
    postgres_factory, etcd, sentinel, tmp_path
):
    pg1 = postgres_factory("pg1")
    proxy = ProxyProcess(tmp_path / "proxy", etcd.client_url)
    try:
        raw = forwarding_session(pg1, sentinel, proxy)
        proxy.process.freeze()
        frozen_at = time.monotonic()
        try:
            # Queued in the frozen proxy's socket; the client does not wait for an answer.
            raw.setblocking(False)
            raw.send(message(b"Q", b"INSERT INTO written VALUES (1)\0"))
            sentinel.route_to(None)  # the failover goes on without the frozen proxy
            time.sleep(FAST_TIMING.proxy_close_deadline + FREEZE_MARGIN)
        finally:
            proxy.process.thaw()
        assert_not_written(pg1, raw, frozen_at)
        wait_for(lambda: proxy.health()[0] == 200, 10, "the proxy to resume")
    finally:
        proxy.stop()
