"""A restore drill: the latest backup restored into a scratch instance, checked, removed.

Proves that the repository restores, how long it takes and how old the data
it gives back is, without touching the cluster: the scratch copy lives in its
own directory on this node, archives nothing (`--archive-mode=off`: its new
timeline never reaches the repository), listens on no network address and
lets in only local connections through a socket directory only its owner can
open. The check counts the rows of every user table of every database (each
table is read through), or runs the operator's query.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2

from rhizome.backup import pgbackrest
from rhizome.backup.instance import InstanceFailed, LocalInstance, give_to_owner, recover_alone
from rhizome.backup.restore_plan import Backup
from rhizome.keeper.database import autocommit_cursor

DRILL_HBA = "local all all trust\n"
"""Only the scratch socket's owner (directory mode 0700) can reach it."""
USER_TABLES = "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1"
DATABASES = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"


class DrillFailed(RuntimeError):
    """The drill could not restore, recover or read the copy; the message says why."""


@dataclass
class DrillReport:
    backup: str
    restore_seconds: float = 0.0
    recovery_seconds: float = 0.0
    data_as_of: float | None = None
    """Commit time of the last transaction replayed (None: none after the backup)."""
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    """Rows of each user table, by database."""
    query_rows: list[tuple[Any, ...]] | None = None

    def describe(self, now: float) -> str:
        tables = sum(len(counts) for counts in self.rows.values())
        total = sum(sum(counts.values()) for counts in self.rows.values())
        age = "no transaction replayed after the backup" if self.data_as_of is None else (
            f"data {now - self.data_as_of:.0f} s old (last commit replayed)")  # fmt: skip
        lines = [
            f"restore drill of backup {self.backup}: restored in {self.restore_seconds:.1f} s,"
            f" recovered in {self.recovery_seconds:.1f} s; {age}",
            f"{tables} user tables, {total} rows in {len(self.rows)} databases",
        ]
        lines += [f"  {database}: {sum(counts.values())} rows in {len(counts)} tables"
                  for database, counts in self.rows.items()]  # fmt: skip
        if self.query_rows is not None:
            lines.append(f"query: {self.query_rows}")
        return "\n".join(lines)


def scratch_options(socket_dir: Path, port: int) -> str:
    """The scratch instance's settings over whatever the backup's files say."""
    return (
        f"-c port={port} -c unix_socket_directories='{socket_dir}' -c archive_mode=off"
        " -c synchronous_standby_names='' -c ssl=off -c cluster_name=rhizome-drill"
    )


@dataclass(frozen=True)
class Scratch:
    directory: Path
    owner_reference: Path
    """A directory owned by the user the instance runs as (the keeper's state directory)."""
    port: int
    user: str
    """The database superuser (the keeper's)."""

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"


def prepare(scratch: Scratch) -> None:
    if scratch.directory.exists() and any(scratch.directory.iterdir()):
        raise DrillFailed(
            f"{scratch.directory} is not empty: remove it (a previous drill's --keep?) or "
            "choose another --scratch-dir"
        )
    scratch.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    give_to_owner(scratch.directory, scratch.owner_reference)


def run_drill(
    options: list[str], backup: Backup, scratch: Scratch, instance: LocalInstance,
    timeout: float, query: str | None,
) -> DrillReport:  # fmt: skip
    """Restore, recover, check; the caller removes the scratch directory."""
    report = DrillReport(backup.label)
    restore = [f"--pg1-path={scratch.data_dir}", f"--set={backup.label}", "--type=default",
               "--archive-mode=off"]  # fmt: skip
    outcome = pgbackrest.run([*options, *restore], "restore", run_as=instance.run_as,
                             timeout=timeout)  # fmt: skip
    if not outcome.ok:
        raise DrillFailed(f"pgbackrest restore of {backup.label} failed: {outcome.error}")
    report.restore_seconds = outcome.seconds
    (scratch.data_dir / "pg_hba.conf").write_text(DRILL_HBA)
    started = time.monotonic()
    try:
        recover_alone(instance, scratch_options(scratch.directory, scratch.port), timeout)
    except InstanceFailed as error:
        raise DrillFailed(str(error)) from None
    report.recovery_seconds = time.monotonic() - started
    check(report, scratch, query)
    return report


def check(report: DrillReport, scratch: Scratch, query: str | None) -> None:
    """Read the copy: the last replayed commit, every table's rows, the operator's query."""
    with session(scratch, "postgres") as cursor:
        cursor.execute("SELECT extract(epoch FROM pg_last_xact_replay_timestamp())")
        (as_of,) = cursor.fetchone()
        report.data_as_of = float(as_of) if as_of is not None else None
        cursor.execute(DATABASES)
        databases = [row[0] for row in cursor.fetchall()]
        if query is not None:
            cursor.execute(query)
            report.query_rows = cursor.fetchall() if cursor.description else []
    for database in databases:
        with session(scratch, database) as cursor:
            cursor.execute(USER_TABLES)
            tables = [row[0] for row in cursor.fetchall()]
            counts = {}
            for table in tables:
                cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - quoted by format()
                counts[table] = int(cursor.fetchone()[0])
        report.rows[database] = counts


@contextmanager
def session(scratch: Scratch, database: str) -> Iterator[Any]:
    """An autocommit cursor on the scratch instance, over its socket."""
    try:
        connection = psycopg2.connect(
            host=str(scratch.directory), port=scratch.port, user=scratch.user, dbname=database,
            connect_timeout=10,
        )  # fmt: skip
    except psycopg2.Error as error:
        raise DrillFailed(f"cannot read the scratch copy: {error}") from None
    with autocommit_cursor(connection) as cursor:
        yield cursor


def remove(scratch: Scratch, instance: LocalInstance) -> None:
    """Stop the scratch instance (immediately: it is thrown away) and delete its files."""
    if scratch.data_dir.exists() and instance.running():
        instance.run([instance.program("pg_ctl"), "stop", "-D", str(scratch.data_dir), "-m",
                      "immediate", "-w"], 60)  # fmt: skip
    shutil.rmtree(scratch.directory, ignore_errors=True)
