"""Restoring this node's data directory from the repository and recovering it (executor).

restore_plan.py decides; this runs it on the node the operator chose, whose
keeper is stopped (its data directory lock is taken for the whole run, so a
keeper cannot start meanwhile):

1. `pgbackrest restore --delta` of the chosen set with the recovery target;
2. this node's own configuration files written over the ones the backup
   carried (they may come from another node: port, sockets, archive_command);
3. PostgreSQL started alone on its socket only (listen_addresses empty, no hot
   standby, so nobody connects), recovering from the archive up to the target
   and promoting: done once the control file says `in production`, failed with
   PostgreSQL's reason when it exits first (a target never reached);
4. stopped cleanly, and pgBackRest's recovery settings removed from
   postgresql.auto.conf.

The store is not touched here: cli/backup_restore.py asks the sentinel to make
this keeper the master once this succeeded.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rhizome.backup import pgbackrest
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
from rhizome.keeper.controldata import C_LOCALE, ControlData, read_control_data
from rhizome.keeper.lock import DataDirectoryLock, DataDirectoryLocked
from rhizome.keeper.postgres_log import log_path
from rhizome.spec.model import ClusterSpec

AUTO_CONF = "postgresql.auto.conf"
RECOVERY_SIGNAL = "recovery.signal"
ALONE = "-c listen_addresses='' -c hot_standby=off"
"""The recovering server accepts no network client and no read-only session."""
STOP_TIMEOUT = 300
PROMOTION_POLL = 0.2


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
        return [f"--config={self.pgbackrest_config}", f"--stanza={self.stanza}"]


def lock_stopped_node(node: NodeRestore) -> DataDirectoryLock:
    """The data directory's lock, refused while a keeper or PostgreSQL runs on it."""
    keeper = node.keeper
    lock = DataDirectoryLock(keeper.lock_file, keeper.data_dir)
    try:
        lock.acquire()
    except (DataDirectoryLocked, OSError) as error:
        raise RestoreRefused(f"{error}: stop the keeper on this node first") from None
    give_to_owner(keeper.lock_file, keeper.state_dir)
    if postgres_running(node):
        lock.release()
        raise RestoreRefused(
            f"PostgreSQL still runs in {keeper.data_dir} without its keeper: stop it "
            f"(pg_ctl stop -D {keeper.data_dir} -m fast) before restoring"
        )
    return lock


def postgres_running(node: NodeRestore) -> bool:
    argv = [node.keeper.program("pg_ctl"), "status", "-D", str(node.keeper.data_dir)]
    completed = run_as_owner(node, argv, timeout=30)
    return completed.returncode == 0


def list_backups(node: NodeRestore) -> list[Backup]:
    """The repository's backup sets (pgbackrest info); refused when it cannot be read."""
    outcome = pgbackrest.run(
        [*node.pgbackrest_options(), "--output=json"], "info", run_as=node.run_as
    )
    if not outcome.ok:
        raise RestoreRefused(f"pgbackrest info failed: {outcome.error}")
    return backups_of(parse_info(outcome.output, node.stanza))


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
    rendered = render_configuration(keeper, node.spec, ConfigRequest())
    write_configuration(keeper.data_dir, rendered, standby=False)
    for name in ("postgresql.conf", "pg_hba.conf"):
        give_to_owner(keeper.data_dir / name, keeper.state_dir)


def recover(node: NodeRestore) -> ControlData:
    """Run the recovery to its target and promotion, then stop cleanly: the control data."""
    keeper = node.keeper
    pg_ctl, data = keeper.program("pg_ctl"), str(keeper.data_dir)
    start = [pg_ctl, "start", "-D", data, "-l", str(log_path(keeper)), "-o", ALONE, "-W"]
    started = run_as_owner(node, start, timeout=60)
    if started.returncode != 0:
        raise RestoreFailed(f"pg_ctl start failed: {started.stderr.strip()}")
    deadline = time.monotonic() + node.timeout
    while not (keeper.data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(PROMOTION_POLL)  # pg_ctl -W returns before the postmaster writes it
    wait_for_promotion(node, deadline)
    stop = [pg_ctl, "stop", "-D", data, "-m", "fast", "-w", "-t", str(STOP_TIMEOUT)]
    stopped = run_as_owner(node, stop, timeout=STOP_TIMEOUT + 30)
    if stopped.returncode != 0:
        raise RestoreFailed(f"pg_ctl stop failed after the recovery: {stopped.stderr.strip()}")
    control = read_control_data(keeper.program("pg_controldata"), keeper.data_dir)
    if control.cluster_state != "shut down":
        raise RestoreFailed(f"the recovered data is {control.cluster_state!r}, not shut down")
    return control


def wait_for_promotion(node: NodeRestore, deadline: float) -> None:
    """Until PostgreSQL removed recovery.signal and the control file says `in production`
    (recovered and promoted; the restored control file may say so before the recovery
    began); fails when PostgreSQL exits first (a target the archived WAL never reaches)
    or at the deadline."""
    keeper = node.keeper
    while True:
        state = read_control_data(keeper.program("pg_controldata"), keeper.data_dir).cluster_state
        if state == "in production" and not (keeper.data_dir / RECOVERY_SIGNAL).exists():
            return
        if not postgres_running(node):
            raise RestoreFailed(
                "the recovery did not complete (a target that the archived WAL never reaches, "
                f"or a missing WAL file); PostgreSQL logged:\n{log_tail(log_path(keeper))}"
            )
        if time.monotonic() > deadline:
            raise RestoreFailed(f"the recovery is still {state!r} after {node.timeout:g} s")
        time.sleep(PROMOTION_POLL)


def remove_recovery_settings(node: NodeRestore) -> None:
    path = node.keeper.data_dir / AUTO_CONF
    if path.exists():
        path.write_text(without_recovery_settings(path.read_text()))


def run_as_owner(
    node: NodeRestore, argv: list[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """A PostgreSQL program as the data directory's owner (setpriv when root)."""
    if node.run_as is not None and os.geteuid() == 0:
        argv = ["setpriv", f"--reuid={node.run_as}", f"--regid={node.run_as}", "--init-groups",
                "--", *argv]  # fmt: skip
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd="/",
        env={**C_LOCALE, "PATH": os.environ.get("PATH", C_LOCALE["PATH"])},
    )  # fmt: skip


def give_to_owner(path: Path, reference: Path) -> None:
    """As root, give `path` the owner of `reference` (the keeper's state directory)."""
    if os.geteuid() == 0 and reference.exists():
        owner = reference.stat()
        os.chown(path, owner.st_uid, owner.st_gid)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
