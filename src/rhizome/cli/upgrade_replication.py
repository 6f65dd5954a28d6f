"""rhizomectl upgrade prepare / status / finish: the data plane of a blue/green major upgrade.

These commands talk to the two masters only, never to the store, so they
need no rhizome configuration. Exit codes: 0 done (status: every database
ready), 1 refused, failed or not ready, 2 a bad command line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2.extensions import parse_dsn

from rhizome.cli.context import Terminal
from rhizome.cli.errors import EXIT_FAILED, EXIT_OK, OperationFailed, UsageError
from rhizome.upgrade.finish import finish_source, finish_target
from rhizome.upgrade.replication import ReplicationFacts, plan, problems
from rhizome.upgrade.replication_catalog import read_facts
from rhizome.upgrade.setup import Endpoints, SetupError, default_bindir, run_step, wait_until_ready
from rhizome.upgrade.status import describe, statuses

LocalHandler = Callable[[Terminal, argparse.Namespace], int]
DEFAULT_TIMEOUT = 3600.0
DSN_HELP = (
    "libpq connection string of the {} master as a superuser, without a password (libpq reads"
    ' ~/.pgpass or PGPASSFILE), e.g. "host=10.0.1.11 user=postgres dbname=postgres"'
)


def add_upgrade_commands(add: Callable[[str, str, LocalHandler], argparse.ArgumentParser],
                         seconds: Callable[[str], float]) -> None:  # fmt: skip
    """prepare, status and finish under `rhizomectl upgrade`."""
    prepare = add("prepare", "set up logical replication from the old master to the new one"
                  " and wait for the initial copy", run_prepare)  # fmt: skip
    add_dsns(prepare, target_only=False)
    prepare.add_argument("--target-bindir", type=Path, metavar="DIR",
                         help="the target version's pg_dump, pg_dumpall and psql (default"
                         " /usr/lib/postgresql/VERSION/bin when it exists, else PATH)")  # fmt: skip
    prepare.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT, metavar="S",
                         help="seconds to wait for the initial copy (default"
                         f" {DEFAULT_TIMEOUT:.0f}); it goes on after a timeout")  # fmt: skip
    status = add("status", "per database: subscription, tables not ready, lag", run_status)
    add_dsns(status, target_only=False)
    finish = add("finish", "after the cutover: drop the new cluster's subscriptions and"
                 " upgrade objects", run_finish)  # fmt: skip
    add_dsns(finish, target_only=True)


def add_dsns(parser: argparse.ArgumentParser, *, target_only: bool) -> None:
    source_help = DSN_HELP.format("old (source)")
    if target_only:
        source_help += "; when given and reachable, its publications and slots are dropped too"
    parser.add_argument("--source-dsn", required=not target_only, help=source_help)
    parser.add_argument("--target-dsn", required=True, help=DSN_HELP.format("new (target)"))
    if not target_only:
        parser.add_argument("--json", action="store_true", help="machine-readable output")


def checked_dsn(dsn: str, option: str) -> str:
    """Refuse a password on the command line (the process list shows it) before anything
    is done; the DSN itself is not repeated, in case it holds one."""
    try:
        parsed = parse_dsn(dsn)
    except psycopg2.ProgrammingError as error:
        raise UsageError(f"{option} is not a valid libpq connection string") from error
    if "password" in parsed:
        raise UsageError(
            f"{option} must not carry a password (the process list shows command lines): put"
            " it in ~/.pgpass or a file named by PGPASSFILE; nothing was changed"
        )
    return dsn


def facts_of(arguments: argparse.Namespace) -> ReplicationFacts:
    source = checked_dsn(arguments.source_dsn, "--source-dsn")
    target = checked_dsn(arguments.target_dsn, "--target-dsn")
    try:
        return read_facts(source, target)
    except psycopg2.Error as error:
        raise OperationFailed(
            f"cannot read the catalogs of both masters: {str(error).strip()}"
        ) from error


def run_prepare(terminal: Terminal, arguments: argparse.Namespace) -> int:
    facts = facts_of(arguments)
    found = problems(facts)
    if found:
        if arguments.json:
            listed = [vars(problem) for problem in found]
            terminal.say(json.dumps({"ready": False, "problems": listed}, indent=2))
        else:
            terminal.say("refused, nothing was changed:")
            for problem in found:
                terminal.say(f"- {problem}")
        return EXIT_FAILED
    progress = terminal.warn if arguments.json else terminal.say
    changed = apply_plan(facts, arguments, progress)
    databases = [database.name for database in facts.source_databases]
    waiting = wait_until_ready(arguments.target_dsn, databases, arguments.timeout, progress)
    if waiting:
        named = "; ".join(f"{name}: {', '.join(tables)}" for name, tables in waiting.items())
        raise OperationFailed(
            f"the initial copy is not done after {arguments.timeout:.0f} s ({named}); it goes"
            " on: follow it with rhizomectl upgrade status, and see the target's server log"
            " when it does not move"
        )
    if arguments.json:
        terminal.say(json.dumps({"ready": True, "changed": changed, "databases": databases},
                                indent=2))  # fmt: skip
    elif not changed:
        terminal.say(f"nothing to change: {databases_named(databases)} subscribed and ready")
    else:
        terminal.say(f"prepared: {databases_named(databases)} subscribed and ready")
    return EXIT_OK


def databases_named(databases: list[str]) -> str:
    listed = ", ".join(databases)
    return f"database {listed}" if len(databases) == 1 else f"databases {listed}"


def apply_plan(
    facts: ReplicationFacts, arguments: argparse.Namespace, progress: Callable[[str], None]
) -> list[str]:
    """Run the missing steps; their descriptions. A failure names the step; what ran
    before it stays and a new prepare continues from there."""
    bindir = arguments.target_bindir or default_bindir(facts.target_version)
    endpoints = Endpoints(arguments.source_dsn, arguments.target_dsn, bindir)
    done = []
    for step in plan(facts):
        try:
            run_step(step, endpoints)
        except SetupError as error:
            raise OperationFailed(
                f"{error}; fix it and run rhizomectl upgrade prepare again (it continues"
                " where this run stopped)"
            ) from error
        progress(f"done: {step.description}")
        done.append(step.description)
    return done


def run_status(terminal: Terminal, arguments: argparse.Namespace) -> int:
    found = statuses(facts_of(arguments))
    ready = all(status.ready for status in found)
    if arguments.json:
        report: dict[str, Any] = {"ready": ready,
                                  "databases": [status.as_json() for status in found]}  # fmt: skip
        terminal.say(json.dumps(report, indent=2))
    else:
        for status in found:
            terminal.say(describe(status))
        terminal.say("ready for the cutover" if ready else "not ready")
    return EXIT_OK if ready else EXIT_FAILED


def run_finish(terminal: Terminal, arguments: argparse.Namespace) -> int:
    target = checked_dsn(arguments.target_dsn, "--target-dsn")
    source = arguments.source_dsn and checked_dsn(arguments.source_dsn, "--source-dsn")
    try:
        changes = finish_target(target, terminal.say)
    except psycopg2.Error as error:
        raise OperationFailed(f"on the target: {str(error).strip()}") from error
    dropped_on_source = False
    if source:
        try:
            changes += finish_source(source, terminal.say)
            dropped_on_source = True
        except psycopg2.OperationalError as error:
            terminal.warn(f"the source is not reachable ({str(error).strip()})")
        except psycopg2.Error as error:
            raise OperationFailed(f"on the source: {str(error).strip()}") from error
    if not dropped_on_source:
        terminal.say(
            "the source's slots rhizome_upgrade_* retain WAL until they are dropped with the"
            " old cluster (or run finish again with a reachable --source-dsn)"
        )
    if not changes:
        terminal.say("nothing to change: no upgrade subscription or schema left")
    return EXIT_OK
