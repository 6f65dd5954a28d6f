"""rhizomectl operations against a real etcd: pause, maintenance, switchover, removal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from rhizome.cli.keeper_status import REMOVAL_SETTING
from rhizome.etcd import EtcdClient, EtcdSettings
from rhizome.spec import KeeperSettings, parse_spec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import (
    ClusterState,
    Command,
    CommandResult,
    KeeperAssignment,
    Operation,
    ProxyTarget,
)
from tests.integration.test_rhizomectl import Outcome, rhizomectl_in_process, seed_running_cluster

pytestmark = pytest.mark.integration


@pytest.fixture
def store(etcd) -> ClusterStore:
    return ClusterStore(EtcdClient(EtcdSettings(endpoints=(etcd.client_url,))), "main")


@pytest.fixture
def ctl(etcd, capsys) -> Callable[..., Outcome]:
    return rhizomectl_in_process(etcd.client_url, capsys)


class FakeSentinel(threading.Thread):
    """Carries out each command like the leader sentinel would: phase, then result."""

    def __init__(self, store: ClusterStore, outcome: str, reason: str) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.outcome = outcome
        self.reason = reason
        self.stopped = threading.Event()
        self.handled: list[Command] = []

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            view = self.store.read_view()
            for name, stored in view.commands.items():
                assert view.state is not None
                self.carry_out(stored.document, view.state.document, view.state.mod_revision)
                self.store.finish_command(name, stored.mod_revision)
                self.handled.append(stored.document)

    def carry_out(self, command: Command, state: ClusterState, revision: int) -> None:
        target = command.target or "pg2"
        now = time.time()
        operation = Operation(
            kind=command.kind, phase="blocking", target=target, previous_master=state.master,
            started_at=now, phase_started_at=now, command=command.name,
        )  # fmt: skip
        blocking = state.with_next_generation(
            operation=operation, proxy_target=state.proxy_target.retargeted(None)
        )
        revision = self.store.write_state(blocking, revision) or 0
        time.sleep(0.3)
        done = self.outcome == "done"
        result = CommandResult(
            command=command.name, kind=command.kind, outcome=self.outcome, reason=self.reason,
            finished_at=time.time(), old_master=state.master,
            new_master=target if done else state.master, write_pause=0.8 if done else None,
            requested_at=command.requested_at,
        )  # fmt: skip
        finished = blocking.with_changes(operation=None, command_results=(result,))
        if done:
            finished = finished.with_changes(
                master=target,
                assignments={
                    target: KeeperAssignment(role="master"),
                    "pg1": KeeperAssignment(role="standby", follow=target),
                },
                proxy_target=ProxyTarget(
                    proxy_generation=9, master=target, host="127.0.0.1", port=5432
                ),
            )
        assert self.store.write_state(finished, revision) is not None


@pytest.fixture
def sentinel(store):
    def start(outcome: str = "done", reason: str = "pg2 promoted") -> FakeSentinel:
        fake = FakeSentinel(store, outcome, reason)
        fake.start()
        started.append(fake)
        return fake

    started: list[FakeSentinel] = []
    yield start
    for fake in started:
        fake.stopped.set()
        fake.join(timeout=5)


def test_pause_and_resume_write_the_spec(ctl, store):
    seed_running_cluster(store)
    paused = ctl("pause")
    assert paused.code == 0 and "paused cluster main" in paused.out
    assert store.read_spec().document.paused
    assert "already paused" in ctl("pause").out
    resumed = ctl("resume")
    assert resumed.code == 0 and "resumed cluster main" in resumed.out
    assert not store.read_spec().document.paused
    assert "is not paused" in ctl("resume").out


def test_keeper_maintenance_on_and_off(ctl, store):
    seed_running_cluster(store)
    on = ctl("keeper", "maintenance", "pg2", "on")
    assert on.code == 0 and on.out.startswith("keeper pg2 is in maintenance")
    assert store.read_spec().document.keeper_settings("pg2").maintenance
    assert "maintenance" in next(row for row in ctl("status").out.splitlines() if "pg2" in row)
    off = ctl("keeper", "maintenance", "pg2", "off")
    assert off.code == 0 and "out of maintenance" in off.out
    assert not store.read_spec().document.keeper_settings("pg2").maintenance
    master = ctl("keeper", "maintenance", "pg1", "on")
    assert master.code == 0 and "warning: pg1 is the master" in master.err
    unknown = ctl("keeper", "maintenance", "pg7", "on")
    assert unknown.code == 1
    assert "keeper pg7 is unknown in cluster main (known keepers: pg1, pg2, pg3)" in unknown.err


def test_switchover_is_refused_when_paused_or_the_target_is_unknown(ctl, store):
    seed_running_cluster(store, parse_spec({"paused": True}))
    paused = ctl("switchover", "--to", "pg2")
    assert paused.code == 1
    assert paused.err == (
        "rhizomectl: error: switchover refused: the cluster is paused; resume it first with "
        "`rhizomectl resume`\n"
    )
    ctl("resume")
    unknown = ctl("switchover", "--to", "pg9")
    assert unknown.code == 1 and "keeper pg9 is unknown" in unknown.err
    master = ctl("failover", "--to", "pg1")
    assert master.code == 1 and "keeper pg1 is already the master" in master.err
    assert store.read_view().commands == {}, "nothing was submitted"


def test_switchover_without_wait_submits_a_command(ctl, store):
    seed_running_cluster(store)
    submitted = ctl("switchover", "--to", "pg3", "--timeout", "30")
    assert submitted.code == 0, submitted.err
    (command,) = [stored.document for stored in store.read_view().commands.values()]
    assert command.kind == "switchover" and command.target == "pg3" and command.timeout == 30.0
    assert command.requested_by.startswith("rhizomectl ")
    assert f"submitted switchover command {command.name} (to pg3)" in submitted.out
    second = ctl("switchover")
    assert second.code == 1 and f"{command.name} (switchover) is still pending" in second.err


def test_switchover_wait_prints_the_phases_and_the_outcome(ctl, store, sentinel):
    seed_running_cluster(store)
    sentinel()
    outcome = ctl("switchover", "--to", "pg2", "--wait", "--timeout", "20")
    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    name = lines[0].split()[3]
    assert lines[0] == f"submitted switchover command {name} (to pg2)"
    assert name.startswith("switchover-")
    assert "switchover (to pg2): phase blocking" in lines
    assert lines[-1] == f"switchover {name} done pg1 -> pg2, writes paused 0.8 s: pg2 promoted"
    assert "master:      pg2" in ctl("status").out


def test_failover_wait_exits_1_when_the_sentinel_refuses(ctl, store, sentinel):
    seed_running_cluster(store)
    sentinel(outcome="refused", reason="pg3 is 40 MiB behind")
    outcome = ctl("failover", "--to", "pg3", "--wait", "--timeout", "20")
    assert outcome.code == 1
    assert "a forced failover skips the lag" in outcome.err
    assert outcome.err.splitlines()[-1].endswith(" refused: pg3 is 40 MiB behind")


def test_switchover_wait_gives_up_after_the_timeout(ctl, store, monkeypatch):
    monkeypatch.setattr("rhizome.cli.waiting.RESULT_MARGIN", 0.5)
    seed_running_cluster(store)
    started = time.monotonic()
    outcome = ctl("switchover", "--wait", "--timeout", "0.5")
    assert 1.0 <= time.monotonic() - started < 5.0
    assert outcome.code == 1 and "no result for switchover-" in outcome.err


def test_keeper_remove_refuses_the_master(ctl, store):
    seed_running_cluster(store)
    before = store.read_spec()
    outcome = ctl("keeper", "remove", "pg1")
    assert outcome.code == 1
    assert outcome.err == (
        "rhizomectl: error: keeper pg1 is the master of cluster main; move the master first "
        "with `rhizomectl switchover`, then remove pg1\n"
    )
    assert ctl("keeper", "remove", "pg8").code == 1
    assert store.read_spec() == before


@pytest.mark.skipif(
    REMOVAL_SETTING not in KeeperSettings.model_fields,
    reason="the spec has no keepers.<name>.removed setting yet (docs/protocol.md)",
)
def test_keeper_remove_marks_a_standby_removed_and_undo_clears_it(ctl, store):
    seed_running_cluster(store)
    removed = ctl("keeper", "remove", "pg3")
    assert removed.code == 0, removed.err
    assert getattr(store.read_spec().document.keeper_settings("pg3"), REMOVAL_SETTING)
    assert "removal-requested" in ctl("status").out
    undone = ctl("keeper", "remove", "pg3", "--undo")
    assert undone.code == 0 and "is no longer marked removed" in undone.out
    assert not getattr(store.read_spec().document.keeper_settings("pg3"), REMOVAL_SETTING)
