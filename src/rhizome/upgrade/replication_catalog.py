"""Reading the facts of a blue/green preparation from both masters' catalogs (adapter).

One short superuser session per database and side; the DSNs carry no
password (libpq reads the password file). Everything is read before
anything is changed, so that `problems` can refuse with nothing done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import psycopg2
from psycopg2.extensions import make_dsn

from rhizome.keeper.database import autocommit_cursor
from rhizome.upgrade.replication import (
    ReplicationFacts,
    Slot,
    SourceDatabase,
    TargetDatabase,
    subscription_name,
)

CONNECT_TIMEOUT = 10
SERVER = """
SELECT current_setting('server_version_num')::int / 10000, current_setting('wal_level'),
       pg_is_in_recovery(),
       current_setting('max_replication_slots')::int
       - (SELECT count(*) FROM pg_replication_slots)"""
SOURCE_DATABASES = """
SELECT datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype
FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"""
SLOTS = r"""
SELECT slot_name, active, confirmed_flush_lsn - '0/0'::pg_lsn,
       CASE WHEN NOT pg_is_in_recovery() THEN pg_current_wal_lsn() - confirmed_flush_lsn END
FROM pg_replication_slots
WHERE slot_type = 'logical' AND slot_name LIKE 'rhizome\_upgrade\_%'"""
ROLES = "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1"
PUBLISHED = """
SELECT to_regclass('rhizome_upgrade.sequence_values') IS NOT NULL,
       (SELECT puballtables FROM pg_publication WHERE pubname = 'rhizome_upgrade')"""
USER_TABLES = """
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rhizome_upgrade')
  AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1"""
SUBSCRIPTION = """
SELECT s.subenabled, EXISTS (SELECT 1 FROM pg_stat_subscription w
                             WHERE w.subid = s.oid AND w.relid IS NULL AND w.pid IS NOT NULL)
FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
WHERE d.datname = current_database() AND s.subname = %s"""
NOT_READY = """
SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_subscription_rel r
JOIN pg_subscription s ON s.oid = r.srsubid JOIN pg_class c ON c.oid = r.srrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE s.subname = %s
  AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND r.srsubstate <> 'r' ORDER BY 1"""
SEQUENCE_ROWS = "SELECT count(*) FROM rhizome_upgrade.sequence_values"
ANY_ROWS = r"""
SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'rhizome_upgrade')
    AND n.nspname NOT LIKE 'pg\_%'
    AND (xpath('/row/found/text()', query_to_xml(format(
         'SELECT EXISTS (SELECT 1 FROM %I.%I) AS found', n.nspname, c.relname),
         false, true, '')))[1]::text::boolean)"""
"""Whether any user table has a row: one probe per table, no count of whole tables."""


@contextlib.contextmanager
def session(dsn: str, database: str | None = None) -> Iterator[Any]:
    """An autocommit cursor on `database` (None: the DSN's own), closed with its connection."""
    parameters = {"connect_timeout": CONNECT_TIMEOUT, "application_name": "rhizomectl-upgrade"}
    if database is not None:
        parameters["dbname"] = database
    connection = psycopg2.connect(make_dsn(dsn, **parameters))
    with autocommit_cursor(connection) as cursor:
        yield cursor


def rows(cursor: Any, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cursor.execute(sql, parameters or None)
    return list(cursor.fetchall())


def read_source(dsn: str) -> dict[str, Any]:
    """The source's server facts, databases, upgrade slots, roles and address."""
    with session(dsn) as cursor:
        version, wal_level, in_recovery, free_slots = rows(cursor, SERVER)[0]
        databases = rows(cursor, SOURCE_DATABASES)
        slots = {name: Slot(name, active, as_int(confirmed), as_int(lag))
                 for name, active, confirmed, lag in rows(cursor, SLOTS)}  # fmt: skip
        roles = {row[0] for row in rows(cursor, ROLES)}
        address = cursor.connection.get_dsn_parameters()
    found = []
    for name, owner, encoding, collate, ctype in databases:
        with session(dsn, name) as cursor:
            has_table, all_tables = rows(cursor, PUBLISHED)[0]
        found.append(SourceDatabase(
            name, owner, encoding, collate, ctype, has_sequence_table=has_table,
            has_publication=all_tables is not None, publication_all_tables=bool(all_tables),
        ))  # fmt: skip
    return {
        "version": version, "wal_level": wal_level, "in_recovery": in_recovery,
        "free_slots": free_slots, "databases": tuple(found), "slots": slots, "roles": roles,
        "address": (address.get("host") or "localhost", int(address.get("port") or 5432),
                    address.get("user") or "postgres"),
    }  # fmt: skip


def read_target_database(dsn: str, name: str) -> TargetDatabase:
    """What an earlier prepare left in one of the target's databases."""
    subscription = subscription_name(name)
    with session(dsn, name) as cursor:
        tables = tuple(row[0] for row in rows(cursor, USER_TABLES))
        marked = rows(cursor, PUBLISHED)[0][0]
        found = rows(cursor, SUBSCRIPTION, (subscription,))
        not_ready = tuple(row[0] for row in rows(cursor, NOT_READY, (subscription,)))
        sequence_rows = int(rows(cursor, SEQUENCE_ROWS)[0][0]) if marked else 0
        copied = bool(rows(cursor, ANY_ROWS)[0][0]) if marked and not found else False
    enabled, running = found[0] if found else (None, False)
    return TargetDatabase(
        name, has_sequence_table=marked, user_tables=tables, subscription_enabled=enabled,
        worker_running=running, tables_not_ready=not_ready, sequence_rows=sequence_rows,
        copied_rows=copied,
    )  # fmt: skip


def read_facts(source_dsn: str, target_dsn: str) -> ReplicationFacts:
    source = read_source(source_dsn)
    with session(target_dsn) as cursor:
        version, _, in_recovery, _ = rows(cursor, SERVER)[0]
        existing = {row[0] for row in rows(cursor, "SELECT datname FROM pg_database")}
        roles = {row[0] for row in rows(cursor, ROLES)}
    targets = {
        database.name: read_target_database(target_dsn, database.name)
        for database in source["databases"]
        if database.name in existing
    }
    return ReplicationFacts(
        source_version=source["version"], target_version=version,
        wal_level=source["wal_level"], source_in_recovery=source["in_recovery"],
        target_in_recovery=in_recovery, free_slots=source["free_slots"],
        source_databases=source["databases"], target_databases=targets, slots=source["slots"],
        missing_roles=tuple(sorted(source["roles"] - roles)), source_address=source["address"],
    )  # fmt: skip


def as_int(value: Any) -> int | None:
    return None if value is None else int(value)
