"""plan(): the assignment and the local observation → the keeper's next actions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rhizome.keeper.conffiles import Upstream
from rhizome.keeper.controldata import ControlData
from rhizome.keeper.observe import SqlObservation
from rhizome.keeper.plan import (
    UNRESPONSIVE_LIMIT,
    BaseBackup,
    ClusterFacts,
    CreateSlots,
    DropSlots,
    EnsureRoles,
    Initdb,
    LocalStatus,
    MarkRemoved,
    Plan,
    Promote,
    Rewind,
    Seal,
    Start,
    Stop,
    UpstreamStatus,
    WriteConfig,
    plan,
)
from rhizome.keeper.postmaster import StopMode
from rhizome.keeper.timelines import LocalHistory, TimelineSwitch
from rhizome.store.documents import KeeperAssignment

SYSTEM = "7000000000000000001"
OTHER_SYSTEM = "7000000000000000002"
UPSTREAM = Upstream("k1", "10.0.0.1", 5432)
MASTER = KeeperAssignment(role="master")
STANDBY = KeeperAssignment(role="standby", follow="k1")
FENCED = KeeperAssignment(role="fenced")
REMOVED = KeeperAssignment(role="removed")


def control(
    state: str = "shut down", timeline: int = 1, checkpoint: int = 0x3000000
) -> ControlData:
    return ControlData(
        system_identifier=SYSTEM, cluster_state=state, timeline=timeline,
        checkpoint_lsn=checkpoint, minimum_recovery_lsn=0, minimum_recovery_timeline=0,
        checksums=True,
    )  # fmt: skip


def primary(**changes: object) -> SqlObservation:
    fields = {"role": "primary", "system_identifier": SYSTEM, "timeline": 1, "version": 150000,
              "flush_lsn": 0x3000000, **changes}  # fmt: skip
    return SqlObservation(**fields)  # type: ignore[arg-type]


def standby(**changes: object) -> SqlObservation:
    fields = {"role": "standby", "system_identifier": SYSTEM, "timeline": 1, "version": 150000,
              "receive_lsn": 0x3000000, "replay_lsn": 0x3000000, **changes}  # fmt: skip
    return SqlObservation(**fields)  # type: ignore[arg-type]


STOPPED_PRIMARY = LocalStatus(data="present", control=control())
STOPPED_STANDBY = LocalStatus(data="present", control=control("shut down in recovery"))
RUNNING_PRIMARY = LocalStatus(data="present", process_running=True, sql=primary())
RUNNING_STANDBY = LocalStatus(data="present", process_running=True, sql=standby())
STARTING = LocalStatus(data="present", process_running=True)
EMPTY = LocalStatus(data="missing")


def upstream(timeline: int = 1, history: tuple[TimelineSwitch, ...] | None = None, **changes):
    fields = {"address": UPSTREAM, "running": True, "system_identifier": SYSTEM,
              "timeline": timeline, "history": history, **changes}  # fmt: skip
    return UpstreamStatus(**fields)


def facts(assignment: KeeperAssignment | None, **changes: object) -> ClusterFacts:
    return ClusterFacts(assignment=assignment, initialized=True, **changes)  # type: ignore[arg-type]


def first(result: Plan) -> object:
    assert result.actions, f"no action (waiting: {result.waiting})"
    return result.actions[0]


FENCE_STOP = Stop(StopMode.FAST, "assigned fenced")
SWITCH = (TimelineSwitch(1, 0x3000100),)  # timeline 1 ended at 0/3000100
CLONE = (BaseBackup(UPSTREAM, upstream_timeline=1), WriteConfig(), Start(standby=True))
CLONE_ON_2 = (BaseBackup(UPSTREAM, upstream_timeline=2), WriteConfig(), Start(standby=True))
REWIND = (Rewind(UPSTREAM), WriteConfig(), Start(standby=True))


@pytest.mark.parametrize(
    ("local", "cluster", "expected"),
    [
        # master
        (
            EMPTY,
            ClusterFacts(MASTER),
            (Initdb(), WriteConfig(), Start(standby=False), EnsureRoles()),
        ),
        (STOPPED_PRIMARY, facts(MASTER), (Start(standby=False),)),
        (
            LocalStatus(data="present", control=control(), config_differs=True),
            facts(MASTER),
            (WriteConfig(), Start(standby=False)),
        ),
        (RUNNING_STANDBY, facts(MASTER), (Promote(),)),
        (RUNNING_PRIMARY, facts(MASTER), ()),
        (
            LocalStatus(
                data="present",
                process_running=True,
                sql=primary(roles_current=False),
                config_differs=True,
            ),
            facts(MASTER),
            (WriteConfig(), EnsureRoles()),
        ),
        (
            LocalStatus(data="present", process_running=True, sql=primary(slots=("k3", "keep"))),
            facts(MASTER, wanted_slots=("k2",), unwanted_slots=("k3", "k4")),
            (CreateSlots(("k2",)), DropSlots(("k3",))),
        ),
        # fenced, removed, unassigned
        (RUNNING_PRIMARY, facts(FENCED), (FENCE_STOP,)),
        (STARTING, facts(FENCED), (FENCE_STOP,)),
        (STOPPED_PRIMARY, facts(FENCED), ()),
        (RUNNING_STANDBY, facts(REMOVED), (Stop(StopMode.FAST, "assigned removed"),)),
        (STOPPED_STANDBY, facts(REMOVED), (MarkRemoved(),)),
        (RUNNING_PRIMARY, facts(None), (Stop(StopMode.FAST, "not assigned master"),)),
        (RUNNING_STANDBY, facts(None), ()),
        # standby
        (EMPTY, facts(STANDBY, upstream=upstream()), CLONE),
        (LocalStatus(data="incomplete"), facts(STANDBY, upstream=upstream()), CLONE),
        (
            LocalStatus(data="present", control=control(), removed=True),
            facts(STANDBY, upstream=upstream()),
            CLONE,
        ),
        (STOPPED_STANDBY, facts(STANDBY, upstream=upstream(system_identifier=OTHER_SYSTEM)), CLONE),
        (
            RUNNING_STANDBY,
            facts(STANDBY, upstream=upstream(system_identifier=OTHER_SYSTEM)),
            (Stop(StopMode.FAST, "another system identifier"),),
        ),
        (STOPPED_STANDBY, facts(STANDBY, upstream=upstream()), (Start(standby=True),)),
        (RUNNING_STANDBY, facts(STANDBY, upstream=upstream()), ()),
        (
            LocalStatus(data="present", process_running=True, sql=standby(), config_differs=True),
            facts(STANDBY, upstream=upstream()),
            (WriteConfig(),),
        ),
        (
            RUNNING_PRIMARY,
            facts(STANDBY, upstream=upstream(timeline=2)),
            (Stop(StopMode.FAST, "assigned standby: the primary stops to rejoin"),),
        ),
        (
            LocalStatus(data="missing", process_running=True, sql=standby()),
            facts(STANDBY, upstream=upstream()),
            (Stop(StopMode.IMMEDIATE, "the data directory is gone or incomplete"),),
        ),
    ],
)
def test_plan_table(local: LocalStatus, cluster: ClusterFacts, expected: tuple[object, ...]):
    result = plan(local, cluster)
    assert result.actions == expected
    assert result.waiting is None


def test_an_old_master_that_stopped_before_the_switchpoint_just_follows():
    """Switchover: the standby got the shutdown checkpoint, so no rewind is needed."""
    local = LocalStatus(data="present", control=control(checkpoint=0x3000000))
    result = plan(local, facts(STANDBY, upstream=upstream(timeline=2, history=SWITCH)))
    assert result.actions == (Start(standby=True),)


def test_a_diverged_old_master_is_rewound_or_cloned():
    local = LocalStatus(data="present", control=control(checkpoint=0x3000200))
    wish = facts(STANDBY, upstream=upstream(timeline=2, history=SWITCH))
    assert plan(local, wish).actions == REWIND
    without_rewind = facts(
        STANDBY, use_pg_rewind=False, upstream=upstream(timeline=2, history=SWITCH)
    )
    assert plan(local, without_rewind).actions == CLONE_ON_2
    failed = LocalStatus(
        data="present", control=control(checkpoint=0x3000200), rewind_outcome="failed"
    )
    assert plan(failed, wish).actions == CLONE_ON_2
    verified = LocalStatus(
        data="present", control=control(checkpoint=0x3000200), rewind_outcome="not-needed"
    )
    assert plan(verified, wish).actions == (Start(standby=True),)


def test_a_copy_restored_from_the_repository_follows_when_its_backup_ended_before_the_switch():
    """pg_control of a restored copy was never shut down: its end is the backup's."""
    restored = LocalStatus(
        data="present", control=control("in archive recovery", checkpoint=0x2000000),
        fresh_copy=True, restored_end=LocalHistory(1, 0x2000100),
    )  # fmt: skip
    wish = facts(STANDBY, upstream=upstream(timeline=2, history=SWITCH))
    assert plan(restored, wish).actions == (Start(standby=True),)
    past_the_switch = replace(restored, restored_end=LocalHistory(1, 0x3000200))
    assert plan(past_the_switch, wish).actions == CLONE_ON_2  # never pg_rewind on it
    unknown = replace(restored, restored_end=None)
    assert plan(unknown, wish).actions == CLONE_ON_2


def test_a_crashed_old_master_counts_as_diverged():
    """Its WAL may extend past its last checkpoint: only pg_rewind can tell."""
    local = LocalStatus(data="present", control=control("in production", checkpoint=0x1000000))
    assert (
        plan(local, facts(STANDBY, upstream=upstream(timeline=2, history=SWITCH))).actions == REWIND
    )


def test_a_running_standby_follows_a_promoted_upstream_without_restart():
    local = LocalStatus(data="present", process_running=True, sql=standby(), config_differs=True)
    wish = facts(STANDBY, upstream=upstream(timeline=2, history=SWITCH))
    assert plan(local, wish).actions == (WriteConfig(),)


def test_a_standby_ahead_of_the_promoted_upstream_stops_to_rewind():
    local = LocalStatus(
        data="present",
        process_running=True,
        sql=standby(receive_lsn=0x3000500),
        config_differs=True,
    )
    wish = facts(STANDBY, upstream=upstream(timeline=2, history=SWITCH))
    assert first(plan(local, wish)) == Stop(StopMode.FAST, "diverged from the upstream's timeline")


@pytest.mark.parametrize(
    ("local", "cluster", "reason"),
    [
        (EMPTY, facts(MASTER), "no data directory"),
        (STARTING, facts(MASTER), "starting"),
        (RUNNING_STANDBY, facts(MASTER), None),
        (
            LocalStatus(data="present", process_running=True, sql=standby(), lease_fresh=False),
            facts(MASTER),
            "not promoting",
        ),
        (
            LocalStatus(data="present", control=control(), lease_fresh=False),
            facts(MASTER),
            "not starting a primary",
        ),
        (
            LocalStatus(data="present", control=control(), recovering_since=100.0),
            facts(MASTER, now=105.0, restart_delay=15.0),
            "not restarting it for 10.0 s",
        ),
        (EMPTY, facts(STANDBY, upstream=upstream(running=False)), "upstream is not running"),
        (STOPPED_PRIMARY, facts(STANDBY, upstream=None), "waits for its upstream"),
        (STOPPED_PRIMARY, facts(STANDBY, upstream=upstream(timeline=1)), "new timeline"),
        (STOPPED_PRIMARY, facts(STANDBY, upstream=upstream(timeline=2)), "timeline history"),
    ],
)
def test_plan_waits_and_says_why(local, cluster, reason):
    result = plan(local, cluster)
    if reason is None:  # control: the same observation without the blocker acts
        assert result.actions
        return
    assert not result.actions and result.waiting is not None and reason in result.waiting
    assert not result.converged


def test_a_crashed_master_restarts_after_the_delay():
    local = LocalStatus(data="present", control=control(), recovering_since=100.0)
    assert plan(local, facts(MASTER, now=115.5, restart_delay=15.0)).actions == (
        Start(standby=False),
    )


def test_a_stopped_former_standby_starts_as_standby_without_its_upstream():
    assert plan(STOPPED_STANDBY, facts(STANDBY, upstream=None)).actions == (Start(standby=True),)


def test_a_fresh_base_backup_is_not_mistaken_for_a_primary():
    copy = LocalStatus(data="present", control=control("in production"), fresh_copy=True)
    assert plan(copy, facts(STANDBY, upstream=upstream())).actions == (Start(standby=True),)


@pytest.mark.parametrize("assignment", [MASTER, STANDBY, FENCED, None])
def test_a_writable_postgres_that_stopped_answering_is_killed_whatever_its_assignment(assignment):
    frozen = LocalStatus(
        data="present", process_running=True, may_accept_writes=True,
        unresponsive_for=UNRESPONSIVE_LIMIT,
    )  # fmt: skip
    action = first(plan(frozen, facts(assignment)))
    assert isinstance(action, Stop) and action.mode is StopMode.KILL
    assert "has not answered for 5.0 s" in action.reason


@pytest.mark.parametrize(
    "local",
    [
        # not long enough
        LocalStatus(data="present", process_running=True, may_accept_writes=True,
                    unresponsive_for=UNRESPONSIVE_LIMIT - 0.1),
        # a standby that does not answer cannot accept writes: left alone
        LocalStatus(data="present", process_running=True, unresponsive_for=60.0),
    ],
)  # fmt: skip
def test_no_kill_short_of_the_limit_or_for_a_postgres_that_cannot_accept_writes(local):
    result = plan(local, facts(MASTER))
    assert not any(isinstance(action, Stop) for action in result.actions)


WATCHDOG_PROBLEM = "the kernel watchdog is required but /dev/watchdog is unusable"


@pytest.mark.parametrize(
    "local",
    [
        LocalStatus(data="present", control=control(), fencing_problem=WATCHDOG_PROBLEM),
        LocalStatus(data="missing", fencing_problem=WATCHDOG_PROBLEM),
        LocalStatus(
            data="present", process_running=True, sql=standby(), fencing_problem=WATCHDOG_PROBLEM
        ),
    ],
)
def test_a_missing_required_fence_blocks_start_and_promotion_as_master(local):
    result = plan(local, ClusterFacts(MASTER, initialized=local.data != "missing"))
    assert not result.actions and result.waiting == WATCHDOG_PROBLEM


def test_a_running_primary_without_its_required_fence_stops():
    local = LocalStatus(
        data="present", process_running=True, sql=primary(), fencing_problem=WATCHDOG_PROBLEM
    )
    assert plan(local, facts(MASTER)).actions == (Stop(StopMode.FAST, WATCHDOG_PROBLEM),)


def test_a_standby_runs_without_the_fence_a_primary_requires():
    local = LocalStatus(
        data="present", control=control("shut down in recovery"), fencing_problem=WATCHDOG_PROBLEM
    )
    assert plan(local, facts(STANDBY, upstream=upstream())).actions == (Start(standby=True),)


FAILSAFE_HOLD = "this keeper confirmed failsafe to the master: not becoming a primary for 2.0 s"


@pytest.mark.parametrize(
    "local",
    [
        LocalStatus(data="present", control=control(), promotion_hold=FAILSAFE_HOLD),
        LocalStatus(
            data="present", process_running=True, sql=standby(), promotion_hold=FAILSAFE_HOLD
        ),
    ],
)
def test_a_keeper_that_confirmed_failsafe_neither_starts_nor_promotes_a_primary(local):
    result = plan(local, facts(MASTER))
    assert not result.actions and result.waiting == FAILSAFE_HOLD
    unheld = plan(replace(local, promotion_hold=None), facts(MASTER))
    assert unheld.actions, "the hold alone held it back"


SEALED = KeeperAssignment(role="master", sealed=True)


def test_a_sealed_master_writes_its_configuration_then_seals_once():
    rewritten = replace(RUNNING_PRIMARY, config_differs=True)
    assert plan(rewritten, facts(SEALED)).actions == (WriteConfig(), Seal())
    assert plan(RUNNING_PRIMARY, facts(SEALED)).actions == (Seal(),)
    sealed = replace(RUNNING_PRIMARY, sealed_lsn=0x3000100)
    assert plan(sealed, facts(SEALED)).converged
    intruder = replace(sealed, sql=primary(client_sessions=1))
    assert plan(intruder, facts(SEALED)).actions == (Seal(),)  # sealed again, further on
    assert plan(RUNNING_PRIMARY, facts(MASTER)).converged  # the seal lifted: nothing to do
