"""WAL archiving owned by the keepers (pgBackRest 2.45, PostgreSQL 15, etcd, on loopback).

The master archives, standbys do not; `pgbackrest check` passes right after a
switchover and right after a host-death failover, with the new timeline's
history file in the archive; and segments the old master never archived are
pushed by the new master after a failover (the gap case, made real by
stopping the old master's pgBackRest).
"""

from __future__ import annotations

import pytest

from tests.harness.cluster import LocalCluster, wait_for
from tests.integration.backup_support import (
    TIMEOUT,
    BackedCluster,
    segment_names,
)
from tests.integration.test_failover import ctl, wait_for_rejoin

pytestmark = pytest.mark.integration


def archiver_counts(cluster: LocalCluster, name: str) -> tuple[int, int]:
    ((archived, failed),) = cluster.keepers[name].execute(
        "SELECT archived_count, failed_count FROM pg_stat_archiver"
    )
    return archived, failed


def test_the_master_archives_and_standbys_do_not(backed_cluster: BackedCluster) -> None:
    cluster = backed_cluster.cluster
    master = backed_cluster.master()
    for keeper in cluster.keepers.values():
        ((command,),) = keeper.execute("SHOW archive_command")
        assert command.startswith("pgbackrest --config=") and command.endswith("archive-push %p")
        assert keeper.execute("SHOW archive_mode") == [("on",)]
    names = segment_names(cluster.keepers[master], 3)
    backed_cluster.wait_archived(set(names))
    assert backed_cluster.ctl("backup", "check") == 0
    assert archiver_counts(cluster, master)[0] >= 3
    for name in set(cluster.keepers) - {master}:
        assert archiver_counts(cluster, name) == (0, 0), f"standby {name} archived"


def test_check_passes_after_a_switchover_and_after_a_failover(
    backed_cluster: BackedCluster,
) -> None:
    cluster = backed_cluster.cluster
    first = backed_cluster.master()
    segment_names(cluster.keepers[first], 1)
    assert ctl(cluster, "switchover", "--wait", "--timeout", "30") == 0
    second = cluster.wait_for_master(TIMEOUT, other_than=first)
    assert backed_cluster.ctl("backup", "check", node=second) == 0
    backed_cluster.wait_archived({"00000002.history"}, timeout=5)
    wait_for_rejoin(cluster, first, second)

    cluster.keepers[second].kill()  # host death: keeper, guard, PostgreSQL at once
    third = cluster.wait_for_master(TIMEOUT, other_than=second)
    assert backed_cluster.ctl("backup", "check", node=third) == 0
    backed_cluster.wait_archived({"00000003.history"}, timeout=5)


def test_a_failover_closes_the_gap_the_old_master_left(backed_cluster: BackedCluster) -> None:
    """The old master's archiving is stopped; the new master pushes what it missed."""
    cluster = backed_cluster.cluster
    master = backed_cluster.master()
    repository = backed_cluster.repository
    stopped = repository.pgbackrest(master, "stop")
    assert stopped.returncode == 0, stopped.stderr
    unarchived = segment_names(cluster.keepers[master], 3)
    standbys = sorted(set(cluster.keepers) - {master})

    def received_everywhere() -> bool:
        ((position,),) = cluster.keepers[master].execute("SELECT pg_current_wal_lsn()::text")
        return all(
            cluster.keepers[name].execute(
                "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", (position,)
            )[0][0]
            for name in standbys
        )

    wait_for(received_everywhere, TIMEOUT, "the standbys to receive the master's WAL")
    assert archiver_counts(cluster, master)[1] > 0, "the old master's archiving should fail"
    assert not set(unarchived) & repository.archived(), "the gap is not there to begin with"
    for name in standbys:  # PostgreSQL itself will never archive them on a standby
        status = cluster.keepers[name].data_dir / "pg_wal" / "archive_status"
        assert all((status / f"{segment}.done").exists() for segment in unarchived)

    cluster.keepers[master].kill()
    new_master = cluster.wait_for_master(TIMEOUT, other_than=master)
    backed_cluster.wait_archived({*unarchived, "00000002.history"})
    assert backed_cluster.ctl("backup", "check", node=new_master) == 0
    for segment in unarchived:  # each one can be fetched back for a restore
        fetched = repository.pgbackrest(
            new_master, "archive-get", segment, f"{repository.root}/fetched-{segment}"
        )
        assert fetched.returncode == 0, fetched.stderr
