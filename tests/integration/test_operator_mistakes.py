"""Operator mistakes on a real cluster (issue 14): bad parameter values, restart storms, status.

Two keepers, one sentinel, real etcd and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg2
import pytest

from rhizome.cli.main import main as rhizomectl
from tests.harness.cluster import LocalCluster, wait_for

pytestmark = pytest.mark.integration

START_LINE = "starting PostgreSQL as a"


@pytest.fixture
def cluster(tmp_path, etcd):
    made = LocalCluster(tmp_path, etcd, keeper_count=2)
    try:
        made.start()
        yield made
    except AssertionError as error:
        raise AssertionError(f"{error}\n{made.diagnostics()}") from error
    finally:
        made.stop()


def ctl(cluster: LocalCluster, capsys, *arguments: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = rhizomectl(["--endpoints", cluster.etcd.client_url, "--cluster", "main", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def roles(cluster: LocalCluster) -> tuple[str, str]:
    state = cluster.state()
    assert state is not None and state.master is not None
    standby = next(name for name in cluster.keepers if name != state.master)
    return state.master, standby


def last_error(cluster: LocalCluster, name: str) -> str:
    stored = cluster.store.read_view().keepers.get(name)
    return (stored.document.last_error or "") if stored is not None else ""


def starts(cluster: LocalCluster, name: str) -> int:
    return cluster.keepers[name].log_path.read_text(errors="replace").count(START_LINE)


def setting(keeper, name: str) -> str | None:
    try:
        return keeper.execute(f"SHOW {name}")[0][0]
    except psycopg2.Error:
        return None


def test_bad_values_are_refused_by_rhizomectl_and_changing_nothing(cluster, capsys):
    revision = cluster.store.read_spec().mod_revision
    for assignment in ("pg_parameters.shared_buffers=banana", 'pg_parameters.work_mem="banana"'):
        code, out, err = ctl(cluster, capsys, "spec", "patch", assignment)
        name = assignment.split(".")[1].split("=")[0]
        assert code == 2, (out, err)
        assert f"pg_parameters.{name}: 'banana' is not an integer; give an integer from" in err
        assert cluster.store.read_spec().mod_revision == revision
    code, _, err = ctl(cluster, capsys, "spec", "patch", "pg_parameters.log_statement=bogus")
    assert code == 2 and "Available values: none, ddl, mod, all" in err, err
    code, _, err = ctl(cluster, capsys, "spec", "patch", "pg_parameters.work_mem=8MB")
    assert code == 0, err
    assert cluster.store.read_spec().mod_revision > revision


def test_a_value_injected_past_the_check_is_reported_and_never_written(cluster):
    master, standby = roles(cluster)
    stored = cluster.store.read_spec()
    bad = stored.document.model_copy(
        update={"pg_parameters": {"shared_buffers": "banana", "work_mem": "8MB"}}
    )
    assert cluster.store.write_spec(bad, stored.mod_revision) is not None
    refused = "pg_parameters.shared_buffers = 'banana'"
    for name in (master, standby):
        wait_for(
            lambda name=name: refused in last_error(cluster, name),
            30, f"{name} reports the refused value",
        )  # fmt: skip
        conf = (cluster.keepers[name].data_dir / "postgresql.conf").read_text()
        assert "banana" not in conf
    wait_for(lambda: setting(cluster.keepers[master], "work_mem") == "8MB", 20, "work_mem applied")
    # PostgreSQL restarts on the file kept: once, no storm
    before = starts(cluster, standby)
    cluster.keepers[standby].crash_postgres()
    wait_for(lambda: setting(cluster.keepers[standby], "work_mem") == "8MB", 30, "restarted")
    time.sleep(3)
    assert starts(cluster, standby) - before == 1, cluster.keepers[standby].log_tail(40)


def test_a_postgresql_that_cannot_start_backs_off_and_says_why(cluster):
    _master, standby = roles(cluster)
    stored = cluster.store.read_spec()
    missing = stored.document.model_copy(
        update={"pg_parameters": {"shared_preload_libraries": "rhizome_no_such_library"}}
    )  # postgres -C accepts it; only a start loads it
    assert cluster.store.write_spec(missing, stored.mod_revision) is not None
    keeper = cluster.keepers[standby]
    wait_for(
        lambda: "rhizome_no_such_library" in (keeper.data_dir / "postgresql.conf").read_text(),
        20, "the file written",
    )  # fmt: skip
    before = starts(cluster, standby)
    keeper.crash_postgres()
    wait_for(lambda: "next start in" in last_error(cluster, standby), 20, "the back-off reported")
    assert 'could not access file "rhizome_no_such_library"' in last_error(cluster, standby)
    time.sleep(10)
    failed = starts(cluster, standby) - before
    assert 2 <= failed <= 5, keeper.log_tail(60)  # 1 + 2 + 4 s of back-off; a storm makes 100s


def test_status_with_the_master_killed_shows_the_true_lag_and_a_held_route(cluster, capsys):
    master, standby = roles(cluster)
    cluster.keepers[standby].execute("SELECT pg_wal_replay_pause()")
    for number in range(2):  # each switch moves the master's position to the next 16 MiB
        cluster.keepers[master].execute(f"CREATE TABLE filler{number} (g int)")
        cluster.keepers[master].execute("SELECT pg_switch_wal()")
    (replayed,) = cluster.keepers[standby].execute(
        "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn"
    )[0]

    def recorded() -> bool:
        state = cluster.state()
        return state is not None and (state.master_flush_lsn or 0) > int(replayed) + 4 * 1024**2

    wait_for(recorded, 30, "the sentinel records the master's position")
    assert ctl(cluster, capsys, "pause")[0] == 0  # no failover: the master stays down
    os.kill(cluster.keepers[master].pid, signal.SIGKILL)
    if cluster.keepers[master].postgres_pid is not None:
        cluster.keepers[master].crash_postgres()
    wait_for(lambda: master not in cluster.store.read_view().keepers, 30, "the lease expires")
    code, out, _ = ctl(cluster, capsys, "status")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith(standby + " "))
    assert " MiB " in row and " 0 B " not in row, out
    assert f"route held: its target {master} is not running" in out, out
    assert "master down:" in out and f"{master}'s keeper does not report" in out, out
