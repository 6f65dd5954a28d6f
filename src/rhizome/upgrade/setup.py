"""Running the steps of `plan` on both masters, then waiting for the initial copy (adapter).

SQL steps run statement by statement in autocommit (CREATE SUBSCRIPTION with
a slot and CREATE DATABASE refuse a transaction block). The schema goes
through green's own `pg_dump` (a newer pg_dump reads an older server, never
the reverse) into green's `psql` in one transaction together with the
rhizome_upgrade objects, so that their presence marks a complete copy. The
tools get DSNs without passwords: libpq reads the invoking user's password
file, and no secret appears on a command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from psycopg2.extensions import make_dsn

from rhizome.upgrade.replication import SCHEMA, Step
from rhizome.upgrade.replication_catalog import read_target_database, session
from rhizome.upgrade.roles import SESSION_SETTINGS, redact, role_statements

TOOL_TIMEOUT = 3600.0
"""Seconds a schema dump or restore may take (large catalogs take minutes)."""
POLL_INTERVAL = 1.0


class SetupError(Exception):
    """A step failed: the message names the step and what the tool or server said."""


@dataclass(frozen=True)
class Endpoints:
    source_dsn: str
    target_dsn: str
    bindir: Path | None
    """The target version's programs; None: the ones on PATH."""

    def dsn(self, side: str, database: str | None) -> str:
        dsn = self.source_dsn if side == "source" else self.target_dsn
        return dsn if database is None else make_dsn(dsn, dbname=database)

    def tool(self, name: str) -> str:
        found = str(self.bindir / name) if self.bindir is not None else shutil.which(name)
        if found is None or not os.access(found, os.X_OK):
            where = self.bindir if self.bindir is not None else "PATH"
            raise SetupError(
                f"{name} not found in {where}: install the target version's client programs"
                " or name their directory with --target-bindir"
            )
        return found


def default_bindir(target_version: int) -> Path | None:
    """Debian's directory of the target version's programs when it exists, else PATH."""
    directory = Path(f"/usr/lib/postgresql/{target_version}/bin")
    return directory if directory.is_dir() else None


def run_step(step: Step, endpoints: Endpoints) -> None:
    if step.action == "roles":
        create_roles(step.roles, endpoints)
    elif step.action == "schema":
        copy_schema(step, endpoints)
    else:
        with session(endpoints.dsn(step.side, None), step.database) as cursor:
            for statement in step.statements:
                try:
                    cursor.execute(statement)
                except Exception as error:
                    raise SetupError(f"{step.description}: {str(error).strip()}") from error


def run_tool(command: list[str], what: str, given: str | None = None) -> str:
    """A client program's standard output; its error text (redacted) on failure."""
    try:
        result = subprocess.run(
            command, input=given, env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
            capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        program = Path(command[0]).name
        raise SetupError(f"{what}: {program} took over {TOOL_TIMEOUT:.0f} s") from error
    if result.returncode != 0:
        said = redact(result.stderr.strip()) or f"exit code {result.returncode}"
        raise SetupError(f"{what}: {Path(command[0]).name} failed: {said}")
    return result.stdout


def create_roles(roles: tuple[str, ...], endpoints: Endpoints) -> None:
    """The missing roles with their attributes, passwords and memberships: the dump never
    leaves this process's memory but through green's psql's standard input."""
    what = "create the roles missing on the target"
    dump = run_tool([endpoints.tool("pg_dumpall"), "--roles-only", "--no-password",
                     f"--dbname={endpoints.source_dsn}"], what)  # fmt: skip
    script = SESSION_SETTINGS + "\n".join(role_statements(dump, roles)) + "\n"
    psql(endpoints, endpoints.target_dsn, script, what)


def copy_schema(step: Step, endpoints: Endpoints) -> None:
    assert step.database is not None
    dump = run_tool([
        endpoints.tool("pg_dump"), "--schema-only", "--no-password", "--no-publications",
        "--no-subscriptions", f"--exclude-schema={SCHEMA}",
        f"--dbname={endpoints.dsn('source', step.database)}",
    ], step.description)  # fmt: skip
    script = dump + "\n" + "".join(f"{statement};\n" for statement in step.statements)
    psql(endpoints, endpoints.dsn("target", step.database), script, step.description)


def psql(endpoints: Endpoints, dsn: str, script: str, what: str) -> None:
    """Run a script in one transaction that stops at the first error (nothing half done)."""
    run_tool([endpoints.tool("psql"), "--no-psqlrc", "--quiet", "--no-password",
              "--set=ON_ERROR_STOP=1", "--single-transaction", "--output=/dev/null",
              f"--dbname={dsn}"], what, script)  # fmt: skip


def wait_until_ready(
    target_dsn: str, databases: list[str], timeout: float,
    report: Callable[[str], None], clock: Callable[[], float] = time.monotonic,
) -> dict[str, tuple[str, ...]]:  # fmt: skip
    """Wait until every table of every database's subscription is ready (state r); the
    tables still not ready per database at the deadline (empty: all ready)."""
    deadline = clock() + timeout
    shown = ""
    while True:
        waiting = {name: read_target_database(target_dsn, name).tables_not_ready
                   for name in databases}  # fmt: skip
        waiting = {name: tables for name, tables in waiting.items() if tables}
        progress = ", ".join(f"{name}: {len(tables)} tables" for name, tables in waiting.items())
        if progress and progress != shown:
            report(f"initial copy under way, not yet ready: {progress}")
            shown = progress
        if not waiting or clock() >= deadline:
            return waiting
        time.sleep(POLL_INTERVAL)
