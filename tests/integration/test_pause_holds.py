"""Pause holds on real etcd, keepers and a sentinel: no failover away from a master
that was held while paused until the operator confirms it stopped.

The keeper that leaves PostgreSQL running when it dies while paused lands
separately; here the master's whole tree is killed (its lease then expires
like that of a keeper that died holding), which is what the sentinel sees.
"""

from __future__ import annotations

import time

import pytest

from rhizome.cli.main import main as rhizomectl
from tests.harness.cluster import LocalCluster, wait_for

pytestmark = pytest.mark.integration

TIMEOUT = 30.0
KEEPER_LEASE_TTL = 5.0


@pytest.fixture
def cluster(tmp_path, etcd):
    local = LocalCluster(tmp_path, etcd)
    try:
        local.start()
    except AssertionError as error:
        local.stop()
        raise AssertionError(f"{error}\n{local.diagnostics()}") from error
    yield local
    local.stop()


def ctl(cluster: LocalCluster, *arguments: str) -> int:
    return rhizomectl(["--endpoints", cluster.etcd.client_url, "--cluster", "main", *arguments])


def held(cluster: LocalCluster, master: str) -> bool:
    state = cluster.state()
    return state is not None and master in state.paused_holds


def test_no_failover_from_a_held_master_until_it_is_confirmed_stopped(cluster, capsys):
    master = cluster.wait_for_master(TIMEOUT)
    standby = next(name for name in sorted(cluster.keepers) if name != master)
    assert ctl(cluster, "pause") == 0
    wait_for(lambda: held(cluster, master), TIMEOUT, f"{master} held while paused")
    cluster.keepers[master].kill()
    wait_for(
        lambda: master not in cluster.store.read_view().keepers,
        TIMEOUT,
        f"the lease of {master}'s keeper to expire",
    )
    assert ctl(cluster, "resume") == 0
    time.sleep(KEEPER_LEASE_TTL)  # failover_delay is 0: it would have happened by now
    state = cluster.state()
    assert state is not None and state.master == master and state.operation is None
    assert f"master {master} was held while paused" in (state.no_promotion_reason or "")
    capsys.readouterr()
    assert ctl(cluster, "status") == 0
    assert f"held while paused: {master} (instance" in capsys.readouterr().out
    assert ctl(cluster, "failover", "--to", standby) != 0, "refused without confirmation"
    assert ctl(cluster, "failover", "--to", standby, "--old-master-stopped", "--wait") == 0
    assert "YOU ASSERT THAT THE OLD MASTER'S POSTGRESQL IS STOPPED" in capsys.readouterr().err
    assert cluster.wait_for_master(TIMEOUT, other_than=master) == standby
    final = cluster.state()
    assert final is not None and final.paused_holds == {}
