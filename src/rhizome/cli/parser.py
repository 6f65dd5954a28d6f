"""The rhizomectl command line: global options, commands and their arguments."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rhizome.cli.backup_commands import add_backup_commands, add_pgbackrest_options
from rhizome.cli.backup_drill import add_drill_command
from rhizome.cli.backup_restore import add_restore_command
from rhizome.cli.commands import DEFAULT_COMMAND_TIMEOUT, run_failover, run_switchover
from rhizome.cli.context import CONFIG_ENVIRONMENT, DEFAULT_CONFIG_PATH, Context
from rhizome.cli.cutover_command import run_cutover, run_link_command
from rhizome.cli.operations import run_maintenance, run_pause, run_remove, run_resume
from rhizome.cli.reports import run_history, run_status
from rhizome.cli.spec_commands import run_init, run_spec_apply, run_spec_patch, run_spec_show
from rhizome.cli.store_move import add_store_move_command
from rhizome.cli.upgrade_commands import add_upgrade_arguments, run_upgrade_check
from rhizome.cli.upgrade_replication import LocalHandler, add_upgrade_commands
from rhizome.config import ETCD_APIS

Handler = Callable[[Context, argparse.Namespace], int]

DESCRIPTION = "Operate a rhizome PostgreSQL cluster: status, spec, switchover, maintenance."
PATCH_HELP = (
    "FIELD.PATH=VALUE, e.g. timing.failover_delay=2 keepers.pg1.priority=5; VALUE is JSON "
    "when it parses as JSON, else a string; null resets a field to its default; quote keys "
    """with dots: 'pg_parameters."pg_stat_statements.max"=5000'"""
)
TIMEOUT_HELP = "seconds the sentinel may take before abandoning the command, also how long"
TIMEOUT_HELP += f" --wait waits (default {DEFAULT_COMMAND_TIMEOUT:.0f})"


def add_global_options(parser: argparse.ArgumentParser, *, in_command: bool) -> None:
    """--config, --endpoints, --cluster, --etcd-api: accepted before and after the command."""
    default = argparse.SUPPRESS if in_command else None
    group = parser.add_argument_group("where the cluster lives")
    config_help = f"TOML configuration (default: ${CONFIG_ENVIRONMENT}, else {DEFAULT_CONFIG_PATH})"
    group.add_argument("--config", metavar="FILE", default=default, help=config_help)
    group.add_argument(
        "--endpoints", metavar="URL,URL", default=default, help="etcd endpoints (override)"
    )
    group.add_argument("--cluster", metavar="NAME", default=default, help="cluster name (override)")
    group.add_argument(
        "--etcd-api", choices=ETCD_APIS, default=default, help="etcd's v3 or v2 API (override)"
    )


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


class CommandSet:
    """The subcommands of a parser; each also accepts the global options."""

    def __init__(self, parser: argparse.ArgumentParser, title: str) -> None:
        self.group = parser.add_subparsers(title=title, metavar="COMMAND")

    def add(self, name: str, help_text: str, handler: Handler | None) -> argparse.ArgumentParser:
        parser = self.group.add_parser(name, help=help_text, description=help_text)
        add_global_options(parser, in_command=True)
        parser.set_defaults(handler=handler, command_parser=parser)
        return parser

    def add_local(
        self, name: str, help_text: str, handler: LocalHandler
    ) -> argparse.ArgumentParser:
        """A subcommand that needs no store (its handler gets only the terminal), so it
        takes none of the options that say where the cluster lives."""
        parser = self.group.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=None, local_handler=handler, command_parser=parser)
        return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rhizomectl", description=DESCRIPTION)
    add_global_options(parser, in_command=False)
    parser.set_defaults(handler=None, command_parser=parser)
    commands = CommandSet(parser, "commands")
    add_report_commands(commands)
    add_spec_commands(commands)
    add_operation_commands(commands)
    add_keeper_commands(commands)
    add_backup_group(commands)
    upgrade_help = "may a major upgrade start? tables, extensions, disk, cluster health"
    add_upgrade_arguments(commands.add("upgrade-check", upgrade_help, run_upgrade_check))
    upgrade_help = (
        "blue/green major upgrade by logical replication: prepare, status, cutover, finish"
    )
    upgrade = CommandSet(commands.add("upgrade", upgrade_help, None), "upgrade commands")
    add_upgrade_commands(upgrade.add_local, positive_seconds)
    cutover_help = "hand the cluster over to the successor `prepare` fed (proxies follow it)"
    cutover = upgrade.add("cutover", cutover_help, run_cutover)
    cutover.add_argument("--successor", required=True, metavar="CLUSTER",
                         help="the new version's rhizome cluster (same store)")  # fmt: skip
    cutover.add_argument("--method", choices=["logical", "link"], default="logical",
                         help="logical: the successor was fed by `prepare`; link: stop the"
                         " master cleanly for `upgrade link` (default logical)")  # fmt: skip
    add_wait_options(cutover)
    link_help = "after a link cutover, on the old master's host: pg_upgrade --link its data"
    link = upgrade.add_local("link", link_help, run_link_command)
    link.add_argument(
        "--old-config",
        required=True,
        type=Path,
        metavar="FILE",
        help="the old keeper's configuration (data_dir, bin_dir, superuser)",
    )
    link.add_argument("--new-config", required=True, type=Path, metavar="FILE",
                      help="the successor's keeper configuration on this host")  # fmt: skip
    return parser


def add_backup_group(commands: CommandSet) -> None:
    backup_help = "pgBackRest: backups, archiving checks, restores and restore drills"
    backup = CommandSet(commands.add("backup", backup_help, None), "backup commands")

    def add(name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
        parser = backup.add(name, help_text, handler)
        add_pgbackrest_options(parser)
        return parser

    add_backup_commands(add)
    add_restore_command(add)
    add_drill_command(add)


def add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait for the outcome")
    parser.add_argument(
        "--timeout", type=positive_seconds, default=DEFAULT_COMMAND_TIMEOUT, metavar="S",
        help=TIMEOUT_HELP,
    )  # fmt: skip


def add_report_commands(commands: CommandSet) -> None:
    status = commands.add("status", "the cluster's master, operation and keepers", run_status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    history = commands.add("history", "role changes and finished commands", run_history)
    history.add_argument("--json", action="store_true", help="machine-readable output")
    history.add_argument("--limit", type=int, metavar="N", help="only the N newest events")


def add_spec_commands(commands: CommandSet) -> None:
    init = commands.add("init", "create the first spec (refused when one exists)", run_init)
    init.add_argument(
        "file", nargs="?", metavar="FILE", help="*.json or *.toml (default: defaults)"
    )
    spec = CommandSet(
        commands.add("spec", "show or change the cluster spec", None), "spec commands"
    )
    show = spec.add("show", "the stored spec as JSON, defaults included", run_spec_show)
    show.add_argument("--non-defaults", action="store_true", help="only fields set otherwise")
    apply = spec.add("apply", "replace the spec by a file's, showing the diff", run_spec_apply)
    apply.add_argument("file", metavar="FILE", help="*.json or *.toml, or - for JSON on stdin")
    apply.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")
    patch = spec.add("patch", "change some fields of the spec, showing the diff", run_spec_patch)
    patch.add_argument("assignments", nargs="*", metavar="FIELD.PATH=VALUE", help=PATCH_HELP)
    patch.add_argument("--merge", metavar="JSON", help="a JSON merge patch (RFC 7386), first")
    patch.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")


def add_operation_commands(commands: CommandSet) -> None:
    switchover = commands.add("switchover", "planned change of master", run_switchover)
    switchover.add_argument("--to", metavar="KEEPER", help="standby to promote (default: best)")
    failover = commands.add("failover", "forced promotion of a named standby", run_failover)
    failover.add_argument("--to", metavar="KEEPER", required=True, help="standby to promote")
    failover.add_argument(
        "--old-master-stopped",
        action="store_true",
        help="you assert that the old master's PostgreSQL is stopped (host powered off...): "
        "ends its pause hold, which otherwise forbids the failover while its keeper is gone",
    )
    for parser in (switchover, failover):
        add_wait_options(parser)
    commands.add("pause", "stop the sentinel's automatic changes (spec.paused)", run_pause)
    commands.add("resume", "end a pause", run_resume)
    add_store_move_command(commands)


def add_keeper_commands(commands: CommandSet) -> None:
    keeper = CommandSet(commands.add("keeper", "per-keeper operations", None), "keeper commands")
    maintenance = keeper.add("maintenance", "set or end a keeper's maintenance", run_maintenance)
    maintenance.add_argument("name", metavar="NAME", help="keeper name")
    maintenance.add_argument("mode", choices=["on", "off"], help="on or off")
    remove = keeper.add("remove", "remove a keeper from the cluster (never the master)", run_remove)
    remove.add_argument("name", metavar="NAME", help="keeper name")
    remove.add_argument("--undo", action="store_true", help="let a removed keeper join again")
