"""`rhizomectl backup run | info | check | stanza-create`: pgBackRest for the cluster.

Run on a database node (a systemd timer runs `backup run`), with that node's
pgBackRest configuration, which lists every node of the cluster as pg1..pgN:
pgBackRest finds the primary itself. Run as root, pgBackRest runs as the
PostgreSQL user (`--run-as`, default postgres), who owns the repository and
the data directories. `backup run` records its outcome, success or failure,
in the store's `backups/last` (rhizome.store.backups), which `rhizomectl
status` shows; it is the only writer of that key.
"""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Callable
from pathlib import Path

from rhizome.backup import pgbackrest
from rhizome.backup.records import (
    Attempt,
    backup_record,
    newest_backup,
    parse_info,
    streaming_standbys,
)
from rhizome.cli.context import Context
from rhizome.cli.errors import EXIT_FAILED, EXIT_OK, OperationRefused
from rhizome.spec.backup import BackupSettings
from rhizome.store.backups import BackupRecord

DEFAULT_PGBACKREST_CONFIG = Path("/etc/pgbackrest/pgbackrest.conf")
DEFAULT_OS_USER = "postgres"
BACKUP_TYPES = ("full", "diff", "incr")
CHECK_TIMEOUT = 120.0

Adder = Callable[[str, str, Callable[[Context, argparse.Namespace], int]], argparse.ArgumentParser]


def add_backup_commands(add: Adder) -> None:
    """The subcommands of `rhizomectl backup`, each with the pgBackRest options."""
    run = add("run", "take a backup (from a standby when one streams) and record it", run_backup)
    run.add_argument("--type", choices=BACKUP_TYPES, default="full", help="default full")
    run.add_argument("--timeout", type=float, metavar="S", help="give up after S seconds")
    info = add("info", "the repository's backups and WAL archive (pgbackrest info)", run_info)
    info.add_argument("--json", action="store_true", help="pgBackRest's JSON")
    add("check", "archiving works: a WAL segment reaches the repository", run_check)
    add("stanza-create", "create the stanza in the repository (once)", run_stanza_create)


def add_pgbackrest_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pgbackrest-config", type=Path, default=DEFAULT_PGBACKREST_CONFIG, metavar="FILE",
        help=f"this node's pgBackRest configuration (default {DEFAULT_PGBACKREST_CONFIG})",
    )  # fmt: skip
    parser.add_argument(
        "--pgpass-file", type=Path, metavar="FILE",
        help="libpq password file for pgBackRest's connections (PGPASSFILE; default: "
        "pgBackRest's user's ~/.pgpass)",
    )  # fmt: skip
    parser.add_argument(
        "--run-as", default=DEFAULT_OS_USER, metavar="USER",
        help=f"when run as root, run pgBackRest as USER (default {DEFAULT_OS_USER})",
    )  # fmt: skip


def backup_settings(context: Context) -> BackupSettings:
    """The spec's backup section; refused unless backups are enabled."""
    stored = context.store.read_spec()
    if stored is None:
        raise OperationRefused("the cluster has no spec yet; run `rhizomectl init` first")
    settings = stored.document.backup
    if not settings.enabled:
        raise OperationRefused(
            "backup.enabled is false in the spec: the keepers do not archive WAL, so no "
            "backup could be restored; run `rhizomectl spec patch backup.enabled=true` first"
        )
    return settings


def pgbackrest_options(context: Context, arguments: argparse.Namespace) -> list[str]:
    return pgbackrest.config_options(arguments.pgbackrest_config, stanza_of(context))


def stanza_of(context: Context) -> str:
    return backup_settings(context).stanza_for(context.cluster)


def run_backup(context: Context, arguments: argparse.Namespace) -> int:
    """Take the backup, then record its outcome in the store whatever it was."""
    stanza = stanza_of(context)
    options = pgbackrest.config_options(arguments.pgbackrest_config, stanza)
    standbys = streaming_standbys(context.store.read_view())
    extra = [f"--type={arguments.type}"] + (["--backup-standby"] if standbys else [])
    source = f"a standby ({', '.join(standbys)} streaming)" if standbys else "the master"
    context.say(f"backup {arguments.type} of stanza {stanza} from {source}")
    run_as, passfile = arguments.run_as, arguments.pgpass_file
    outcome = pgbackrest.run(
        [*options, *extra], "backup", run_as=run_as, timeout=arguments.timeout, passfile=passfile
    )
    made = None
    if outcome.ok:
        listed = pgbackrest.run([*options, "--output=json"], "info", run_as=run_as)
        made = newest_backup(parse_info(listed.output, stanza), outcome.started_at)
    attempt = Attempt(arguments.type, stanza, socket.gethostname(), bool(standbys))
    record = backup_record(attempt, outcome, made)
    context.store.record_last_backup(record)
    context.say(describe_record(record))
    return EXIT_OK if record.ok else EXIT_FAILED


def describe_record(record: BackupRecord) -> str:
    """One line: what was taken, from where, how long, how big; or why it failed."""
    source = "a standby" if record.from_standby else "the master"
    if not record.ok:
        return f"backup {record.type} FAILED after {record.duration:.1f} s: {record.error}"
    size = f", {record.size_bytes} bytes" if record.size_bytes is not None else ""
    return (
        f"backup {record.label} ({record.type}) taken from {source} in "
        f"{record.duration:.1f} s{size}"
    )


def run_info(context: Context, arguments: argparse.Namespace) -> int:
    options = pgbackrest_options(context, arguments)
    output = ["--output=json"] if arguments.json else []
    outcome = pgbackrest.run([*options, *output], "info", run_as=arguments.run_as)
    if not outcome.ok:
        context.warn(f"pgbackrest info failed: {outcome.error}")
        return EXIT_FAILED
    if arguments.json:
        context.say(json.dumps(json.loads(outcome.output), indent=2))
    else:
        context.say(outcome.output.rstrip())
    return EXIT_OK


def run_check(context: Context, arguments: argparse.Namespace) -> int:
    return _simple(context, arguments, "check", "archiving works: pgbackrest check passed")


def run_stanza_create(context: Context, arguments: argparse.Namespace) -> int:
    return _simple(context, arguments, "stanza-create", "the stanza is ready")


def _simple(context: Context, arguments: argparse.Namespace, command: str, done: str) -> int:
    options = pgbackrest_options(context, arguments)
    outcome = pgbackrest.run(
        options, command, run_as=arguments.run_as, timeout=CHECK_TIMEOUT,
        passfile=arguments.pgpass_file,
    )  # fmt: skip
    if not outcome.ok:
        context.warn(f"pgbackrest {command} failed after {outcome.seconds:.1f} s: {outcome.error}")
        return EXIT_FAILED
    context.say(f"{done} ({outcome.seconds:.1f} s)")
    return EXIT_OK
