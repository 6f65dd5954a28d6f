"""A proxy cut off from etcd closes its connections before its lease can expire."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from rhizome.config import ETCD_APIS
from tests.harness.ports import LOOPBACK
from tests.integration.test_proxy_support import (
    FAST_TIMING,
    ProxyProcess,
    TcpRelay,
    port_through,
    wait_for,
)

pytestmark = pytest.mark.integration

TIMER_SLACK = 0.3
"""Seconds the proxy may take beyond its close deadline (timer and scheduling latency)."""
PROXY_KEY = "/rhizome/main/proxies/proxy1"


def forwarded_socket(proxy: ProxyProcess) -> socket.socket:
    """A raw client connection the proxy has connected to the master."""
    before = proxy.metric('rhizome_proxy_connections{port="read_write"}')
    raw = socket.create_connection((LOOPBACK, proxy.port))
    wait_for(lambda: proxy.metric('rhizome_proxy_connections{port="read_write"}') == before + 1)
    return raw


def seconds_until_closed(raw: socket.socket, since: float, timeout: float = 10.0) -> float:
    raw.settimeout(timeout)
    try:
        assert raw.recv(1) == b""
    except ConnectionResetError:
        pass
    finally:
        raw.close()
    return time.monotonic() - since


class HeldClient(threading.Thread):
    """Connects through the proxy in the background and records the server port it reached."""

    def __init__(self, proxy: ProxyProcess) -> None:
        super().__init__(daemon=True)
        self.proxy = proxy
        self.port: int | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.port = port_through(self.proxy)
        except Exception as error:
            self.error = error


@pytest.mark.parametrize("etcd_api", ETCD_APIS)
def test_frozen_etcd_closes_connections_within_the_deadline_then_recovers(
    postgres_factory, etcd, sentinel, tmp_path, etcd_api
):
    pg1 = postgres_factory("pg1")
    sentinel.members["pg1"] = pg1
    sentinel.route_to("pg1")
    proxy = ProxyProcess(tmp_path / "proxy", etcd.client_url, etcd_api)
    held = HeldClient(proxy)
    try:
        proxy.start()
        raw = forwarded_socket(proxy)
        etcd.freeze()
        frozen_at = time.monotonic()
        try:
            closed_after = seconds_until_closed(raw, frozen_at)
            assert closed_after <= FAST_TIMING.proxy_close_deadline + TIMER_SLACK, closed_after
            assert proxy.health()[0] == 503
            assert proxy.metric("rhizome_proxy_fenced") == 1
            held.start()  # a new client while fenced: held, not forwarded
            wait_for(lambda: proxy.metric('rhizome_proxy_held_connections{port="read_write"}'))
            time.sleep(0.5)
            assert held.is_alive() and held.port is None
        finally:
            etcd.thaw()
        held.join(timeout=20)
        assert held.error is None and held.port == pg1.port
        assert proxy.health()[0] == 200
        assert proxy.metric('rhizome_proxy_store_errors_total{operation="lease"}') >= 1
    finally:
        proxy.stop()


@pytest.mark.parametrize("etcd_api", ETCD_APIS)
def test_a_partitioned_proxy_resumes_with_the_new_master_never_the_old(
    postgres_factory, etcd, sentinel, tmp_path, etcd_api
):
    pg1, pg2 = postgres_factory("pg1"), postgres_factory("pg2")
    sentinel.members.update(pg1=pg1, pg2=pg2)
    sentinel.route_to("pg1")
    relay = TcpRelay((LOOPBACK, etcd.client_port))
    proxy = ProxyProcess(tmp_path / "proxy", relay.url, etcd_api)
    held = HeldClient(proxy)
    try:
        proxy.start()
        raw = forwarded_socket(proxy)
        relay.cut()
        cut_at = time.monotonic()
        closed_after = seconds_until_closed(raw, cut_at)
        assert closed_after <= FAST_TIMING.proxy_close_deadline + TIMER_SLACK, closed_after
        held.start()
        # Meanwhile the sentinel, which still reaches etcd, sees the proxy's lease expire and
        # fails over: the proxy must come back routing to pg2 and never to pg1.
        wait_for(lambda: sentinel.acknowledged() is None, 10, "the proxy's lease to expire")
        sentinel.route_to(None)
        new_generation = sentinel.route_to("pg2")
        time.sleep(0.5)
        assert held.is_alive(), "a client was served while the proxy was cut off"
        relay.restore()
        held.join(timeout=20)
        assert held.error is None and held.port == pg2.port
        wait_for(lambda: sentinel.acknowledged() == new_generation, what="a new acknowledgement")
        assert port_through(proxy) == pg2.port
    finally:
        proxy.stop()
        relay.close()


@pytest.fixture
def published_proxy(etcd, sentinel, tmp_path):
    """A running proxy (routed to a stand-in pg1) and its document as first written."""
    sentinel.members["pg1"] = (LOOPBACK, 1)
    generation = sentinel.route_to("pg1")
    proxy = ProxyProcess(tmp_path / "proxy", etcd.client_url)
    try:
        proxy.start()
        # The first document may predate the proxy's reading of the state: wait for the one
        # acknowledging the routed generation (nothing changes after it).
        wait_for(lambda: sentinel.acknowledged() == generation, 5, "the proxy's acknowledgement")
        yield proxy, wait_for(lambda: sentinel.client.get(PROXY_KEY), 5, "the proxy's key")
    finally:
        proxy.stop()


def test_a_new_lease_ttl_in_the_spec_replaces_the_lease_and_the_key_never_disappears(
    published_proxy, sentinel
):
    proxy, first = published_proxy
    assert sentinel.client.keepalive(first.lease) <= FAST_TIMING.proxy_lease_ttl
    sentinel.update_spec(timing=FAST_TIMING.with_changes(proxy_lease_ttl=4.0))
    leases = set()
    deadline = time.monotonic() + 3 * FAST_TIMING.renew_interval + 1
    while time.monotonic() < deadline:
        current = sentinel.client.get(PROXY_KEY)
        assert current is not None, "the proxy's key disappeared while it was running"
        leases.add(current.lease)
    assert len(leases) == 2, "the proxy took a lease of the new TTL"
    assert sentinel.client.keepalive(current.lease) == 4
    assert proxy.health()[0] == 200


def test_the_proxy_document_is_written_on_changes_only_and_again_when_deleted(
    published_proxy, sentinel
):
    _, first = published_proxy
    time.sleep(3 * FAST_TIMING.renew_interval)
    unchanged = sentinel.client.get(PROXY_KEY)
    assert unchanged is not None and unchanged.mod_revision == first.mod_revision
    assert sentinel.client.delete(PROXY_KEY)
    again = wait_for(lambda: sentinel.client.get(PROXY_KEY), 5, "the proxy's key again")
    assert again.lease == first.lease
    generation = sentinel.route_to(None)
    wait_for(lambda: sentinel.acknowledged() == generation, what="the new generation")
