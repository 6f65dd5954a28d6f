"""The read-only port balances over healthy standbys within the lag bound."""

from __future__ import annotations

from collections import Counter

import psycopg2
import pytest

from rhizome.spec import KeeperSettings
from tests.integration.test_proxy_support import (
    FAST_TIMING,
    ProxyProcess,
    port_through,
    server_port,
    wait_for,
)

pytestmark = pytest.mark.integration

LAG_BOUND = 1024 * 1024


def start_proxy(etcd, tmp_path, **settings) -> ProxyProcess:
    return ProxyProcess(
        tmp_path / "proxy",
        etcd.client_url,
        read_only=True,
        max_standby_lag_bytes=LAG_BOUND,
        **settings,
    )


@pytest.fixture
def proxy(etcd, tmp_path, sentinel):
    process = start_proxy(etcd, tmp_path)
    yield process
    process.stop()


def read_only_ports(proxy: ProxyProcess, count: int) -> Counter[int]:
    """Server ports of `count` read-only connections open at the same time."""
    connections = [proxy.connect(read_only=True) for _ in range(count)]
    try:
        return Counter(server_port(connection) for connection in connections)
    finally:
        for connection in connections:
            connection.close()


def test_read_only_excludes_stopped_lagging_and_maintenance_standbys(
    postgres_factory, sentinel, proxy
):
    pg1 = postgres_factory("pg1")
    pg2 = postgres_factory("pg2", initdb=False, start=False)
    pg2.base_backup_from(pg1)  # a real streaming standby of pg1
    pg2.start()
    pg3 = postgres_factory("pg3", initdb=False, start=False)  # a standby that is stopped
    pg4 = postgres_factory("pg4")  # running, but reported far behind
    sentinel.members.update(pg1=pg1, pg2=pg2, pg3=pg3, pg4=pg4)
    sentinel.route_to("pg1")
    sentinel.publish_keeper("pg1", role="primary", lag_bytes=None)
    sentinel.publish_keeper("pg2")
    sentinel.publish_keeper("pg3", running=False, healthy=False, role="unknown")
    sentinel.publish_keeper("pg4", lag_bytes=64 * LAG_BOUND)
    proxy.start()
    wait_for(lambda: proxy.health()[1]["read_only_targets"], what="a read-only target")

    assert read_only_ports(proxy, 4) == {pg2.port: 4}
    exclusions = proxy.health()[1]["standby_exclusions"]
    assert exclusions["pg1"] == "is the master"
    assert exclusions["pg3"] == "is not running"
    assert exclusions["pg4"].startswith(f"lags {64 * LAG_BOUND} bytes")
    assert port_through(proxy) == pg1.port, "the read-write port still goes to the master"

    sentinel.publish_keeper("pg4", lag_bytes=LAG_BOUND // 2)  # caught up
    wait_for(lambda: len(proxy.health()[1]["read_only_targets"]) == 2)
    assert read_only_ports(proxy, 4) == {pg2.port: 2, pg4.port: 2}, "least connections wins"

    kept = proxy.connect(read_only=True)
    kept_port = server_port(kept)
    kept_name = "pg4" if kept_port == pg4.port else "pg2"
    sentinel.update_spec(keepers={kept_name: KeeperSettings(maintenance=True)})
    wait_for(lambda: len(proxy.health()[1]["read_only_targets"]) == 1)
    with pytest.raises(psycopg2.OperationalError):
        server_port(kept)  # a keeper in maintenance loses its read-only connections
    kept.close()
    other = pg2.port if kept_port == pg4.port else pg4.port
    assert read_only_ports(proxy, 2) == {other: 2}


def test_fallback_to_master_or_hold_when_no_standby_qualifies(
    postgres_factory, sentinel, etcd, tmp_path
):
    pg1 = postgres_factory("pg1")
    sentinel.members.update(pg1=pg1, pg2=("127.0.0.1", 1))  # pg2: a standby never started
    sentinel.update_spec(timing=FAST_TIMING.with_changes(proxy_hold_timeout=1.0))
    sentinel.route_to("pg1")
    sentinel.publish_keeper("pg2", running=False, healthy=False, role="unknown")
    with_fallback = start_proxy(etcd, tmp_path / "a", id="fallback", fallback_to_master=True)
    without = start_proxy(etcd, tmp_path / "b", id="strict")
    try:
        with_fallback.start()
        without.start()
        assert read_only_ports(with_fallback, 2) == {pg1.port: 2}
        with pytest.raises(psycopg2.OperationalError, match="no standby available"):
            without.connect(read_only=True)
    finally:
        with_fallback.stop()
        without.stop()
