"""Gathering the pre-checks' facts: the master's catalogs, this host's files and disk, the store.

The catalogs are read over one connection per database (`dsn` names the
master; a password comes from libpq's environment or ~/.pgpass, never from
the command line). Extensions of the target version are the `.control`
files of its extension directory (Debian: /usr/share/postgresql/N/extension).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2.extensions import make_dsn

from rhizome.store.view import ClusterView
from rhizome.upgrade.facts import ClusterHealth, DatabaseFacts, Method, UpgradeFacts

USER_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname), c.relpersistence = 'u',
       c.relkind = 'r' AND c.relpersistence = 'p'
       AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (
            SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
  AND c.relkind IN ('r', 'p')
ORDER BY 1"""
"""Every table of the users' schemas (not an extension's): its name, whether it is
unlogged, and whether logical replication cannot carry its UPDATEs and DELETEs
(no primary key under the default replica identity, or replica identity NOTHING)."""
LARGE_OBJECTS = "SELECT count(*) FROM pg_largeobject_metadata"
EXTENSIONS = "SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1"
SIZE = "SELECT pg_database_size(current_database())"
DATABASES = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
CONNECT_TIMEOUT = 10


def database_facts(cursor: Any, name: str) -> DatabaseFacts:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        cursor.execute(sql)
        return list(cursor.fetchall())

    tables = rows(USER_TABLES)
    return DatabaseFacts(
        name=name, size_bytes=int(rows(SIZE)[0][0]),
        tables_without_identity=tuple(table for table, _, keyless in tables if keyless),
        unlogged_tables=tuple(table for table, unlogged, _ in tables if unlogged),
        large_objects=int(rows(LARGE_OBJECTS)[0][0]),
        extensions=tuple((extension, version) for extension, version in rows(EXTENSIONS)),
    )  # fmt: skip


def read_databases(dsn: str) -> tuple[int, tuple[DatabaseFacts, ...]]:
    """The master's major version and the facts of each database that accepts connections."""
    found = []
    with connect(dsn) as cursor:
        cursor.execute("SHOW server_version_num")
        version = int(cursor.fetchone()[0]) // 10000
        cursor.execute(DATABASES)
        names = [row[0] for row in cursor.fetchall()]
    for name in names:
        with connect(make_dsn(dsn, dbname=name)) as cursor:
            found.append(database_facts(cursor, name))
    return version, tuple(found)


@contextlib.contextmanager
def connect(dsn: str) -> Iterator[Any]:
    """A cursor of a read-only autocommit session, closed with its connection."""
    connection = psycopg2.connect(make_dsn(dsn, connect_timeout=CONNECT_TIMEOUT))
    try:
        connection.set_session(readonly=True, autocommit=True)
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def available_extensions(directory: Path) -> frozenset[str] | None:
    """Extensions with a control file in `directory`; None when it does not exist."""
    if not directory.is_dir():
        return None
    return frozenset(path.stem for path in directory.glob("*.control"))


def free_bytes(path: Path) -> int | None:
    """Free space of the file system holding `path` (its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


def cluster_health(view: ClusterView) -> ClusterHealth:
    spec = view.spec.document if view.spec is not None else None
    state = view.state.document if view.state is not None else None
    if state is None:
        return ClusterHealth(paused=bool(spec and spec.paused))
    unhealthy = tuple(
        name
        for name, assignment in sorted(state.assignments.items())
        if assignment.role != "removed"
        and (name not in view.keepers or not view.keepers[name].document.healthy)
    )
    return ClusterHealth(
        paused=bool(spec and spec.paused), master=state.master,
        operation=state.operation.kind if state.operation is not None else None,
        unhealthy_keepers=unhealthy,
    )  # fmt: skip


def gather(dsn: str, target: int, method: Method, view: ClusterView,
           extension_dir: Path, data_parent: Path) -> UpgradeFacts:  # fmt: skip
    version, databases = read_databases(dsn)
    return UpgradeFacts(
        source_version=version, target_version=target, method=method, databases=databases,
        health=cluster_health(view), target_extensions=available_extensions(extension_dir),
        free_bytes=free_bytes(data_parent),
    )  # fmt: skip
