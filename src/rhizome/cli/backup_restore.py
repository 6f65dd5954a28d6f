"""`rhizomectl backup restore`: the whole cluster back to a time, an LSN, a restore
point or the latest archived WAL (docs/runbooks/restore.md).

Run on the node that becomes the master, once every keeper of the cluster is
stopped (playbooks/restore.yml does both). It checks everything it can before
changing anything (the target, the backup set, that no keeper runs), prints
what it will destroy, and refuses without --confirm (a preview, also while
the keepers still run). Then it restores and
recovers this node's data (rhizome.backup.restore) and submits a `restore`
command: the leader sentinel makes this keeper the master
(sentinel/decision/restore.py). Started again, the other keepers rejoin it as
standbys (pg_rewind or a new clone).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rhizome.backup.restore import (
    NodeRestore,
    RestoreFailed,
    list_backups,
    lock_stopped_node,
    recover,
    restore_files,
    write_own_configuration,
)
from rhizome.backup.restore_plan import (
    Backup,
    RecoveryTarget,
    RestoreRefused,
    choose_backup,
    moment_text,
    parse_target,
)
from rhizome.cli.backup_commands import Adder, backup_settings
from rhizome.cli.commands import command_name, requester
from rhizome.cli.context import Context
from rhizome.cli.errors import OperationFailed, OperationRefused, UsageError
from rhizome.cli.spec_commands import require_spec
from rhizome.cli.waiting import follow_if_asked
from rhizome.config import ConfigError
from rhizome.keeper.config import load_configuration
from rhizome.keeper.timelines import format_lsn
from rhizome.spec.model import ClusterSpec
from rhizome.store.documents import Command

DEFAULT_KEEPER_CONFIG = Path("/etc/rhizome/keeper.toml")
DEFAULT_TIMEOUT = 3600.0
SENTINEL_TIMEOUT = 120.0


def add_restore_command(add: Adder) -> None:
    restore = add(
        "restore", "restore the cluster from the repository on this node (keepers stopped)",
        run_restore,
    )  # fmt: skip
    restore.add_argument(
        "--keeper-config", type=Path, default=DEFAULT_KEEPER_CONFIG, metavar="FILE",
        help=f"this node's keeper configuration (default {DEFAULT_KEEPER_CONFIG})",
    )  # fmt: skip
    restore.add_argument("--time", metavar="TIME", help="recover up to TIME (ISO 8601 with zone)")
    restore.add_argument("--lsn", metavar="LSN", help="recover up to the WAL position LSN")
    restore.add_argument("--name", metavar="POINT", help="recover up to a named restore point")
    restore.add_argument("--set", metavar="LABEL", help="start from this backup set")
    restore.add_argument(
        "--confirm", action="store_true", help="destroy the current data (refused without it)"
    )
    restore.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                         help="give up the restore or the recovery after S seconds")  # fmt: skip


def run_restore(context: Context, arguments: argparse.Namespace) -> int:
    try:
        target = parse_target(arguments.time, arguments.lsn, arguments.name)
        node = node_restore(context, arguments)
        refuse_paused(node.spec)
        backups = list_backups(node.pgbackrest_options(), node.stanza, node.run_as)
        backup = choose_backup(backups, target, arguments.set, context.clock())
    except RestoreRefused as error:
        raise OperationRefused(f"restore refused, nothing changed: {error}") from None
    context.say(plan_text(context, node, backup, target))
    reasons = running_keepers(context) + ([] if arguments.confirm else ["add --confirm to do it"])
    if reasons:
        raise OperationRefused(f"restore refused, nothing changed: {'; then '.join(reasons)}")
    try:
        lock = lock_stopped_node(node)
    except RestoreRefused as error:
        raise OperationRefused(f"restore refused, nothing changed: {error}") from None
    try:
        timeline = restore_and_recover(context, node, backup, target)
    except RestoreFailed as error:
        raise OperationFailed(
            f"restore failed: {error}\nThe store is unchanged and every keeper must stay "
            "stopped; fix the cause and run the restore again"
        ) from None
    finally:
        lock.release()
    command = submit_restore(context, node.keeper.name, timeline)
    return follow_if_asked(context, command, True, SENTINEL_TIMEOUT)


def node_restore(context: Context, arguments: argparse.Namespace) -> NodeRestore:
    try:
        keeper = load_configuration(arguments.keeper_config).keeper
    except ConfigError as error:
        raise UsageError(str(error)) from error
    if keeper.cluster and keeper.cluster != context.cluster:
        raise RestoreRefused(
            f"{arguments.keeper_config} is a keeper of cluster {keeper.cluster}, not of "
            f"{context.cluster}: pass this node's keeper configuration of {context.cluster}"
        )
    settings = backup_settings(context)
    config = keeper.pgbackrest_config or arguments.pgbackrest_config
    return NodeRestore(
        keeper=keeper, spec=require_spec(context).document,
        stanza=settings.stanza_for(context.cluster), pgbackrest_config=config,
        run_as=arguments.run_as, timeout=arguments.timeout,
    )  # fmt: skip


def refuse_paused(spec: ClusterSpec) -> None:
    if spec.paused:
        raise RestoreRefused(
            "the cluster is paused: the sentinel would not make the restored keeper the "
            "master; resume it first with `rhizomectl resume`"
        )


def running_keepers(context: Context) -> list[str]:
    """Why the restore cannot start while keepers run (empty when none does)."""
    running = sorted(context.store.read_view().keepers)
    if not running:
        return []
    return [
        f"keepers {', '.join(running)} still run: stop every keeper of the cluster first, "
        "the standbys' before the master's so that nothing fails over "
        "(docs/runbooks/restore.md)"
    ]


def plan_text(context: Context, node: NodeRestore, backup: Backup, target: RecoveryTarget) -> str:
    keeper = node.keeper
    return (
        f"restore of cluster {context.cluster} on {keeper.name}: backup {backup.label} (ended "
        f"{moment_text(backup.stopped_at)}, {format_lsn(backup.stop_lsn)}) recovered to "
        f"{target.describe()}, then promoted on a new timeline.\nThis destroys the data "
        f"directory {keeper.data_dir} of {keeper.name}, and everything written to the cluster "
        "after the target: the other keepers rewind or clone from the restored master."
    )


def restore_and_recover(
    context: Context, node: NodeRestore, backup: Backup, target: RecoveryTarget
) -> int:
    """Restore, recover and promote; the new timeline."""
    seconds = restore_files(node, backup, target)
    context.say(f"pgbackrest restore of {backup.label} done in {seconds:.1f} s; recovering")
    write_own_configuration(node)
    control = recover(node)
    context.say(
        f"recovered and promoted: timeline {control.timeline}, checkpoint "
        f"{format_lsn(control.checkpoint_lsn)}; asking the sentinel to make "
        f"{node.keeper.name} the master"
    )
    return control.timeline


def submit_restore(context: Context, keeper: str, timeline: int) -> Command:
    """The `restore` command that makes the restored keeper the master."""
    now = context.clock()
    command = Command(
        name=command_name("restore", now), kind="restore", target=keeper,
        restored_timeline=timeline, requested_at=now, requested_by=requester(),
        timeout=SENTINEL_TIMEOUT,
    )  # fmt: skip
    if not context.store.submit_command(command):
        raise OperationFailed(f"a command named {command.name} already exists; try again")
    context.say(f"submitted restore command {command.name} ({keeper} becomes the master)")
    return command
