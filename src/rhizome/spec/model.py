"""ClusterSpec: what the operator wants, stored in the `spec` key."""

from collections.abc import Sequence
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, Strict, StrictBool, ValidationError, model_validator

from rhizome.spec.backup import ARCHIVING_PARAMETERS, BackupSettings
from rhizome.spec.postgres import HbaEntry, PgParameters, commits_without_standbys
from rhizome.spec.timing import TimingSettings
from rhizome.store.additions import WithOptionalAdditions
from rhizome.store.codec import StoreDocument, StoreModel
from rhizome.store.fields import Bytes, KeeperName
from rhizome.store.validation import (
    FieldProblem,
    describe_validation_error,
    raise_problems,
    render_problems,
)

MINIMUM_DEAD_KEEPER_REMOVAL = 60.0
"""Smallest non-zero dead_keeper_removal_after, in seconds."""

InitMode = Literal["new", "existing"]
RemovalDelay = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]


class SpecError(ValueError):
    """The spec is invalid; the message lists every problem, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        header = f"invalid cluster spec ({count} problem{'s' if count != 1 else ''}):"
        super().__init__("\n".join([header, *self.problems]))


class SynchronousReplicationSettings(StoreModel):
    """Synchronous replication: no acknowledged commit is lost on failover."""

    enabled: StrictBool = False
    """Whether commits wait for synchronous standbys."""
    min_standbys: Annotated[int, Strict()] = 1
    """Synchronous standbys kept even when they fail: commits wait rather than run
    with fewer. At least 1: with none, commits would silently stop being
    protected; disable synchronous replication to prefer availability."""
    max_standbys: Annotated[int, Strict()] = 1
    """Most healthy standbys made synchronous; every one must acknowledge commits."""

    @model_validator(mode="after")
    def _check_counts(self) -> Self:
        problems: list[FieldProblem] = []
        if self.min_standbys < 1:
            problems.append(
                FieldProblem(
                    "min_standbys",
                    f"{self.min_standbys} must be at least 1: synchronous replication promises "
                    "that no acknowledged commit is lost, which needs a synchronous standby",
                    "set it to 1 or more, or set enabled to false to prefer availability",
                )
            )
        if self.max_standbys < self.min_standbys:
            problems.append(
                FieldProblem(
                    "max_standbys",
                    f"{self.max_standbys} must be at least synchronous_replication.min_standbys "
                    f"({self.min_standbys})",
                    "raise max_standbys or lower min_standbys",
                )
            )
        raise_problems(problems)
        return self


class KeeperSettings(StoreModel):
    """Operator settings of one keeper."""

    no_failover: StrictBool = False
    """Never promote this keeper (e.g. a remote or undersized host)."""
    priority: Annotated[int, Strict(), Field(ge=0, le=1000)] = 0
    """Preference among promotion candidates with the same WAL position; higher
    wins. It never beats a more advanced standby."""
    maintenance: StrictBool = False
    """The operator is working on this keeper: the sentinel neither promotes it
    nor acts on its absence (no failover, no removal). Switch over first when it
    is the master."""
    removed: StrictBool = False
    """The operator removed this keeper (`rhizomectl keeper remove`): the sentinel
    assigns it `removed`, never promotes it and drops it from the synchronous set;
    its keeper stops PostgreSQL for good. Never applied to the master: switch over
    first."""


class ClusterSpec(WithOptionalAdditions, StoreDocument):
    """The operator's wishes for one cluster, stored in `spec`."""

    OPTIONAL_ADDITIONS: ClassVar[frozenset[str]] = frozenset({"failsafe", "backup"})

    timing: TimingSettings = TimingSettings()
    """Intervals, leases and deadlines, validated as a set."""
    synchronous_replication: SynchronousReplicationSettings = SynchronousReplicationSettings()
    """Synchronous replication settings (off by default)."""
    max_standby_lag_bytes: Bytes = 16 * 1024 * 1024
    """Without synchronous replication, a standby further behind the last known
    master position than this is never promoted (default 16 MiB)."""
    pg_parameters: PgParameters = Field(default_factory=dict)
    """postgresql.conf parameters; those rhizome manages are refused."""
    pg_hba: tuple[HbaEntry, ...] = ()
    """pg_hba.conf entries, in order, before the replication entries rhizome adds."""
    use_pg_rewind: StrictBool = True
    """Rejoin a diverged old master with pg_rewind; otherwise with a fresh base backup."""
    init_mode: InitMode = "new"
    """new: initdb a fresh cluster. existing: adopt initial_master's data directory."""
    initial_master: KeeperName | None = None
    """Keeper that becomes the first master; required for init_mode existing,
    otherwise the first keeper to report is chosen."""
    paused: StrictBool = False
    """The sentinel changes nothing at all (no failover, no standby changes);
    operator commands stay pending until the cluster is resumed, and rhizomectl
    refuses new ones while paused."""
    dead_keeper_removal_after: RemovalDelay = 86400.0
    """Seconds a keeper may stay dead before the sentinel removes it from the
    cluster (freeing its replication slot, which otherwise retains WAL until the
    master's disk fills); 0 never removes. Default one day."""
    keepers: dict[KeeperName, KeeperSettings] = Field(default_factory=dict)
    """Per-keeper settings by keeper name; unlisted keepers get the defaults."""
    failsafe: StrictBool = False
    """A master keeper that cannot reach etcd keeps PostgreSQL writable while every
    keeper and proxy confirms over its API that it cannot reach etcd either
    (docs/protocol.md, "Failsafe"). Needs every agent's API reachable from the
    others, with authentication."""
    backup: BackupSettings = BackupSettings()
    """WAL archiving and backups with pgBackRest (off by default); see
    rhizome.spec.backup."""

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        raise_problems([*self._initialisation_problems(), *self._setting_problems()])
        return self

    def _initialisation_problems(self) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        if self.init_mode == "existing" and self.initial_master is None:
            problems.append(
                FieldProblem(
                    "initial_master",
                    "is required with init_mode existing: rhizome must know whose data to adopt",
                    "name the keeper holding the existing data directory",
                )
            )
        if self.initial_master is not None and self.keeper_settings(self.initial_master).removed:
            problems.append(
                FieldProblem(
                    "initial_master",
                    f"{self.initial_master} is removed and cannot become master",
                    f"set keepers.{self.initial_master}.removed to false or choose another keeper",
                )
            )
        if (
            self.initial_master is not None
            and self.keeper_settings(self.initial_master).maintenance
        ):
            problems.append(
                FieldProblem(
                    "initial_master",
                    f"{self.initial_master} is in maintenance and cannot become master",
                    f"end maintenance of keepers.{self.initial_master} or choose another keeper",
                )
            )
        return problems

    def _setting_problems(self) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        synchronous_commit = self.pg_parameters.get("synchronous_commit")
        if (
            self.synchronous_replication.enabled
            and synchronous_commit is not None
            and commits_without_standbys(synchronous_commit)
        ):
            problems.append(
                FieldProblem(
                    "pg_parameters.synchronous_commit",
                    f"{synchronous_commit!r} acknowledges commits before a synchronous standby "
                    "has them, breaking synchronous replication's no-loss promise",
                    "remove it, use on or remote_apply, or disable synchronous_replication",
                )
            )
        problems.extend(self._archiving_problems())
        if 0 < self.dead_keeper_removal_after < MINIMUM_DEAD_KEEPER_REMOVAL:
            problems.append(
                FieldProblem(
                    "dead_keeper_removal_after",
                    f"{self.dead_keeper_removal_after} would remove keepers that are merely "
                    "restarting (they would then need a new base backup)",
                    f"use 0 (never) or at least {MINIMUM_DEAD_KEEPER_REMOVAL:.0f} seconds",
                )
            )
        return problems

    def _archiving_problems(self) -> list[FieldProblem]:
        """While backups are enabled the keepers own archiving: no operator value for it."""
        if not self.backup.enabled:
            return []
        return [
            FieldProblem(
                f"pg_parameters.{name}",
                "is managed by rhizome while backup.enabled is true (the keeper archives "
                "with pgBackRest and closes the archive's gap after a failover)",
                "remove it, or set backup.enabled to false to archive by other means",
            )
            for name in ARCHIVING_PARAMETERS
            if name in self.pg_parameters
        ]

    def keeper_settings(self, keeper: str) -> KeeperSettings:
        """The settings of `keeper`, defaults when it is not listed."""
        return self.keepers.get(keeper, KeeperSettings())


def parse_spec(data: object) -> ClusterSpec:
    """Validate operator input (e.g. parsed YAML) as a ClusterSpec.

    Raises SpecError listing every problem as "field.path: problem; fix".
    """
    try:
        return ClusterSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(render_problems(describe_validation_error(error))) from None
