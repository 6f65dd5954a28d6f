"""What to do next: the assignment and the local observation → actions (pure).

`plan()` returns every action needed from here, in order; the keeper runs the
first, observes again and plans again, so each step starts from what is true
now. An empty plan without `waiting` means converged: the keeper then
acknowledges the state generation. Rules (docs/protocol.md):

- only an instance assigned master may run as a primary, and it is never
  started or promoted while the lease is stale or a required fence is missing
  (fencing_problem), nor restarted after a crash before the sentinel had the
  chance to fail over;
- a standby whose data is missing, incomplete, removed or of another system
  is cloned again; a diverged one is rewound (or cloned) before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rhizome.keeper.conffiles import Upstream
from rhizome.keeper.controldata import ControlData
from rhizome.keeper.observe import SqlObservation
from rhizome.keeper.postmaster import StopMode
from rhizome.keeper.start_backoff import NO_FAILURES, StartFailures
from rhizome.keeper.timelines import LocalHistory, TimelineSwitch, diverged
from rhizome.store.documents import KeeperAssignment

DataState = Literal["missing", "incomplete", "present"]
RewindOutcome = Literal["failed", "not-needed"]


@dataclass(frozen=True)
class LocalStatus:
    """What the keeper knows of its own PostgreSQL."""

    data: DataState
    control: ControlData | None = None
    """pg_control, read while PostgreSQL is stopped."""
    process_running: bool = False
    sql: SqlObservation | None = None
    """None unless PostgreSQL answers queries."""
    config_differs: bool = False
    removed: bool = False
    """The data was removed from the cluster: never started again."""
    recovering_since: float | None = None
    """A master's crash or lease loss (monotonic time): the sentinel may fail over."""
    rewind_outcome: RewindOutcome | None = None
    """What pg_rewind said last, against the upstream's current timeline."""
    lease_fresh: bool = True
    unresponsive_for: float = 0.0
    """How long the running PostgreSQL has not answered the keeper (0: it answers)."""
    may_accept_writes: bool = False
    """Started as a primary or promoted by this keeper, and still running."""
    fresh_copy: bool = False
    """backup_label is present: a base backup or rewind not started yet (not a primary's data)."""
    restored_end: LocalHistory | None = None
    """A fresh copy restored from the backup repository: where its WAL ends."""
    fencing_problem: str | None = None
    """Why a fence this keeper requires is missing (a required kernel watchdog that does
    not work): no primary is started or promoted, and a running one is stopped."""
    start_failures: StartFailures = NO_FAILURES
    """Consecutive failed starts: the next start waits for its back-off."""
    promotion_hold: str | None = None
    """Why this keeper may not become a primary yet: it confirmed failsafe to a master
    that may still accept writes (rhizome.failsafe.rules.promotion_hold)."""
    sealed_lsn: int | None = None
    """The position at which this master was last sealed for a cutover (seal.py);
    None while it is not sealed."""

    @property
    def primary_blocker(self) -> str | None:
        """Why no primary may be started or promoted here now (None: one may)."""
        return self.fencing_problem or self.promotion_hold


@dataclass(frozen=True)
class UpstreamStatus:
    """The keeper a standby follows, from its published document."""

    address: Upstream
    running: bool
    system_identifier: str | None
    timeline: int | None
    history: tuple[TimelineSwitch, ...] | None = None
    """The upstream's timeline history, fetched when the timelines differ."""


@dataclass(frozen=True)
class ClusterFacts:
    """What the store says, for this keeper."""

    assignment: KeeperAssignment | None
    initialized: bool = False
    init_mode: Literal["new", "existing"] = "new"
    use_pg_rewind: bool = True
    upstream: UpstreamStatus | None = None
    wanted_slots: tuple[str, ...] = ()
    unwanted_slots: tuple[str, ...] = ()
    restart_delay: float = 15.0
    """master_recovery_grace + keeper_lease_ttl."""
    now: float = 0.0


@dataclass(frozen=True)
class Initdb:
    pass


@dataclass(frozen=True)
class WriteConfig:
    pass


@dataclass(frozen=True)
class Start:
    standby: bool


@dataclass(frozen=True)
class Stop:
    mode: StopMode
    reason: str


@dataclass(frozen=True)
class Promote:
    pass


@dataclass(frozen=True)
class BaseBackup:
    upstream: Upstream
    upstream_timeline: int | None = None
    """As the upstream reported it: a restore from the repository picks a backup on its
    history."""


@dataclass(frozen=True)
class Rewind:
    upstream: Upstream


@dataclass(frozen=True)
class EnsureRoles:
    pass


@dataclass(frozen=True)
class CreateSlots:
    names: tuple[str, ...]


@dataclass(frozen=True)
class DropSlots:
    names: tuple[str, ...]


@dataclass(frozen=True)
class MarkRemoved:
    pass


@dataclass(frozen=True)
class Seal:
    """Terminate every client session of a sealed master, record its sequences, and
    take its position (after the pg_hba.conf without client entries is in force)."""


Action = (
    Initdb | WriteConfig | Start | Stop | Promote | BaseBackup | Rewind | EnsureRoles
    | CreateSlots | DropSlots | MarkRemoved | Seal
)  # fmt: skip


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    waiting: str | None = None
    """Why the keeper cannot converge yet (reported as last_error)."""
    details: tuple[str, ...] = field(default=(), compare=False)

    @property
    def converged(self) -> bool:
        return not self.actions and self.waiting is None


def waiting(reason: str) -> Plan:
    return Plan(waiting=reason)


UNRESPONSIVE_LIMIT = 5.0
"""Seconds a PostgreSQL that may accept writes may leave the keeper without an
answer (a frozen or hung postmaster) before it is killed: while it does not
answer, the keeper reports it unfenced and no other keeper is promoted."""


def plan(local: LocalStatus, facts: ClusterFacts) -> Plan:
    """The actions that bring PostgreSQL to the assignment; a start waits for its back-off."""
    decided = plan_actions(local, facts)
    starting = bool(decided.actions) and isinstance(decided.actions[0], Start)
    if starting and local.start_failures.next_start_in(facts.now) > 0:
        return waiting(local.start_failures.waiting_text(facts.now))
    return decided


def plan_actions(local: LocalStatus, facts: ClusterFacts) -> Plan:
    """The actions that bring PostgreSQL to the assignment."""
    role = facts.assignment.role if facts.assignment is not None else None
    if unresponsive_writer(local):
        reason = (
            f"PostgreSQL may accept writes but has not answered for {local.unresponsive_for:.1f} s"
        )
        return Plan((Stop(StopMode.KILL, reason),))
    if role == "master":
        return plan_master(local, facts)
    if role == "standby":
        return plan_standby(local, facts)
    if local.process_running and (role in ("fenced", "removed") or may_be_primary(local)):
        reason = f"assigned {role}" if role else "not assigned master"
        return Plan((Stop(StopMode.FAST, reason),))
    if role == "removed" and local.data == "present" and not local.removed:
        return Plan((MarkRemoved(),))
    return Plan()


def unresponsive_writer(local: LocalStatus) -> bool:
    """A running PostgreSQL that may accept writes and has stopped answering."""
    return (
        local.process_running
        and local.sql is None
        and local.may_accept_writes
        and local.unresponsive_for >= UNRESPONSIVE_LIMIT
    )


def may_be_primary(local: LocalStatus) -> bool:
    """A running instance that is (or, still starting, may be) a primary."""
    return local.sql is None or local.sql.role == "primary"


def plan_master(local: LocalStatus, facts: ClusterFacts) -> Plan:
    if local.data == "missing":
        if not facts.initialized and facts.init_mode == "new" and not local.process_running:
            if local.fencing_problem is not None:
                return waiting(local.fencing_problem)
            return Plan((Initdb(), WriteConfig(), Start(standby=False), EnsureRoles()))
        return waiting("assigned master but there is no data directory")
    if local.data == "incomplete" or local.removed:
        return waiting("assigned master but the data directory is incomplete or was removed")
    if not local.process_running:
        return start_master(local, facts)
    if local.sql is None:
        return waiting("PostgreSQL is starting")
    if local.sql.role == "standby":
        if not local.lease_fresh:
            return waiting("the lease is not renewed: not promoting")
        if local.primary_blocker is not None:
            return waiting(local.primary_blocker)
        return Plan((Promote(),))
    if local.fencing_problem is not None:
        return Plan((Stop(StopMode.FAST, local.fencing_problem),))
    return primary_upkeep(local, facts)


def start_master(local: LocalStatus, facts: ClusterFacts) -> Plan:
    if local.recovering_since is not None:
        remaining = local.recovering_since + facts.restart_delay - facts.now
        if remaining > 0:
            return waiting(
                f"PostgreSQL stopped unexpectedly: not restarting it for {remaining:.1f} s,"
                " while the sentinel may fail over"
            )
    if not local.lease_fresh:
        return waiting("the lease is not renewed: not starting a primary")
    if local.primary_blocker is not None:
        return waiting(local.primary_blocker)
    steps: tuple[Action, ...] = (Start(standby=False),)
    if local.config_differs:
        steps = (WriteConfig(), *steps)
    return Plan(steps)


def primary_upkeep(local: LocalStatus, facts: ClusterFacts) -> Plan:
    """A running primary assigned master: configuration, roles and slots."""
    assert local.sql is not None
    steps: list[Action] = []
    if local.config_differs:
        steps.append(WriteConfig())
    if not local.sql.roles_current:
        steps.append(EnsureRoles())
    missing = tuple(name for name in facts.wanted_slots if name not in local.sql.slots)
    if missing:
        steps.append(CreateSlots(missing))
    extra = tuple(name for name in facts.unwanted_slots if name in local.sql.slots)
    if extra:
        steps.append(DropSlots(extra))
    sealed = facts.assignment is not None and facts.assignment.sealed
    if sealed and (local.sealed_lsn is None or local.sql.client_sessions > 0):
        steps.append(Seal())  # again whenever a session got in: the position moves on
    return Plan(tuple(steps))


def plan_standby(local: LocalStatus, facts: ClusterFacts) -> Plan:
    if local.process_running and local.data != "present":
        return Plan((Stop(StopMode.IMMEDIATE, "the data directory is gone or incomplete"),))
    if local.process_running and local.sql is None:
        return waiting("PostgreSQL is starting")
    if local.sql is not None and local.sql.role == "primary":
        return Plan((Stop(StopMode.FAST, "assigned standby: the primary stops to rejoin"),))
    upstream = facts.upstream
    if local.data != "present" or local.removed:
        return clone_from(upstream)
    if upstream is None or not upstream.running or upstream.system_identifier is None:
        return standby_without_upstream(local)
    if own_system_identifier(local) != upstream.system_identifier:
        return rejoin(local, facts, upstream, "another system identifier", clone=True)
    if upstream.timeline is None:
        return waiting("the upstream has not reported its timeline yet")
    history = local_history(local)
    if history.timeline == upstream.timeline and was_primary(local):
        return waiting("the upstream has not reported its new timeline yet")
    if history.timeline != upstream.timeline:
        if upstream.history is None:
            return waiting("cannot read the upstream's timeline history")
        if (
            diverged(history, upstream.timeline, upstream.history)
            and local.rewind_outcome != "not-needed"
        ):
            return rejoin(local, facts, upstream, "diverged from the upstream's timeline")
    return follow(local)


def clone_from(upstream: UpstreamStatus | None) -> Plan:
    if upstream is None or not upstream.running:
        return waiting("no data directory yet, and the upstream is not running")
    return Plan((base_backup_of(upstream), WriteConfig(), Start(standby=True)))


def base_backup_of(upstream: UpstreamStatus) -> BaseBackup:
    return BaseBackup(upstream.address, upstream.timeline)


def standby_without_upstream(local: LocalStatus) -> Plan:
    """The upstream is not running: keep a standby as it is, start a former standby."""
    if local.process_running:
        return Plan()
    if was_primary(local):
        return waiting("a former primary waits for its upstream before it rejoins")
    return follow(local)


def rejoin(
    local: LocalStatus, facts: ClusterFacts, upstream: UpstreamStatus, why: str, clone: bool = False
) -> Plan:
    """Stop, then rewind (or clone again) a standby that cannot simply follow."""
    if local.process_running:
        return Plan((Stop(StopMode.FAST, why),))
    if clone or not facts.use_pg_rewind or local.rewind_outcome == "failed" or local.fresh_copy:
        # pg_rewind cannot take a copy PostgreSQL never ran on
        return Plan((base_backup_of(upstream), WriteConfig(), Start(standby=True)))
    return Plan((Rewind(upstream.address), WriteConfig(), Start(standby=True)))


def follow(local: LocalStatus) -> Plan:
    steps: list[Action] = []
    if local.config_differs:
        steps.append(WriteConfig())
    if not local.process_running:
        steps.append(Start(standby=True))
    return Plan(tuple(steps))


def own_system_identifier(local: LocalStatus) -> str | None:
    if local.sql is not None:
        return local.sql.system_identifier
    return local.control.system_identifier if local.control is not None else None


def was_primary(local: LocalStatus) -> bool:
    if local.sql is not None:
        return local.sql.role == "primary"
    return local.control is not None and local.control.was_primary and not local.fresh_copy


def local_history(local: LocalStatus) -> LocalHistory:
    """Timeline and WAL end of the local data (end None when not known exactly)."""
    if local.sql is not None and local.sql.timeline is not None:
        return LocalHistory(local.sql.timeline, local.sql.position)
    if local.fresh_copy and local.restored_end is not None:
        return local.restored_end
    assert local.control is not None
    return LocalHistory(local.control.latest_timeline, local.control.known_end)
