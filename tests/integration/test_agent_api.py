"""The agents' HTTP API in a real cluster, and HAProxy routing by the keepers' /primary check."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2
import pytest

from tests.harness.cluster import LocalCluster, close_quietly, wait_for
from tests.harness.etcd import EtcdServer
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.processes import ServerProcess

pytestmark = pytest.mark.integration
FAILOVER_TIMEOUT = 30.0
HAPROXY_CONFIG = """global
    maxconn 100
defaults
    mode tcp
    timeout client 30m
    timeout connect 2s
    timeout server 30m
    timeout check 2s
listen primary
    bind {host}:{port}
    option httpchk GET /primary
    http-check expect status 200
    default-server inter 500ms fall 1 rise 1 on-marked-down shutdown-sessions
{servers}
"""


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def start_haproxy(directory: Path, cluster: LocalCluster) -> tuple[ServerProcess, int]:
    port = free_port()
    servers = "\n".join(
        f"    server {name} {LOOPBACK}:{keeper.port} check port {keeper.api_port}"
        for name, keeper in cluster.keepers.items()
    )
    config = directory / "haproxy.cfg"
    config.write_text(HAPROXY_CONFIG.format(host=LOOPBACK, port=port, servers=servers))
    haproxy = ServerProcess(["haproxy", "-db", "-f", str(config)], directory / "haproxy.log")
    haproxy.start()
    return haproxy, port


def served_by(cluster: LocalCluster, haproxy_port: int) -> str | None:
    """The keeper whose writable PostgreSQL answers through HAProxy, if any."""
    password = next(iter(cluster.keepers.values())).superuser_password
    try:
        connection = psycopg2.connect(
            host=LOOPBACK, port=haproxy_port, user="postgres", dbname="postgres",
            password=password, connect_timeout=2,
        )  # fmt: skip
    except psycopg2.OperationalError:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT inet_server_port(), pg_is_in_recovery()")
            port, in_recovery = cursor.fetchone()
    except psycopg2.Error:
        return None
    finally:
        close_quietly(connection)
    names = [name for name, keeper in cluster.keepers.items() if keeper.port == port]
    return names[0] if names and not in_recovery else None


def check_the_pages(cluster: LocalCluster, master: str, standby: str) -> None:
    keepers, sentinel = cluster.keepers, cluster.sentinels[0]
    assert http_get(keepers[master].api_port, "/primary")[0] == 200
    assert http_get(keepers[standby].api_port, "/primary")[0] == 503
    wait_for(lambda: http_get(keepers[standby].api_port, "/replica?lag=16MB")[0] == 200, 20,
             "the standby to pass /replica")  # fmt: skip
    assert http_get(keepers[master].api_port, "/replica")[0] == 503
    metrics = http_get(keepers[master].api_port, "/metrics")[1].splitlines()
    assert 'rhizome_keeper_postgres_role{role="primary"} 1' in metrics
    requests = [
        line
        for line in metrics
        if line.startswith('rhizome_etcd_requests_total{agent="keeper",outcome="ok"}')
    ]
    assert requests and float(requests[0].split()[-1]) > 0, "the keeper's etcd requests counted"
    cluster_metrics = http_get(sentinel.api_port, "/metrics")[1].splitlines()
    assert "rhizome_sentinel_leader 1" in cluster_metrics
    assert "rhizome_cluster_master_writable 1" in cluster_metrics
    assert http_get(sentinel.api_port, "/leader")[0] == 200


def test_haproxy_follows_the_primary_check_through_a_failover(tmp_path: Path, etcd: EtcdServer):
    cluster = LocalCluster(tmp_path, etcd, keeper_count=2)
    haproxy = None
    try:
        master = cluster.start()
        standby = next(name for name in cluster.keepers if name != master)
        check_the_pages(cluster, master, standby)
        haproxy, port = start_haproxy(tmp_path, cluster)
        wait_for(lambda: served_by(cluster, port) == master, 10, "HAProxy to route to the master")
        cluster.keepers[master].kill()
        killed_at = time.monotonic()
        wait_for(lambda: served_by(cluster, port) == standby, FAILOVER_TIMEOUT,
                 "HAProxy to route to the new master")  # fmt: skip
        print(f"\nHAProxy routed to the new master {time.monotonic() - killed_at:.2f} s after"
              " the old one's host died")  # fmt: skip
        assert http_get(cluster.keepers[standby].api_port, "/primary")[0] == 200
    except AssertionError as error:
        raise AssertionError(f"{error}\n{cluster.diagnostics()}") from error
    finally:
        if haproxy is not None:
            haproxy.stop()
        cluster.stop()
