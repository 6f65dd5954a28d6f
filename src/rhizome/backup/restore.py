"""Restoring this node's data directory from the repository and recovering it (executor).

restore_plan.py decides; this runs it on the node the operator chose, whose
keeper is stopped (its data directory lock is taken for the whole run, so a
keeper cannot start meanwhile):

1. `pgbackrest restore --delta` of the chosen set with the recovery target;
2. this node's own configuration files written over the ones the backup
   carried (they may come from another node: port, sockets, archive_command);
3. PostgreSQL run alone (instance.py: its socket only, no hot standby),
   recovering from the archive up to the target and promoting, failed with
   PostgreSQL's reason when it exits first (a target never reached);
4. stopped cleanly, and pgBackRest's recovery settings removed from
   postgresql.auto.conf.

The store is not touched here: cli/backup_restore.py asks the sentinel to make
this keeper the master once this succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rhizome.backup import pgbackrest
from rhizome.backup.instance import (
    InstanceFailed,
    LocalInstance,
    give_to_owner,
    recover_alone,
    stop,
)
from rhizome.backup.records import parse_info
from rhizome.backup.restore_plan import (
    Backup,
    RecoveryTarget,
    RestoreRefused,
    backups_of,
    restore_options,
    without_recovery_settings,
)
from rhizome.keeper.conffiles import ConfigRequest, render_configuration, write_configuration
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.controldata import ControlData
from rhizome.keeper.lock import DataDirectoryLock, DataDirectoryLocked
from rhizome.keeper.postgres_log import log_path
from rhizome.keeper.tls import files_digest
from rhizome.spec.model import ClusterSpec

AUTO_CONF = "postgresql.auto.conf"


class RestoreFailed(RuntimeError):
    """A step failed after the data directory was changed; the message says which."""


@dataclass(frozen=True)
class NodeRestore:
    """Where and as whom this node's restore runs."""

    keeper: KeeperConfig
    spec: ClusterSpec
    stanza: str
    pgbackrest_config: Path
    run_as: str | None
    timeout: float

    def pgbackrest_options(self) -> list[str]:
        return pgbackrest.config_options(self.pgbackrest_config, self.stanza)

    @property
    def instance(self) -> LocalInstance:
        keeper = self.keeper
        return LocalInstance(keeper.data_dir, keeper.bin_dir, log_path(keeper), self.run_as)


def lock_stopped_node(node: NodeRestore) -> DataDirectoryLock:
    """The data directory's lock, refused while a keeper or PostgreSQL runs on it."""
    keeper = node.keeper
    lock = DataDirectoryLock(keeper.lock_file, keeper.data_dir)
    try:
        lock.acquire()
    except (DataDirectoryLocked, OSError) as error:
        raise RestoreRefused(f"{error}: stop the keeper on this node first") from None
    give_to_owner(keeper.lock_file, keeper.state_dir)
    if node.instance.running():
        lock.release()
        raise RestoreRefused(
            f"PostgreSQL still runs in {keeper.data_dir} without its keeper: stop it "
            f"(pg_ctl stop -D {keeper.data_dir} -m fast) before restoring"
        )
    return lock


def list_backups(options: list[str], stanza: str, run_as: str | None) -> list[Backup]:
    """The repository's backup sets (pgbackrest info); refused when it cannot be read."""
    outcome = pgbackrest.run([*options, "--output=json"], "info", run_as=run_as)
    if not outcome.ok:
        raise RestoreRefused(f"pgbackrest info failed: {outcome.error}")
    return backups_of(parse_info(outcome.output, stanza))


def restore_files(node: NodeRestore, backup: Backup, target: RecoveryTarget) -> float:
    """pgbackrest restore into the data directory; its duration."""
    keeper = node.keeper
    keeper.data_dir.mkdir(mode=0o700, exist_ok=True)
    give_to_owner(keeper.data_dir, keeper.state_dir)
    options = [*node.pgbackrest_options(), f"--pg1-path={keeper.data_dir}"]
    outcome = pgbackrest.run(
        [*options, *restore_options(backup, target)], "restore",
        run_as=node.run_as, timeout=node.timeout,
    )  # fmt: skip
    if not outcome.ok:
        raise RestoreFailed(f"pgbackrest restore of {backup.label} failed: {outcome.error}")
    return outcome.seconds


def write_own_configuration(node: NodeRestore) -> None:
    """This node's postgresql.conf and pg_hba.conf as a primary's (the keeper's files)."""
    keeper = node.keeper
    rendered = render_configuration(keeper, node.spec, ConfigRequest(), files_digest(keeper.tls))
    write_configuration(keeper.data_dir, rendered, standby=False)
    for name in ("postgresql.conf", "pg_hba.conf"):
        give_to_owner(keeper.data_dir / name, keeper.state_dir)


def recover(node: NodeRestore) -> ControlData:
    """Run the recovery to its target and promotion, then stop cleanly: the control data."""
    try:
        recover_alone(node.instance, "", node.timeout)
        control = stop(node.instance)
    except InstanceFailed as error:
        raise RestoreFailed(str(error)) from None
    remove_recovery_settings(node.keeper.data_dir)
    return control


def remove_recovery_settings(data_dir: Path) -> None:
    """Remove from postgresql.auto.conf what pgBackRest's restore wrote for the recovery."""
    path = data_dir / AUTO_CONF
    if path.exists():
        path.write_text(without_recovery_settings(path.read_text()))
