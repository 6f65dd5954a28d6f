"""A paused cluster moves from etcd's v2 API to its v3 API (rhizomectl store-move) while
PostgreSQL keeps running: agents restart one by one on the new API, then the source is
deleted, and the resumed cluster switches over on v3."""

from __future__ import annotations

import os
import signal

import pytest

from rhizome.cli.main import main as rhizomectl
from rhizome.config import open_client
from rhizome.etcd import EtcdSettings
from tests.harness.cluster import LocalCluster, wait_for

pytestmark = pytest.mark.integration


def ctl(cluster: LocalCluster, api: str, *arguments: str) -> int:
    where = ["--endpoints", cluster.etcd.client_url, "--cluster", "main", "--etcd-api", api]
    return rhizomectl([*where, *arguments])


def test_a_paused_cluster_moves_from_v2_to_v3_with_postgres_running(tmp_path, etcd):
    cluster = LocalCluster(tmp_path, etcd, etcd_api="v2")
    try:
        master = cluster.start()
        cluster.write("CREATE TABLE moved (n int)")
        cluster.write("INSERT INTO moved VALUES (1)")
        postmasters = {name: keeper.postgres_pid for name, keeper in cluster.keepers.items()}
        assert ctl(cluster, "v2", "store-move", "--to-api", "v3") == 1, "moved while running"
        assert ctl(cluster, "v2", "pause") == 0
        # Refused until every keeper holds its PostgreSQL under the pause (seconds).
        wait_for(lambda: ctl(cluster, "v2", "store-move", "--to-api", "v3") == 0, 20, "the copy")
        assert ctl(cluster, "v2", "store-move", "--to-api", "v3", "--finish") == 1, "agents left"

        v3 = open_client(EtcdSettings(endpoints=(etcd.client_url,)), "v3")
        for sentinel in cluster.sentinels:
            sentinel.stop()
            text = sentinel.config_path.read_text()
            sentinel.config_path.write_text(text.replace('api = "v2"', 'api = "v3"'))
            sentinel.start()
        for name, keeper in cluster.keepers.items():
            keeper.etcd_api = "v3"
            keeper.write_config()
            os.kill(keeper.pid, signal.SIGUSR2)  # restart in place, PostgreSQL left running
            key = f"/rhizome/main/keepers/{name}"
            wait_for(lambda key=key: v3.get(key), 30, f"keeper {name} on the v3 API")

        # The keepers' v2 documents go once their v2 leases expire (a restart in place
        # hands its lease over, and the new process holds a v3 one).
        finish = ("store-move", "--to-api", "v3", "--finish")
        wait_for(lambda: ctl(cluster, "v2", *finish) == 0, 20, "the move to finish")
        v2 = open_client(EtcdSettings(endpoints=(etcd.client_url,)), "v2")
        assert v2.get_prefix("/rhizome/main/").items == ()
        assert {n: k.postgres_pid for n, k in cluster.keepers.items()} == postmasters

        cluster.store = cluster.store.__class__(v3, "main")
        assert ctl(cluster, "v3", "resume") == 0
        assert ctl(cluster, "v3", "switchover", "--wait", "--timeout", "60") == 0
        new_master = cluster.wait_for_master(30, other_than=master)
        assert cluster.keepers[new_master].execute("SELECT n FROM moved") == [(1,)]
    except AssertionError as error:
        raise AssertionError(f"{error}\n{cluster.diagnostics()}") from error
    finally:
        cluster.stop()
