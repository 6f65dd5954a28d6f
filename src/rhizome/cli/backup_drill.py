"""`rhizomectl backup drill`: restore the latest backup into a scratch instance on this
node, check it, report how long it took and how old its data is, then remove it
(rhizome.backup.drill; docs/runbooks/restore.md). The cluster is not touched."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rhizome.backup import pgbackrest
from rhizome.backup.drill import DrillFailed, Scratch, prepare, remove, run_drill
from rhizome.backup.instance import LocalInstance
from rhizome.backup.restore import list_backups
from rhizome.backup.restore_plan import RecoveryTarget, RestoreRefused, choose_backup
from rhizome.cli.backup_commands import Adder, backup_settings
from rhizome.cli.backup_restore import DEFAULT_KEEPER_CONFIG, DEFAULT_TIMEOUT
from rhizome.cli.context import Context
from rhizome.cli.errors import EXIT_OK, OperationFailed, OperationRefused, UsageError
from rhizome.config import ConfigError
from rhizome.keeper.config import load_configuration

SCRATCH_SUFFIX = ".restore-drill"
"""The default scratch directory: next to the data directory (not in a world-writable one)."""
PORT_OFFSET = 1
"""The scratch instance's port (its socket's name only): the keeper's plus this."""


def add_drill_command(add: Adder) -> None:
    drill = add("drill", "restore the latest backup into a scratch instance, check it, remove "
                "it", run_drill_command)  # fmt: skip
    drill.add_argument(
        "--keeper-config", type=Path, default=DEFAULT_KEEPER_CONFIG, metavar="FILE",
        help=f"this node's keeper configuration (default {DEFAULT_KEEPER_CONFIG})",
    )  # fmt: skip
    drill.add_argument("--set", metavar="LABEL", help="restore this backup set (default latest)")
    drill.add_argument(
        "--scratch-dir", type=Path, metavar="DIR",
        help=f"where the copy lives (default: next to the data directory, + {SCRATCH_SUFFIX})",
    )  # fmt: skip
    drill.add_argument(
        "--query", metavar="SQL", help="also run SQL on the copy (database postgres)"
    )
    drill.add_argument("--keep", action="store_true", help="leave the stopped copy in place")
    drill.add_argument("--json", action="store_true", help="the report as JSON")
    drill.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                       help="give up the restore or the recovery after S seconds")  # fmt: skip


def run_drill_command(context: Context, arguments: argparse.Namespace) -> int:
    try:
        keeper = load_configuration(arguments.keeper_config).keeper
    except ConfigError as error:
        raise UsageError(str(error)) from error
    stanza = backup_settings(context).stanza_for(context.cluster)
    config = keeper.pgbackrest_config or arguments.pgbackrest_config
    options = pgbackrest.config_options(config, stanza)
    directory = arguments.scratch_dir or keeper.data_dir.with_name(
        keeper.data_dir.name + SCRATCH_SUFFIX
    )
    scratch = Scratch(directory, keeper.state_dir, keeper.port + PORT_OFFSET,
                      keeper.superuser)  # fmt: skip
    instance = LocalInstance(scratch.data_dir, keeper.bin_dir, scratch.directory / "postgresql.log",
                             arguments.run_as)  # fmt: skip
    try:
        backups = list_backups(options, stanza, arguments.run_as)
        backup = choose_backup(backups, RecoveryTarget("latest"), arguments.set, context.clock())
        prepare(scratch)
    except (RestoreRefused, DrillFailed) as error:
        raise OperationRefused(f"restore drill refused, nothing changed: {error}") from None
    context.say(f"restore drill of backup {backup.label} in {scratch.directory}")
    try:
        report = run_drill(options, backup, scratch, instance, arguments.timeout, arguments.query)
    except DrillFailed as error:
        raise OperationFailed(f"restore drill FAILED: {error}") from None
    finally:
        if arguments.keep:
            instance.run([instance.program("pg_ctl"), "stop", "-D", str(scratch.data_dir)], 300)
        else:
            remove(scratch, instance)
    if arguments.json:
        context.say(json.dumps(report.__dict__, default=str, indent=2))
    else:
        context.say(report.describe(context.clock()))
    return EXIT_OK
