"""The documents agents and operator tools publish under /rhizome/<cluster>/.

| key                | document     | writer                          |
|--------------------|--------------|---------------------------------|
| `keepers/<name>`   | KeeperInfo   | that keeper, on its lease       |
| `sentinels/<id>`   | SentinelInfo | that sentinel, on its lease     |
| `proxies/<id>`     | ProxyInfo    | that proxy, on its lease        |
| `sentinel-leader`  | LeaderInfo   | sentinel election, on a lease   |
| `commands/<name>`  | Command      | operator tools, create-if-absent|
| `state`            | ClusterState | the leader sentinel (see state) |
| `spec`             | ClusterSpec  | operator tools (rhizome.spec)   |
"""

from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, Strict, StrictBool, model_validator

from rhizome.store.additions import WithOptionalAdditions
from rhizome.store.codec import AGENT_WRITTEN, StoreDocument
from rhizome.store.fields import (
    Bytes,
    Generation,
    HostAddress,
    Identifier,
    KeeperName,
    ListenAddress,
    Lsn,
    Port,
    Seconds,
    Text,
    Timeline,
    UnixTime,
)
from rhizome.store.state import (
    COMMAND_RESULTS_LIMIT,
    HISTORY_LIMIT,
    ClusterState,
    CommandKindName,
    CommandResult,
    CutoverMethod,
    KeeperAssignment,
    KeeperRole,
    Operation,
    OperationKind,
    ProxyTarget,
    RoleChange,
    SynchronousStandbys,
)
from rhizome.store.validation import FieldProblem, field_error, raise_problems

__all__ = [
    "COMMAND_RESULTS_LIMIT",
    "HISTORY_LIMIT",
    "ClusterState",
    "Command",
    "CommandKind",
    "CommandResult",
    "CutoverMethod",
    "KeeperAssignment",
    "KeeperInfo",
    "KeeperRole",
    "LeaderInfo",
    "Operation",
    "OperationKind",
    "PostgresRole",
    "ProxyInfo",
    "ProxyTarget",
    "RoleChange",
    "SentinelInfo",
    "SynchronousStandbys",
]

PostgresRole = Literal["primary", "standby", "unknown"]
CommandKind = CommandKindName


def _check_system_identifier(identifier: str) -> str:
    """PostgreSQL's system identifier is a 64-bit unsigned integer, kept as text."""
    if not identifier.isdigit() or len(identifier) > 20:
        field_error(
            f"{identifier!r} is not a PostgreSQL system identifier",
            "report the decimal value from pg_control_system()",
        )
    return identifier


SystemIdentifier = Annotated[str, Strict(), AfterValidator(_check_system_identifier)]


class KeeperInfo(StoreDocument):
    """What a keeper observed of its PostgreSQL, published on its lease."""

    model_config = AGENT_WRITTEN

    name: KeeperName
    """The keeper's name (also the last segment of its key)."""
    host: HostAddress
    """Host name or address where this keeper's PostgreSQL listens."""
    port: Port
    """Port where this keeper's PostgreSQL listens."""
    observed_at: UnixTime
    """When the observation was made (unix time, keeper clock)."""
    running: StrictBool
    """PostgreSQL is running and accepts connections from the keeper."""
    role: PostgresRole = "unknown"
    """What PostgreSQL reports itself to be; unknown when it is not running."""
    healthy: StrictBool
    """The keeper's own health check passed (running, queries answered, replication sane)."""
    timeline: Timeline | None = None
    """Current timeline of the instance; None before it was ever started."""
    system_identifier: SystemIdentifier | None = None
    """Database system identifier; None while there is no data directory."""
    postgres_version: Annotated[int, Strict()] | None = None
    """server_version_num of the running PostgreSQL, e.g. 160002."""
    write_lsn: Lsn | None = None
    """Primary only: pg_current_wal_lsn(), the position written so far."""
    flush_lsn: Lsn | None = None
    """Primary only: pg_current_wal_flush_lsn(), the position durable on disk."""
    receive_lsn: Lsn | None = None
    """Standby only: pg_last_wal_receive_lsn(), WAL received and flushed locally."""
    replay_lsn: Lsn | None = None
    """Standby only: pg_last_wal_replay_lsn(), WAL replayed so far."""
    lag_bytes: Bytes | None = None
    """Standby only: how far behind its upstream it is, when known."""
    synchronous_standby_names: tuple[KeeperName, ...] = ()
    """Primary only: the keepers named in the synchronous_standby_names in effect."""
    streaming_standbys: tuple[Text, ...] = ()
    """Primary only: application names of the standbys streaming from it now."""
    synchronous_streaming: tuple[Text, ...] | None = None
    """Primary only: the streaming standbys its WAL senders count as synchronous
    now (pg_stat_replication.sync_state), which is what makes a commit wait for
    them; None from keepers older than this field."""
    pending_restart: tuple[Text, ...] = ()
    """Parameters changed in the configuration that only apply after a restart."""
    last_error: Text | None = None
    """The last reconcile error, if the last attempt failed."""
    acknowledged_state_generation: Generation = 0
    """The `state` generation whose assignment this keeper has applied."""
    fenced: StrictBool = False
    """The keeper has made PostgreSQL unable to accept writes (stopped or demoted)."""
    instance_id: Identifier | None = None
    """Identity of the keeper's data directory (drawn once, kept in its state
    directory): two hosts configured with one keeper name differ here, so a
    fencing acknowledgement is taken only from the instance that was master.
    None from keepers older than this field."""
    holding: StrictBool = False
    """PostgreSQL runs under pause rules: were this keeper to die now, its guard
    would leave PostgreSQL running (no fence) until a keeper comes back. Set
    only while the cluster is paused and until the keeper re-armed its fencing
    after the resume (docs/fencing.md, "Restarts and pause")."""
    api_url: Text | None = None
    """Where the keeper's HTTP API answers other agents (failsafe confirmations),
    e.g. "https://db1:9643"; None when it listens on localhost only."""
    sealed_lsn: Lsn | None = None
    """Master sealed for a cutover (KeeperAssignment.sealed): its position once
    no client session was left and the sequences were recorded; None otherwise."""
    upgrade_confirmed_lsn: Lsn | None = None
    """Master only: the least confirmed_flush_lsn of the `rhizome_upgrade_%`
    logical slots (what the successor cluster has flushed); None without one."""

    @property
    def wal_position(self) -> int | None:
        """The furthest WAL position this instance holds, for comparing candidates."""
        if self.role == "primary":
            return self.flush_lsn
        positions = [lsn for lsn in (self.receive_lsn, self.replay_lsn) if lsn is not None]
        return max(positions) if positions else None

    @property
    def accepts_writes(self) -> bool:
        """Whether this PostgreSQL may currently accept writes."""
        return self.running and self.role == "primary" and not self.fenced

    @property
    def fencing_problem(self) -> str | None:
        """Why this PostgreSQL may still accept writes; None once the keeper fenced it.

        Fencing asks more than `accepts_writes`: a primary that stopped answering
        its keeper is reported not running but unfenced until the keeper killed it.
        """
        if self.accepts_writes:
            return "still reports a primary that accepts writes"
        if not self.fenced:
            return "reports a PostgreSQL that may accept writes and does not answer its keeper"
        return None


class SentinelInfo(StoreDocument):
    """A running sentinel, published on its lease."""

    model_config = AGENT_WRITTEN

    id: Identifier
    """The sentinel's identifier (also the last segment of its key)."""
    host: HostAddress
    """Host the sentinel runs on."""
    started_at: UnixTime
    """When this sentinel process started."""
    version: Text
    """rhizome version of this sentinel."""


class ProxyInfo(StoreDocument):
    """A running proxy and the proxy generation it has applied, on its lease."""

    model_config = AGENT_WRITTEN

    id: Identifier
    """The proxy's identifier (also the last segment of its key)."""
    listen_addresses: tuple[ListenAddress, ...]
    """Addresses ("host:port") the proxy accepts client connections on."""
    acknowledged_proxy_generation: Generation
    """The proxy target generation this proxy routes by."""
    observed_at: UnixTime
    """When the proxy last published this document (proxy clock)."""
    api_url: Text | None = None
    """Where the proxy's HTTP API answers other agents (failsafe confirmations)."""


class LeaderInfo(StoreDocument):
    """The elected sentinel, stored in `sentinel-leader` on its lease."""

    model_config = AGENT_WRITTEN

    sentinel_id: Identifier
    """Identifier of the sentinel that holds leadership."""
    elected_at: UnixTime
    """When it won the election."""


class Command(WithOptionalAdditions, StoreDocument):
    """An operator request; the leader sentinel records its progress in `state`."""

    OPTIONAL_ADDITIONS: ClassVar[frozenset[str]] = frozenset(
        {"old_master_stopped", "successor", "method", "restored_timeline"}
    )

    name: Identifier
    """The command's name (also the last segment of its key)."""
    kind: CommandKind
    """switchover: planned change of master; failover: forced promotion; cutover:
    hand the cluster over to its `successor` (a major upgrade); restore: the data
    of keeper `target` was restored from a backup while every keeper was stopped
    (rhizomectl backup restore): it becomes the master, the others rejoin it."""
    target: KeeperName | None = None
    """Keeper to promote; None lets the sentinel choose the best candidate."""
    requested_at: UnixTime
    """When the command was written."""
    requested_by: Text
    """Who asked for it, e.g. "rhizomectl alice@admin1"."""
    timeout: Seconds | None = None
    """How long the sentinel may try before abandoning it; None: no limit."""
    old_master_stopped: StrictBool = False
    """Failover only: the operator asserts that the old master's PostgreSQL is
    stopped (e.g. its host is powered off). It ends the old master's pause hold
    (ClusterState.paused_holds), which otherwise forbids promoting anybody while
    its keeper is absent."""
    successor: Identifier | None = None
    """Cutover only: the cluster that takes over, fed by logical replication from
    this cluster's master (rhizomectl upgrade prepare), or built from its data."""
    method: CutoverMethod = "logical"
    """Cutover only: logical (the successor is fed by logical replication) or link
    (the master stops cleanly once every standby has its last record; the
    successor is then made from its data by pg_upgrade --link)."""
    restored_timeline: Timeline | None = None
    """Restore only: the timeline the restored data was promoted to. Until a keeper is
    on it (streaming from the restored master), it is not a candidate for promotion:
    its data predates the restore."""

    @model_validator(mode="after")
    def _fields_match_the_kind(self) -> Self:
        problems = []
        if self.old_master_stopped and self.kind != "failover":
            problem = "applies to a failover only (a switchover needs a running master)"
            problems.append(FieldProblem("old_master_stopped", problem, "leave it false"))
        if (self.successor is None) != (self.kind != "cutover"):
            problem = "names the cluster a cutover hands over to, and only a cutover"
            fix = "set it for a cutover" if self.kind == "cutover" else "leave it unset"
            problems.append(FieldProblem("successor", problem, fix))
        if self.kind == "cutover" and self.target is not None:
            problems.append(FieldProblem("target", "a cutover promotes nobody here", "unset it"))
        if self.kind == "restore" and (self.target is None or self.restored_timeline is None):
            problem = "a restore names the restored keeper and its new timeline"
            problems.append(FieldProblem("target", problem, "set target and restored_timeline"))
        if self.kind != "restore" and self.restored_timeline is not None:
            problem = "applies to a restore only"
            problems.append(FieldProblem("restored_timeline", problem, "leave it unset"))
        if self.kind != "cutover" and self.method != "logical":
            problems.append(FieldProblem("method", "applies to a cutover only", "leave it unset"))
        raise_problems(problems)
        return self
