"""Point-in-time recovery of the whole cluster (pgBackRest 2.45, PostgreSQL 15, etcd).

Rows carry their insertion time. A full backup is taken, rows keep coming, a
time T is recorded, rows keep coming, the master is switched over, rows keep
coming. With every keeper stopped, `rhizomectl backup restore --time T` on a
node that is not the master refuses each bad input without changing anything,
then restores: the cluster comes back with exactly the rows inserted before T,
that node as master on a new timeline, the others streaming from it,
archiving going on (`pgbackrest check`), and a failover still works. A
restore drill then reads the latest backup back in a scratch instance. A
standby whose keeper says clone_from = "repository" is made from the newest
backup and the archive (also across a timeline switch after that backup),
streams, and can be switched over to.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.harness.cluster import LocalCluster, wait_for
from tests.harness.keeper import wait_reported
from tests.integration.backup_support import TIMEOUT, BackedCluster, clone_from_repository
from tests.integration.test_failover import ctl

pytestmark = pytest.mark.integration

EVENTS_SQL = (
    "CREATE TABLE events (id serial PRIMARY KEY,"
    " inserted_at timestamptz NOT NULL DEFAULT clock_timestamp())"
)


def insert(cluster: LocalCluster, count: int) -> None:
    for _ in range(count):
        cluster.write("INSERT INTO events DEFAULT VALUES")


def event_ids(cluster: LocalCluster, master: str, condition: str = "true") -> set[int]:
    rows = cluster.keepers[master].execute(f"SELECT id FROM events WHERE {condition}")  # noqa: S608
    return {row[0] for row in rows}


def archive_current_segment(backed: BackedCluster, master: str) -> None:
    keeper = backed.cluster.keepers[master]
    ((segment,),) = keeper.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")
    keeper.execute("SELECT pg_switch_wal()")
    backed.wait_archived({segment})


def untouched(cluster: LocalCluster, node: str) -> tuple[float, int | None]:
    """What a refused restore must leave as it was: the control file and the generation."""
    state = cluster.state()
    control = cluster.keepers[node].data_dir / "global" / "pg_control"
    return control.stat().st_mtime, state.generation if state else None


def restore(backed: BackedCluster, node: str, *options: str) -> int:
    config = str(backed.cluster.keepers[node].config_path)
    return backed.ctl("backup", "restore", "--keeper-config", config, *options, node=node)


def test_a_restore_to_a_time_brings_back_exactly_the_rows_before_it(
    backed_cluster: BackedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = backed_cluster.cluster
    first = backed_cluster.master()
    cluster.write(EVENTS_SQL)
    insert(cluster, 20)
    assert backed_cluster.ctl("backup", "run", "--type", "full") == 0
    insert(cluster, 20)
    ((target,),) = cluster.keepers[first].execute("SELECT clock_timestamp()")
    insert(cluster, 20)
    assert ctl(cluster, "switchover", "--wait", "--timeout", "30") == 0
    second = cluster.wait_for_master(TIMEOUT, other_than=first)
    insert(cluster, 20)
    expected = event_ids(cluster, second, f"inserted_at <= '{target.isoformat()}'")
    assert len(expected) == 40 and len(event_ids(cluster, second)) == 80
    archive_current_segment(backed_cluster, second)

    refused_while_running = restore(backed_cluster, first, "--time", target.isoformat())
    assert refused_while_running != 0
    assert "still run: stop every keeper" in capsys.readouterr().err
    for name in [*sorted(set(cluster.keepers) - {second}), second]:  # no failover meanwhile
        cluster.keepers[name].stop()
    refuse_bad_input(backed_cluster, first, target.isoformat(), capsys)

    started = time.monotonic()
    assert restore(backed_cluster, first, "--time", target.isoformat(), "--confirm") == 0
    restored_in = time.monotonic() - started
    cluster.keepers[first].start()  # the restored master first, as the playbook does
    for name in sorted(set(cluster.keepers) - {first}):
        cluster.keepers[name].start()
    try:
        assert cluster.wait_for_master(TIMEOUT) == first
    except AssertionError as error:
        raise AssertionError(f"{error}\n{cluster.diagnostics()}") from None
    assert event_ids(cluster, first) == expected  # exactly the rows inserted before T
    cluster.wait_for_streaming(2, TIMEOUT)
    ((timeline,),) = cluster.keepers[first].execute(
        "SELECT timeline_id FROM pg_control_checkpoint()"
    )
    assert timeline == 3  # 1 before the switchover, 2 after it, 3 after the restore
    assert backed_cluster.ctl("backup", "check", node=first) == 0
    backed_cluster.wait_archived({"00000003.history"})
    with capsys.disabled():
        print(f"\nrestore to T (pgbackrest restore, recovery, promotion): {restored_in:.1f} s")

    cluster.keepers[first].kill()  # a failover after the restore works
    third = cluster.wait_for_master(TIMEOUT, other_than=first)
    assert event_ids(cluster, third) == expected
    assert backed_cluster.ctl("backup", "check", node=third) == 0
    drill(backed_cluster, third, len(expected), capsys)


def drill(backed: BackedCluster, node: str, rows: int, capsys: pytest.CaptureFixture[str]) -> None:
    """The restore drill reads the latest backup's copy back, and leaves nothing behind."""
    keeper = backed.cluster.keepers[node]
    capsys.readouterr()
    query = ("--query", "SELECT count(*), current_setting('archive_mode') FROM events")
    drilled = backed.ctl("backup", "drill", "--keeper-config", str(keeper.config_path), *query,
                         node=node)  # fmt: skip
    output = capsys.readouterr()
    assert drilled == 0, output.err
    assert f"query: [({rows}, 'off')]" in output.out, output.out  # the copy archives nothing
    assert "1 user tables, " in output.out, output.out
    with capsys.disabled():
        print(output.out)
    assert not keeper.data_dir.with_name(keeper.data_dir.name + ".restore-drill").exists()


def refuse_bad_input(
    backed: BackedCluster, node: str, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad input is refused with its reason, and changes nothing."""
    before = untouched(backed.cluster, node)
    cases = [
        (("--time", target), "add --confirm to do it"),
        (("--time", "2000-01-01T00:00:00+00:00", "--confirm"), "before the end of the oldest"),
        (("--time", target, "--set", "20000101-000000F", "--confirm"), "unknown backup set"),
        (("--time", target.split("+")[0], "--confirm"), "has no time zone"),
        (("--lsn", "not-an-lsn", "--confirm"), "is not an LSN"),
    ]
    for options, message in cases:
        assert restore(backed, node, *options) != 0, options
        assert message in capsys.readouterr().err, options
    assert untouched(backed.cluster, node) == before
    assert not Path(backed.cluster.keepers[node].data_dir / "recovery.signal").exists()


def backup_then_switch_over(backed: BackedCluster) -> tuple[str, str]:
    """20 rows, a full backup, 20 rows (replayed from the archive or the stream by a
    copy of that backup), a switchover to a standby, 20 rows on the new timeline; the
    names of the other standby and of the new master."""
    cluster = backed.cluster
    master = backed.master()
    cluster.write(EVENTS_SQL)
    insert(cluster, 20)
    assert backed.ctl("backup", "run", "--type", "full") == 0
    insert(cluster, 20)
    node, other = sorted(set(cluster.keepers) - {master})
    assert ctl(cluster, "switchover", "--to", other, "--wait", "--timeout", "30") == 0
    assert cluster.wait_for_master(TIMEOUT, other_than=master) == other
    insert(cluster, 20)
    return node, other


def test_a_standby_cloned_from_the_repository_streams_and_can_be_promoted(
    backed_cluster: BackedCluster,
) -> None:
    """clone_from = "repository": a standby without data restores the newest backup and
    replays the archive instead of copying the master's files, then streams; also when
    the backup is older than the master's timeline (a switchover since): the restored
    copy follows the new timeline, neither rewound nor cloned from the master."""
    cluster = backed_cluster.cluster
    node, other = backup_then_switch_over(backed_cluster)
    clone_from_repository(backed_cluster, node)
    wait_for(lambda: len(event_ids(cluster, node)) == 60, TIMEOUT, f"{node} to replay the rows")
    # replaying the archive it reports the backup's timeline; streaming, the master's
    wait_reported(cluster.store, node, "the master's timeline", TIMEOUT, timeline=2)

    assert ctl(cluster, "switchover", "--to", node, "--wait", "--timeout", "30") == 0
    assert cluster.wait_for_master(TIMEOUT, other_than=other) == node
    insert(cluster, 1)
    assert len(event_ids(cluster, node)) == 61
