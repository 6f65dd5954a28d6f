"""A restarted keeper keeps its PostgreSQL and its lease; a paused cluster's PostgreSQL
outlives its keeper (docs/fencing.md, "Restarts and pause").

Real etcd, real keepers and PostgreSQL. Each test watches the keeper's
document (it must never disappear during a restart), the postmaster's PID
and a writer's commits.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import psycopg2
import pytest

from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from tests.harness.keeper import (
    KeeperProcess,
    StateWriter,
    reported,
    wait_reported,
    wait_until,
)
from tests.harness.processes import descendant_pids, is_alive
from tests.integration.test_keeper_fencing import injected_master

pytestmark = pytest.mark.integration


def lease_of(store: ClusterStore, name: str) -> int | None:
    stored = store.read_view().keepers.get(name)
    return stored.lease if stored is not None else None


class Watch:
    """Polls the keeper's document and commits rows on one connection, in threads."""

    def __init__(self, store: ClusterStore, keeper: KeeperProcess) -> None:
        self.store = store
        self.keeper = keeper
        self.document_missing = 0
        self.commits = 0
        self.failures: list[str] = []
        self.done = threading.Event()
        keeper.execute("CREATE TABLE IF NOT EXISTS restart_writes (id serial, at float8)")
        self.threads = [
            threading.Thread(target=self._watch_document, daemon=True),
            threading.Thread(target=self._write, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def _watch_document(self) -> None:
        while not self.done.wait(0.05):
            if reported(self.store, self.keeper.name) is None:
                self.document_missing += 1

    def _write(self) -> None:
        connection = self.keeper.connect()
        connection.autocommit = True  # each INSERT commits (`with connection` would open one
        with connection.cursor() as cursor:  # transaction for the whole loop)
            while not self.done.wait(0.02):
                try:
                    cursor.execute("INSERT INTO restart_writes (at) VALUES (%s)", (time.time(),))
                    self.commits += 1
                except psycopg2.Error as error:
                    self.failures.append(str(error))
                    return

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(5)


def keeper_log(keeper: KeeperProcess) -> str:
    return keeper.log_path.read_text(errors="replace")


def test_a_master_keeper_restarted_in_place_keeps_postgres_and_its_lease(
    store, keeper_factory, capsys
):
    """SIGUSR2: no failover: same PostgreSQL, same lease, the document never gone."""
    keeper, _ = injected_master(store, keeper_factory)
    postmaster, lease = keeper.postgres_pid, lease_of(store, "k1")
    watch = Watch(store, keeper)
    time.sleep(0.5)
    before = watch.commits
    os.kill(keeper.pid, signal.SIGUSR2)
    sent_at = time.monotonic()
    wait_until(lambda: keeper_log(keeper).count("kept lease") == 1, 10, "the lease kept")
    restarted_after = time.monotonic() - sent_at
    wait_until(lambda: watch.commits > before + 20, 5, "writes going on")
    time.sleep(5.5)  # longer than the lease TTL: the new keeper renews it
    watch.stop()
    assert keeper.is_running, keeper.log_tail()
    assert watch.failures == [] and watch.document_missing == 0
    assert keeper.postgres_pid == postmaster and lease_of(store, "k1") == lease
    assert reported(store, "k1", role="primary", running=True, fenced=False, holding=False)
    assert "FENCED" not in keeper_log(keeper)
    with capsys.disabled():
        print(f"\nkeeper restarted in place: lease kept {restarted_after:.2f} s after SIGUSR2")


def test_a_keeper_restarted_by_systemd_keeps_postgres_and_its_lease(store, keeper_factory):
    """SIGTERM while systemd restarts the unit (simulated); a new keeper process takes over."""
    keeper, faults = injected_master(store, keeper_factory)
    postmaster, lease = keeper.postgres_pid, lease_of(store, "k1")
    watch = Watch(store, keeper)
    (faults / "systemd_restart").touch()
    os.kill(keeper.pid, signal.SIGTERM)
    assert keeper.wait_exit_leaving_guard(10) == 0, keeper.log_tail()
    (faults / "systemd_restart").unlink()
    keeper.start()
    wait_until(lambda: "kept lease" in keeper_log(keeper), 10, "the lease kept")
    time.sleep(2.0)
    watch.stop()
    assert watch.failures == [] and watch.document_missing == 0
    assert keeper.postgres_pid == postmaster and lease_of(store, "k1") == lease


def test_a_keeper_that_does_not_come_back_loses_postgres_at_the_fence_deadline(
    store, keeper_factory
):
    timing = ClusterSpec().timing
    keeper, faults = injected_master(store, keeper_factory)
    tree = {keeper.postgres_pid or 0} | descendant_pids(keeper.postgres_pid or 0)
    (faults / "systemd_restart").touch()
    os.kill(keeper.pid, signal.SIGTERM)
    left_at = time.monotonic()
    assert keeper.wait_exit_leaving_guard(10) == 0, keeper.log_tail()
    wait_until(lambda: not any(map(is_alive, tree)), timing.keeper_lease_ttl, "PostgreSQL killed")
    killed_after = time.monotonic() - left_at
    assert killed_after < timing.fence_deadline + 0.2
    assert reported(store, "k1") is not None, "the lease expired before the fence"
    wait_until(lambda: reported(store, "k1") is None, 2 * timing.keeper_lease_ttl, "expiry")
    assert "no keeper came back before the fence deadline" in keeper_log(keeper)


def pause(store: ClusterStore, paused: bool, record_hold: bool = True) -> None:
    """Pause or resume; while paused, record k1 as held as the leader sentinel does."""
    stored = store.read_spec()
    assert stored is not None
    spec = stored.document.model_copy(update={"paused": paused})
    assert store.write_spec(spec, stored.mod_revision)
    if paused and record_hold:
        info = reported(store, "k1")
        assert info is not None and info.instance_id is not None
        state = store.read_state()
        assert state is not None
        held = state.document.model_copy(update={"paused_holds": {"k1": info.instance_id}})
        assert store.write_state(held, state.mod_revision)


def test_a_paused_master_the_sentinel_did_not_record_as_held_is_fenced_as_usual(
    store, keeper_factory
):
    """Holding needs the sentinel's record: without it a resume would fail over from a
    PostgreSQL that nothing fences (pause_hold.py)."""
    keeper, _ = injected_master(store, keeper_factory)
    tree = {keeper.postgres_pid or 0} | descendant_pids(keeper.postgres_pid or 0)
    pause(store, True, record_hold=False)
    time.sleep(2.0)  # a couple of the keeper's passes while paused
    assert reported(store, "k1", holding=False) is not None
    os.kill(keeper.pid, signal.SIGKILL)
    wait_until(lambda: not any(map(is_alive, tree)), 2.0, "PostgreSQL fenced with its keeper")


def test_a_paused_clusters_postgres_outlives_a_killed_keeper_and_is_taken_back(
    store, keeper_factory
):
    timing = ClusterSpec().timing
    keeper, _ = injected_master(store, keeper_factory)
    postmaster = keeper.postgres_pid
    pause(store, True)
    wait_reported(store, "k1", "holding under pause", timeout=5, holding=True)
    wait_until(lambda: "fencing guard mode: hold" in keeper_log(keeper), 5, "the guard holds")
    watch = Watch(store, keeper)
    os.kill(keeper.pid, signal.SIGKILL)
    keeper.wait_exit_leaving_guard(5)
    time.sleep(timing.keeper_lease_ttl + 1.5)
    assert reported(store, "k1") is None, "the lease outlived the keeper"
    assert watch.failures == [] and is_alive(postmaster or 0)
    commits = watch.commits
    time.sleep(0.3)
    assert watch.commits > commits, "PostgreSQL stopped taking writes while paused"
    keeper.start()
    wait_reported(store, "k1", "taken back, holding", timeout=15, holding=True, running=True)
    assert keeper.postgres_pid == postmaster
    pause(store, False)
    wait_reported(store, "k1", "fencing armed again", timeout=5, holding=False, fenced=False)
    watch.stop()
    assert watch.failures == []
    tree = {postmaster or 0} | descendant_pids(postmaster or 0)
    os.kill(keeper.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: not any(map(is_alive, tree)), timing.fence_deadline + 0.5, "fenced")
    finally:
        os.kill(keeper.pid, signal.SIGCONT)
    assert "FENCED by the guard" in keeper_log(keeper)


def test_a_stopped_keeper_of_a_paused_cluster_leaves_postgres_running(store, keeper_factory):
    keeper, _ = injected_master(store, keeper_factory)
    postmaster, lease = keeper.postgres_pid, lease_of(store, "k1")
    pause(store, True)
    wait_reported(store, "k1", "holding under pause", timeout=5, holding=True)
    wait_until(lambda: "fencing guard mode: hold" in keeper_log(keeper), 5, "the guard holds")
    os.kill(keeper.pid, signal.SIGTERM)
    assert keeper.wait_exit_leaving_guard(10) == 0, keeper.log_tail()
    time.sleep(1.0)
    assert is_alive(postmaster or 0) and keeper.accepts_connections()
    keeper.start()
    wait_until(lambda: "kept lease" in keeper_log(keeper), 10, "the lease kept")
    assert keeper.postgres_pid == postmaster and lease_of(store, "k1") == lease
    pause(store, False)
    wait_reported(store, "k1", "holding ended", timeout=5, holding=False)
    keeper.stop()
    assert not is_alive(postmaster or 0), "a plain stop after the resume stops PostgreSQL"


def test_a_keeper_stopped_before_its_guard_holds_leaves_postgres_held(store, keeper_factory):
    """`holding: true` is stored but the guard enters `hold` only on the keeper's next pass:
    a stop in between must depart holding, as the store already says."""
    keeper, faults = injected_master(store, keeper_factory)
    postmaster = keeper.postgres_pid
    (faults / "late_hold").touch()
    pause(store, True)
    wait_reported(store, "k1", "holding under pause", timeout=5, holding=True)
    time.sleep(1.5)  # passes go by; the injected fault keeps the guard out of `hold`
    assert "fencing guard mode: hold" not in keeper_log(keeper)
    os.kill(keeper.pid, signal.SIGTERM)
    assert keeper.wait_exit_leaving_guard(10) == 0, keeper.log_tail()
    assert "leaving PostgreSQL running (hold)" in keeper_log(keeper)
    time.sleep(ClusterSpec().timing.fence_deadline + 1.0)
    assert keeper.postgres_pid == postmaster and keeper.accepts_connections()
    (faults / "late_hold").unlink()
    keeper.start()
    wait_reported(store, "k1", "taken back, holding", timeout=15, holding=True, running=True)
    assert keeper.postgres_pid == postmaster


def test_a_handoff_that_does_not_match_falls_back_to_stopping_the_stray(store, keeper_factory):
    keeper, faults = injected_master(store, keeper_factory)
    postmaster = keeper.postgres_pid
    (faults / "systemd_restart").touch()
    os.kill(keeper.pid, signal.SIGTERM)
    assert keeper.wait_exit_leaving_guard(10) == 0
    (faults / "systemd_restart").unlink()
    handoff = keeper.state_dir / "handoff.json"
    fields = json.loads(handoff.read_text())
    handoff.write_text(json.dumps({**fields, "instance_id": "someone-else"}))
    keeper.start()
    wait_until(lambda: "not taking over a running PostgreSQL" in keeper_log(keeper), 10, "refused")
    wait_until(lambda: not is_alive(postmaster or 0), 10, "the stray stopped")
    StateWriter  # noqa: B018 - the state still names k1 master: it starts PostgreSQL again
    wait_reported(store, "k1", "primary again", timeout=30, role="primary", running=True)
