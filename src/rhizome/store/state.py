"""ClusterState: the topology the leader sentinel publishes in `state`.

Only the leader sentinel writes it, with compare-and-swap. Keepers converge
their PostgreSQL to their assignment; proxies route by the proxy target. Every
model is immutable: the sentinel's decision function builds the next state
with `with_changes` and the helpers below, which validate the result.
"""

from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, Strict, StrictBool, model_validator

from rhizome.store.additions import WithOptionalAdditions
from rhizome.store.codec import AGENT_WRITTEN, StoreDocument, StoreModel
from rhizome.store.fields import (
    Generation,
    HostAddress,
    Identifier,
    KeeperName,
    Lsn,
    PhaseName,
    Port,
    Seconds,
    Text,
    Timeline,
    UnixTime,
)
from rhizome.store.validation import FieldProblem, raise_problems

HISTORY_LIMIT = 50
"""How many role changes `ClusterState.history` keeps (oldest dropped first)."""
COMMAND_RESULTS_LIMIT = 20
"""How many finished commands `ClusterState.command_results` keeps."""

SystemIdentifierText = Annotated[str, Strict(), Field(pattern=r"^[0-9]{1,20}$")]
"""A PostgreSQL database system identifier (64-bit unsigned integer, as decimal text)."""

KeeperRole = Literal["master", "standby", "fenced", "removed"]
"""master: accept writes. standby: follow `follow`. fenced: accept no writes and
follow nobody (an old master during a failover or switchover). removed: no
longer part of the cluster; stop PostgreSQL and never rejoin with this data."""

OperationKind = Literal["initialisation", "failover", "switchover", "cutover"]
RoleChangeKind = Literal["initialisation", "failover", "switchover", "cutover", "restore"]
"""What changed the master: an operation, or a restore from a backup (backup/restore.py)."""
CommandKindName = Literal["switchover", "failover", "cutover", "restore"]
CommandOutcome = Literal["done", "refused", "abandoned"]
CutoverMethod = Literal["logical", "link"]
"""How a major upgrade's successor gets the data: logical replication while the
master runs, or pg_upgrade --link of the master's data once it stopped."""


class KeeperAssignment(WithOptionalAdditions):
    """What one keeper must make its PostgreSQL be."""

    model_config = AGENT_WRITTEN

    OPTIONAL_ADDITIONS: ClassVar[frozenset[str]] = frozenset({"sealed"})

    role: KeeperRole
    """The role the keeper converges to."""
    follow: KeeperName | None = None
    """For a standby: the keeper it streams from; None for every other role."""
    sealed: StrictBool = False
    """Master only, during a major-upgrade cutover (docs/design/major-upgrade.md):
    PostgreSQL keeps running but accepts no client session (pg_hba.conf keeps only
    the keeper's, replication and superuser lines; every client backend is
    terminated), so that its final position can be streamed to the successor."""

    @model_validator(mode="after")
    def _follow_matches_role(self) -> Self:
        if self.role == "standby" and self.follow is None:
            raise_problems([FieldProblem("follow", "a standby must follow a keeper", "name it")])
        if self.role != "standby" and self.follow is not None:
            raise_problems(
                [FieldProblem("follow", f"a {self.role} keeper follows nobody", "set it to null")]
            )
        if self.sealed and self.role != "master":
            raise_problems([FieldProblem("sealed", "only a master is sealed", "set it to false")])
        return self


class SynchronousStandbys(StoreModel):
    """The synchronous standby set, changed in two phases (add before remove).

    `requested` is what the sentinel wants the master's synchronous_standby_names
    to list; `confirmed` is the set the master keeper reported in effect. Every
    listed standby must acknowledge each commit, so a standby in both sets holds
    every acknowledged commit.
    """

    model_config = AGENT_WRITTEN

    requested: tuple[KeeperName, ...] = ()
    """Standbys the master should list in synchronous_standby_names now."""
    confirmed: tuple[KeeperName, ...] = ()
    """Standbys the master has confirmed listing (reported in effect)."""

    @property
    def promotable(self) -> frozenset[str]:
        """Standbys guaranteed to hold every acknowledged commit.

        A standby only in `requested` is not yet waited for; one only in
        `confirmed` is being removed and the master may already have stopped
        waiting for it. Only standbys in both sets are safe to promote.
        """
        return frozenset(self.requested) & frozenset(self.confirmed)

    @property
    def settled(self) -> bool:
        """No change is in flight: the requested set is the confirmed set."""
        return frozenset(self.requested) == frozenset(self.confirmed)


class ProxyTarget(StoreModel):
    """Where proxies send read-write connections, with its own generation."""

    model_config = AGENT_WRITTEN

    proxy_generation: Generation = 0
    """Increases on every change of the target; proxies acknowledge it."""
    master: KeeperName | None = None
    """Keeper to route to; None routes nowhere (proxies hold new connections)."""
    host: HostAddress | None = None
    """Host of the master's PostgreSQL; None when routing nowhere."""
    port: Port | None = None
    """Port of the master's PostgreSQL; None when routing nowhere."""

    @model_validator(mode="after")
    def _address_matches_master(self) -> Self:
        problems = [
            FieldProblem(name, f"must be {'null' if self.master is None else 'set'}", fix)
            for name, value, fix in (
                ("host", self.host, "give the master's address or route nowhere"),
                ("port", self.port, "give the master's port or route nowhere"),
            )
            if (value is None) != (self.master is None)
        ]
        raise_problems(problems)
        return self

    @property
    def routes_nowhere(self) -> bool:
        """Proxies must close connections to any old master and hold new ones."""
        return self.master is None

    def retargeted(
        self, master: str | None, host: str | None = None, port: int | None = None
    ) -> "ProxyTarget":
        """The next target (generation + 1): `master` at host:port, or nowhere."""
        return ProxyTarget(
            proxy_generation=self.proxy_generation + 1, master=master, host=host, port=port
        )


DRAINING_PHASE = "draining"
"""The first phase of a planned switchover: proxies hold new read-write clients
and acknowledge the phase's proxy generation once the read-write logins under
way have finished; the sessions to the master go on until the next phase."""


class Operation(WithOptionalAdditions):
    """The operation the leader sentinel is carrying out, phase by phase."""

    model_config = AGENT_WRITTEN

    OPTIONAL_ADDITIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "previous_master_instance",
            "abandoned_targets",
            "synchronous_standbys_before",
            "successor",
            "method",
        }
    )

    kind: OperationKind
    """What is being done."""
    phase: PhaseName
    """Current step, named by the sentinel (e.g. "fencing", "promoting", "routing")."""
    target: KeeperName | None = None
    """Keeper becoming master, once chosen."""
    previous_master: KeeperName | None = None
    """The master before the operation started, if any."""
    started_at: UnixTime
    """When the operation started (sentinel clock)."""
    phase_started_at: UnixTime
    """When the current phase started, for phase timeouts."""
    command: Identifier | None = None
    """Name of the command that asked for it; None when the sentinel decided alone."""
    phase_generation: Generation | None = None
    """The state generation that started the current phase. The keepers involved
    must acknowledge it before the next phase: the old master that it is fenced,
    the new master that it was promoted by this operation."""
    reason: Text | None = None
    """Why the operation was started, in words an operator understands (what
    happened since, e.g. an abandoned promotion, is appended)."""
    previous_master_instance: Identifier | None = None
    """The instance_id the previous master's keeper reported when the operation
    started fencing it: only a document of that instance may acknowledge its
    fencing. None when unknown (a keeper older than instance_id, or no document)."""
    abandoned_targets: tuple[KeeperName, ...] = ()
    """Keepers told to promote in this operation whose promotion was abandoned
    (overdue). Each is assigned `fenced` and must be known unable to accept
    writes (fencing acknowledged, or lease expired) before anybody is promoted."""
    synchronous_standbys_before: SynchronousStandbys | None = None
    """The synchronous set of the old master, kept at the operation's first
    promotion: the set that holds every acknowledged commit if that promotion
    is abandoned (a promotion restarts the set unconfirmed)."""
    successor: Identifier | None = None
    """Cutover only: the cluster that takes over (its master is fed by logical
    replication from this cluster's master)."""
    method: CutoverMethod = "logical"
    """Cutover only: logical (seal, successor confirms) or link (clean stop)."""


class RoleChange(StoreModel):
    """One entry of the role change history."""

    model_config = AGENT_WRITTEN

    at: UnixTime
    """When the new master was published."""
    generation: Generation
    """State generation that published it."""
    kind: RoleChangeKind
    """What caused the change."""
    old_master: KeeperName | None
    """Master before the change."""
    new_master: KeeperName | None
    """Master after the change."""
    reason: Text
    """Why, in words an operator understands."""


class CommandResult(StoreModel):
    """How the leader sentinel finished an operator command (read by rhizomectl --wait)."""

    model_config = AGENT_WRITTEN

    command: Identifier
    """Name of the command (its key was deleted when it finished)."""
    kind: CommandKindName
    """The command's kind."""
    outcome: CommandOutcome
    """done: carried out; refused: not started, see reason; abandoned: timed out."""
    reason: Text
    """What happened, in words an operator understands."""
    finished_at: UnixTime
    """When the sentinel finished it (sentinel clock)."""
    old_master: KeeperName | None = None
    """Master before the command."""
    new_master: KeeperName | None = None
    """Master after the command."""
    write_pause: Seconds | None = None
    """Seconds proxies routed nowhere during the command (switchover write pause)."""
    requested_at: UnixTime | None = None
    """The command's requested_at: tells a finished command from a new one of the same name."""


class ClusterState(WithOptionalAdditions, StoreDocument):
    """The generation-numbered topology published by the leader sentinel."""

    model_config = AGENT_WRITTEN

    OPTIONAL_ADDITIONS: ClassVar[frozenset[str]] = frozenset({"paused_holds", "successor"})

    generation: Generation = 0
    """Increases on every topology change; keepers acknowledge it."""
    initialized: StrictBool = False
    """The cluster has had a master with data at least once."""
    master: KeeperName | None = None
    """The keeper assigned the master role; None during failover or before init."""
    assignments: dict[KeeperName, KeeperAssignment] = Field(default_factory=dict)
    """Role of every keeper that is part of the cluster."""
    synchronous_standbys: SynchronousStandbys = SynchronousStandbys()
    """Synchronous standby set, requested and confirmed."""
    proxy_target: ProxyTarget = ProxyTarget()
    """Where proxies route read-write connections."""
    operation: Operation | None = None
    """The operation in progress, if any."""
    no_promotion_reason: Text | None = None
    """Why the sentinel is not promoting anybody although there is no master."""
    master_timeline: Timeline | None = None
    """Timeline of the current master when it was published."""
    history: tuple[RoleChange, ...] = ()
    """Most recent role changes, oldest first, at most HISTORY_LIMIT kept."""
    command_results: tuple[CommandResult, ...] = ()
    """Most recently finished commands, oldest first, at most COMMAND_RESULTS_LIMIT."""
    system_identifier: SystemIdentifierText | None = None
    """Database system identifier of the cluster, recorded when it was initialised:
    only keepers holding this database may be promoted."""
    master_flush_lsn: Lsn | None = None
    """The master's flush position as last recorded by the sentinel, for the lag
    bound of an asynchronous failover once the master's keeper is gone. It is
    recorded again whenever the master reports a position more than a quarter of
    spec.max_standby_lag_bytes beyond it (so that the state is not rewritten on
    every keeper report)."""
    master_unhealthy_since: UnixTime | None = None
    """When the sentinel first saw the master's keeper report PostgreSQL not
    running or unhealthy (sentinel clock); None while it is healthy."""
    missing_keepers_since: dict[KeeperName, UnixTime] = Field(default_factory=dict)
    """When the sentinel first saw each assigned keeper without a live document
    (its lease expired), for failover_delay and dead_keeper_removal_after."""
    paused_holds: dict[KeeperName, Identifier] = Field(default_factory=dict)
    """Keepers whose PostgreSQL may run unfenced, by the instance_id their keeper
    reported: the master while the cluster was paused (its keeper, were it to
    die, leaves PostgreSQL running), and any keeper reporting `holding` with a
    PostgreSQL that may accept writes. A hold ends when that instance reports
    `holding: false` after the resume, or when a failover command confirms the
    old master stopped (`Command.old_master_stopped`); until then its keeper's
    absence is no reason to promote anybody (sentinel/decision/pause_holds.py)."""
    successor: Identifier | None = None
    """The cluster that replaced this one in a major-upgrade cutover: its proxies
    now follow that cluster's state, and this cluster's keepers stay stopped."""

    @model_validator(mode="after")
    def _topology_is_consistent(self) -> Self:
        raise_problems([*self._master_problems(), *self._follow_problems()])
        return self

    def _master_problems(self) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        masters = sorted(name for name, item in self.assignments.items() if item.role == "master")
        if len(masters) > 1:
            problems.append(
                FieldProblem("assignments", f"several masters {masters}", "assign one at most")
            )
        if self.master is not None and self.master not in masters:
            problems.append(
                FieldProblem("master", "is not assigned the master role", "fix assignments")
            )
        if self.master is None and masters:
            problems.append(FieldProblem("master", f"must name {masters[0]}", "set it"))
        if self.proxy_target.master not in (None, self.master):
            problems.append(
                FieldProblem(
                    "proxy_target.master",
                    f"routes to {self.proxy_target.master!r}, which is not the master",
                    "route to the master or nowhere",
                )
            )
        return problems

    def _follow_problems(self) -> list[FieldProblem]:
        return [
            FieldProblem(
                f"assignments.{name}.follow",
                f"follows {assignment.follow!r}, which is itself or not assigned",
                "follow an assigned keeper",
            )
            for name, assignment in self.assignments.items()
            if assignment.follow is not None
            and (assignment.follow == name or assignment.follow not in self.assignments)
        ]

    def with_next_generation(self, **changes: object) -> Self:
        """A validated copy with `changes` and the generation increased by one."""
        return self.with_changes(generation=self.generation + 1, **changes)

    def with_history_entry(self, entry: RoleChange, limit: int = HISTORY_LIMIT) -> Self:
        """A copy with `entry` appended and the oldest entries dropped beyond `limit`."""
        history = (*self.history, entry)
        return self.with_changes(history=history[-limit:] if limit > 0 else ())

    def assignment_of(self, keeper: str) -> KeeperAssignment | None:
        """The keeper's assignment, None when it is not part of the cluster."""
        return self.assignments.get(keeper)

    def keepers_with_role(self, role: KeeperRole) -> list[str]:
        """Names of the keepers assigned `role`, sorted."""
        return sorted(name for name, item in self.assignments.items() if item.role == role)
