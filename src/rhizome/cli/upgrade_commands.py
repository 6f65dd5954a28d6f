"""rhizomectl upgrade-check: may a major upgrade start? (rhizome.upgrade)

Exit 0 when nothing stands in the way, 1 with every problem (object,
problem, fix), 2 on a bad command line, 3 when the store cannot be read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import psycopg2

from rhizome.cli.context import Context
from rhizome.cli.errors import EXIT_FAILED, EXIT_OK, OperationFailed, UsageError
from rhizome.upgrade.catalog import gather
from rhizome.upgrade.facts import METHODS
from rhizome.upgrade.prechecks import problems

DSN_HELP = (
    'libpq connection string of the master, e.g. "host=10.0.1.11 user=postgres dbname=postgres";'
    " the password comes from ~/.pgpass or PGPASSFILE, never from the command line"
)


def add_upgrade_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", type=int, required=True, metavar="VERSION",
                        help="the target major version, e.g. 17")  # fmt: skip
    parser.add_argument("--dsn", required=True, help=DSN_HELP)
    parser.add_argument("--method", choices=METHODS, default="logical",
                        help="logical: blue/green by logical replication (default);"
                        " link: pg_upgrade --link in place")  # fmt: skip
    parser.add_argument("--extension-dir", type=Path, metavar="DIR",
                        help="the target's extensions (default /usr/share/postgresql/VERSION/"
                        "extension)")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, metavar="DIR", default=Path("/var/lib/postgresql"),
                        help="where the new data directory goes: its free space is checked"
                        " (default /var/lib/postgresql)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run_upgrade_check(context: Context, arguments: argparse.Namespace) -> int:
    if "password" in arguments.dsn:
        raise UsageError(
            "--dsn must not carry a password (the process list shows command lines): put it"
            " in ~/.pgpass or a file named by PGPASSFILE"
        )
    directory = arguments.extension_dir or Path(f"/usr/share/postgresql/{arguments.to}/extension")
    view = context.store.read_view()
    try:
        facts = gather(arguments.dsn, arguments.to, arguments.method, view, directory,
                       arguments.data_dir)  # fmt: skip
    except psycopg2.Error as error:
        raise OperationFailed(
            f"cannot read the master's catalogs with --dsn: {str(error).strip()}"
        ) from error
    found = problems(facts)
    if arguments.json:
        listed = [vars(problem) for problem in found]
        context.say(json.dumps({"ready": not found, "problems": listed}, indent=2))
    elif found:
        context.say(f"not ready for the {arguments.method} upgrade to PostgreSQL {arguments.to}:")
        for problem in found:
            context.say(f"- {problem}")
    else:
        sizes = sum(database.size_bytes for database in facts.databases) / 1024**2
        context.say(
            f"ready: PostgreSQL {facts.source_version} → {arguments.to} ({arguments.method}),"
            f" {len(facts.databases)} databases, {sizes:.0f} MiB"
        )
    return EXIT_FAILED if found else EXIT_OK
