"""Backups from a standby, recorded in the store (pgBackRest 2.45, PostgreSQL 15, etcd).

`rhizomectl backup run` on a standby's node takes a full backup with
--backup-standby: pgBackRest's log shows the standby replaying to the
backup's start, and the master's CPU during the backup is measured against
the same master idle, and against a backup copied from the master itself.
A failed backup is recorded too, and `rhizomectl status` shows both.
"""

from __future__ import annotations

import json
import re
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.harness.cluster import wait_for
from tests.integration.backup_support import (
    TIMEOUT,
    BackedCluster,
    cpu_seconds,
)

pytestmark = pytest.mark.integration

ROWS = 1_500_000  # about 100 MB of table


def load_data(backed: BackedCluster, master: str) -> None:
    cluster = backed.cluster
    keeper = cluster.keepers[master]
    keeper.execute(
        "CREATE TABLE big AS SELECT i, md5(i::text) AS payload FROM generate_series(1, %s) i",
        (ROWS,),
    )
    keeper.execute("VACUUM ANALYZE big")  # autovacuum's work is not the backup's: done first
    keeper.execute("CHECKPOINT")
    ((position,),) = keeper.execute("SELECT pg_current_wal_lsn()::text")
    ((last_segment,),) = keeper.execute("SELECT pg_walfile_name(pg_switch_wal())")

    def archived() -> bool:  # archiving its WAL is not idleness either
        rows = keeper.execute("SELECT last_archived_wal FROM pg_stat_archiver")
        return rows[0][0] is not None and rows[0][0] >= last_segment

    wait_for(archived, TIMEOUT, f"the master to archive {last_segment}")

    def replayed() -> bool:
        return all(
            cluster.keepers[name].execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (position,)
            )[0][0]
            for name in set(cluster.keepers) - {master}
        )

    wait_for(replayed, TIMEOUT, "the standbys to replay the data")


@dataclass
class Load:
    """CPU seconds per second of wall time while an action ran."""

    seconds: float = 0.0
    master_postgres: float = 0.0
    """The master's PostgreSQL (postmaster, its live and finished children)."""
    pgbackrest: float = 0.0
    """pgBackRest's own processes (reading, checksumming, compressing the files)."""


def measure(backed: BackedCluster, master: str, action: Callable[[], object]) -> Load:
    pid = backed.cluster.keepers[master].postgres_pid
    assert pid is not None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, started = cpu_seconds(pid), time.monotonic()
    action()
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return Load(elapsed, (cpu_seconds(pid) - before) / elapsed, used / elapsed)


def copied_from(log: str, data_dir: str) -> int:
    """How many files pgBackRest's log says it copied from `data_dir`."""
    return len(re.findall(r"backup file (?:pg\d:)?" + re.escape(data_dir) + "/", log))


def test_a_full_backup_from_a_standby_is_recorded(backed_cluster: BackedCluster, capsys) -> None:
    backed = backed_cluster
    keepers = backed.cluster.keepers
    master = backed.master()
    standby = sorted(set(keepers) - {master})[0]
    load_data(backed, master)
    outcomes: list[int] = []

    idle = measure(backed, master, lambda: time.sleep(5))
    during = measure(
        backed, master, lambda: outcomes.append(backed.ctl("backup", "run", node=standby))
    )
    assert outcomes == [0], capsys.readouterr()
    stored = backed.cluster.store.read_last_backup()
    assert stored is not None
    record = stored.document
    assert record.ok and record.from_standby and record.type == "full"
    assert record.label is not None and record.label.endswith("F")
    assert record.size_bytes is not None and record.size_bytes > 80 * 1024 * 1024
    assert record.start_lsn is not None and record.stop_lsn is not None
    log = backed.repository.log_text(standby)
    assert "--backup-standby" in log and "replay on the standby" in log
    from_standby = copied_from(log, str(keepers[standby].data_dir))
    from_master = copied_from(log, str(keepers[master].data_dir))
    assert from_standby > 10 * max(from_master, 1), (from_standby, from_master, log[-3000:])

    def backup_from_master() -> None:
        done = backed.repository.pgbackrest(master, "backup", "--type=full")
        assert done.returncode == 0, done.stderr

    direct = measure(backed, master, backup_from_master)
    with capsys.disabled():  # the figures for the report (pytest -s)
        print(
            f"\nfull backup of {record.size_bytes / 2**20:.0f} MiB from a standby: "
            f"{record.duration:.1f} s ({from_standby} files from the standby, {from_master} from "
            f"the master); CPU s/s: master PostgreSQL idle {idle.master_postgres:.3f}, during the "
            f"standby backup {during.master_postgres:.3f} (pgBackRest {during.pgbackrest:.3f}, on "
            f"the standby's host in production); a backup from the master: {direct.seconds:.1f} s, "
            f"master PostgreSQL {direct.master_postgres:.3f} + pgBackRest {direct.pgbackrest:.3f} "
            "reading the master's files"
        )
    assert during.master_postgres < 0.25, "the master's PostgreSQL did the copying?"
    capsys.readouterr()
    assert backed.ctl("status") == 0
    assert "last backup:" in capsys.readouterr().out


def test_a_failed_backup_is_recorded_and_shown(backed_cluster: BackedCluster, capsys) -> None:
    backed = backed_cluster
    node = sorted(backed.cluster.keepers)[0]
    stopped = backed.repository.pgbackrest(node, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert backed.ctl("backup", "run", "--type", "incr", node=node) == 1
    stored = backed.cluster.store.read_last_backup()
    assert stored is not None and not stored.document.ok
    assert stored.document.error is not None and "stop" in stored.document.error
    capsys.readouterr()
    assert backed.ctl("status") == 0
    assert "last backup: FAILED" in capsys.readouterr().out
    assert backed.ctl("status", "--json") == 0
    report = json.loads(capsys.readouterr().out)["last_backup"]
    assert report["ok"] is False and report["age_seconds"] >= 0
    assert backed.ctl("backup", "info", "--json", node=node) == 0
