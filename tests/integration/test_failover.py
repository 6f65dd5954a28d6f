"""Failover on real PostgreSQL and etcd: etcd + three keepers + a sentinel on loopback."""

from __future__ import annotations

import os
import signal
import time

import psycopg2
import pytest

from rhizome.cli.main import main as rhizomectl
from rhizome.config import ETCD_APIS
from rhizome.store.keys import KeyKind
from tests.harness.cluster import LocalCluster, Writer, close_quietly, wait_for
from tests.harness.keeper import remove_data_dir
from tests.harness.processes import descendant_pids, is_alive

pytestmark = pytest.mark.integration

FAILOVER_TIMEOUT = 30.0


@pytest.fixture
def make_cluster(tmp_path, etcd, etcd_api):
    clusters: list[LocalCluster] = []

    def make(spec: dict | None = None) -> tuple[LocalCluster, str]:
        cluster = LocalCluster(tmp_path, etcd, spec=spec, etcd_api=etcd_api)
        clusters.append(cluster)
        try:
            return cluster, cluster.start()
        except AssertionError as error:
            raise AssertionError(f"{error}\n{cluster.diagnostics()}") from error

    yield make
    for cluster in clusters:
        cluster.stop()


def ctl(cluster: LocalCluster, *arguments: str) -> int:
    return rhizomectl(["--endpoints", cluster.etcd.client_url, "--cluster", "main", *arguments])


def query(keeper, sql: str) -> list | None:
    """Rows of `sql` on a keeper's PostgreSQL, or None while it does not answer."""
    try:
        return keeper.execute(sql)
    except psycopg2.Error:
        return None


def wait_for_rejoin(cluster: LocalCluster, old_master: str, new_master: str) -> None:
    """The old master streams from the new one, on the new master's timeline."""

    def rejoined() -> bool:
        view = cluster.store.read_view()
        old = view.keepers.get(old_master)
        new = view.keepers.get(new_master)
        if old is None or new is None:
            return False
        old_info, new_info = old.document, new.document
        return (
            old_info.role == "standby"
            and old_info.running
            and old_info.timeline == new_info.timeline
            and old_master in new_info.streaming_standbys
        )

    wait_for(rejoined, FAILOVER_TIMEOUT, f"{old_master} to rejoin as a standby of {new_master}")


def assert_all_present(cluster: LocalCluster, acknowledged: list[int]) -> None:
    master = cluster.keepers[cluster.wait_for_master(FAILOVER_TIMEOUT)]
    present = {number for (number,) in master.execute("SELECT number FROM writes")}
    lost = sorted(set(acknowledged) - present)
    assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:10]}"


def test_replication_reaches_every_standby(make_cluster):
    cluster, master = make_cluster()
    cluster.write("CREATE TABLE replicated (value text)")
    cluster.write("INSERT INTO replicated VALUES ('hello')")
    for name, keeper in cluster.keepers.items():
        if name == master:
            continue
        wait_for(
            lambda keeper=keeper: query(keeper, "SELECT value FROM replicated") == [("hello",)],
            10,
            f"the row on {name}",
        )
        assert keeper.execute("SELECT pg_is_in_recovery()") == [(True,)]
        assert keeper.execute("SHOW data_checksums") == [("on",)]
    slots = cluster.keepers[master].execute("SELECT slot_name FROM pg_replication_slots")
    assert sorted(slot for (slot,) in slots) == sorted(set(cluster.keepers) - {master})


def test_postgres_crash_fails_over_and_the_old_master_rejoins(make_cluster):
    cluster, master = make_cluster()
    writer = Writer(cluster).start()
    time.sleep(1)
    cluster.keepers[master].kill_postgres()
    crashed_at = time.monotonic()
    new_master = cluster.wait_for_master(FAILOVER_TIMEOUT, other_than=master)
    writer.first_success_after(crashed_at, FAILOVER_TIMEOUT, other_than=master)
    writer.stop()
    wait_for_rejoin(cluster, master, new_master)
    state = cluster.state()
    assert state.history[-1].old_master == master and state.history[-1].new_master == new_master


@pytest.mark.parametrize("etcd_api", ETCD_APIS)
def test_host_death_fails_over_and_the_node_rejoins_when_back(make_cluster):
    cluster, master = make_cluster()
    writer = Writer(cluster).start()
    time.sleep(1)
    cluster.keepers[master].kill()
    killed_at = time.monotonic()
    new_master = cluster.wait_for_master(FAILOVER_TIMEOUT, other_than=master)
    writer.first_success_after(killed_at, FAILOVER_TIMEOUT, other_than=master)
    writer.stop()
    cluster.keepers[master].start()
    wait_for_rejoin(cluster, master, new_master)


def test_frozen_master_is_fenced_and_rejoins_after_thaw(make_cluster):
    cluster, master = make_cluster()
    old = cluster.keepers[master]
    old.freeze()
    try:
        new_master = cluster.wait_for_master(FAILOVER_TIMEOUT, other_than=master)
    finally:
        old.thaw()
    # Right after the thaw the old master must not accept writes for long: its
    # keeper finds its lease gone and fences PostgreSQL, then rejoins.
    wait_for_rejoin(cluster, master, new_master)
    assert old.execute("SELECT pg_is_in_recovery()") == [(True,)]


def test_synchronous_mode_loses_no_acknowledged_write(make_cluster):
    cluster, master = make_cluster({"synchronous_replication": {"enabled": True}})
    wait_for(
        lambda: cluster.state().synchronous_standbys.promotable,
        FAILOVER_TIMEOUT,
        "a confirmed synchronous standby",
    )
    writer = Writer(cluster, interval=0.005).start()
    time.sleep(2)
    cluster.keepers[master].kill()
    cluster.wait_for_master(FAILOVER_TIMEOUT, other_than=master)
    time.sleep(0.5)
    writer.stop()
    assert writer.acknowledged, "the writer never succeeded"
    assert_all_present(cluster, writer.acknowledged)


def test_async_failover_refuses_standbys_beyond_the_lag_bound(make_cluster):
    cluster, master = make_cluster({"max_standby_lag_bytes": 1024 * 1024})
    for name, keeper in cluster.keepers.items():
        if name != master:
            ((receiver_pid,),) = keeper.execute("SELECT pid FROM pg_stat_wal_receiver")
            os.kill(receiver_pid, signal.SIGSTOP)  # this standby stops receiving WAL
    cluster.write("CREATE TABLE ballast AS SELECT repeat('x', 200) FROM generate_series(1, 40000)")
    time.sleep(2)  # the master publishes its new position
    cluster.keepers[master].kill()
    reason = wait_for(
        lambda: cluster.state().no_promotion_reason,
        FAILOVER_TIMEOUT,
        "the sentinel to explain why it does not promote",
    )
    time.sleep(2)
    state = cluster.state()
    assert state.master is None or state.master == master, "a lagging standby was promoted"
    assert "lag" in reason or "behind" in reason, reason


def test_switchover_with_a_running_writer_loses_nothing(make_cluster):
    cluster, master = make_cluster()
    writer = Writer(cluster).start()
    time.sleep(1)
    assert ctl(cluster, "switchover", "--wait", "--timeout", "30") == 0
    new_master = cluster.wait_for_master(FAILOVER_TIMEOUT, other_than=master)
    time.sleep(1)
    writer.stop()
    assert_all_present(cluster, writer.acknowledged)
    wait_for_rejoin(cluster, master, new_master)
    result = cluster.state().command_results[-1]
    assert result.outcome == "done" and result.write_pause is not None


def test_a_standby_that_just_crossed_a_timeline_switch_can_be_promoted_again(make_cluster):
    # Until its first restartpoint (checkpoint_timeout later) a standby's control
    # file still names the old timeline; with no WAL receiver (its upstream is
    # shutting down or dead) only its pg_wal tells it is on the new one.
    cluster, master = make_cluster()
    assert ctl(cluster, "switchover", "--wait", "--timeout", "30") == 0
    second = cluster.wait_for_master(FAILOVER_TIMEOUT, other_than=master)
    wait_for_rejoin(cluster, master, second)

    assert ctl(cluster, "switchover", "--to", master, "--wait", "--timeout", "30") == 0
    assert cluster.wait_for_master(FAILOVER_TIMEOUT) == master
    wait_for_rejoin(cluster, second, master)

    cluster.keepers[master].kill_postgres()
    third = cluster.wait_for_master(FAILOVER_TIMEOUT, other_than=master)
    assert cluster.state().history[-1].new_master == third


def test_pause_blocks_failover_and_a_held_master_needs_the_operator_after_resume(make_cluster):
    """While paused nothing fails over; the master is recorded as held (its PostgreSQL may
    outlive its keeper unfenced), so after the resume only the operator's confirmation that
    it is stopped fails it over (docs/protocol.md, "Pause holds")."""
    cluster, master = make_cluster()
    assert ctl(cluster, "pause") == 0
    wait_for(lambda: master in cluster.state().paused_holds, 10, "the master recorded as held")
    cluster.keepers[master].kill()
    time.sleep(cluster.spec.timing.keeper_lease_ttl + 3)
    assert cluster.state().master == master, "failed over while paused"
    assert ctl(cluster, "resume") == 0
    time.sleep(3)
    assert cluster.state().master == master, "failed over from a held master"
    standby = next(name for name in cluster.keepers if name != master)
    assert ctl(cluster, "failover", "--to", standby, "--old-master-stopped") == 0
    cluster.wait_for_master(FAILOVER_TIMEOUT, other_than=master)


def test_parameter_changes_reload_or_report_pending_restart(make_cluster):
    cluster, _master = make_cluster()
    assert ctl(cluster, "spec", "patch", 'pg_parameters.work_mem="12MB"') == 0
    for name, keeper in cluster.keepers.items():
        wait_for(
            lambda keeper=keeper: query(keeper, "SHOW work_mem") == [("12MB",)],
            15,
            f"work_mem reloaded on {name}",
        )
    assert ctl(cluster, "spec", "patch", 'pg_parameters.shared_buffers="64MB"') == 0

    def pending() -> bool:
        keepers = cluster.store.read_view().keepers
        return all("shared_buffers" in keepers[name].document.pending_restart for name in keepers)

    wait_for(pending, 15, "shared_buffers reported as pending restart on every keeper")


def test_a_removed_standby_data_directory_is_rebuilt(make_cluster):
    cluster, master = make_cluster()
    standby_name = next(name for name in cluster.keepers if name != master)
    standby = cluster.keepers[standby_name]
    standby.kill()
    remove_data_dir(standby.data_dir)
    cluster.write("CREATE TABLE after_loss (value integer)")
    standby.start()
    wait_for_rejoin(cluster, standby_name, master)
    wait_for(
        lambda: query(standby, "SELECT count(*) FROM after_loss") == [(0,)],
        15,
        "the table created while the standby was gone",
    )


def test_an_idle_keeper_writes_its_document_only_when_needed(make_cluster):
    cluster, master = make_cluster()
    cluster.wait_for_streaming(2, FAILOVER_TIMEOUT)
    standby = next(name for name in cluster.keepers if name != master)
    key = cluster.store.keys.member(KeyKind.KEEPER, standby)
    client = cluster.store.client
    first = wait_for(lambda: client.get(key), 10, f"{standby}'s document")
    time.sleep(3)  # three observations of an idle standby
    unchanged = client.get(key)
    assert unchanged is not None and unchanged.mod_revision == first.mod_revision
    assert client.delete(key)
    again = wait_for(lambda: client.get(key), 5, f"{standby}'s document again")
    assert again.lease == first.lease


def test_a_frozen_master_keeper_alone_leaves_no_writable_old_master(make_cluster):
    """SIGSTOP of the master's keeper only: PostgreSQL itself runs on, unfenced by its keeper.

    The fencing guard kills it before the lease expires, so when the new master is
    published the old one accepts no write, not even on a session opened before.
    """
    cluster, master = make_cluster()
    old = cluster.keepers[master]
    cluster.write("CREATE TABLE fenced (value text)")
    session = old.connect()
    session.autocommit = True
    tree = {old.postgres_pid or 0} | descendant_pids(old.postgres_pid or 0)
    os.kill(old.pid, signal.SIGSTOP)
    try:
        new_master = cluster.wait_for_master(FAILOVER_TIMEOUT, other_than=master)
        assert not any(map(is_alive, tree)), "the old master still runs after the failover"
        with pytest.raises(psycopg2.Error), session.cursor() as cursor:
            cursor.execute("INSERT INTO fenced VALUES ('written to the old master')")
        assert query(old, "SELECT 1") is None
    finally:
        os.kill(old.pid, signal.SIGCONT)
        close_quietly(session)
    wait_for_rejoin(cluster, master, new_master)
    assert cluster.keepers[new_master].execute("SELECT count(*) FROM fenced") == [(0,)]
