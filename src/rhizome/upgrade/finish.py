"""Ending a blue/green upgrade after the cutover: green becomes a plain cluster (adapter).

Green's subscriptions are dropped without touching their slots (`slot_name =
NONE`): blue is sealed or gone, and a DROP SUBSCRIPTION that tried to reach it
would fail or hang. Blue's slots then retain WAL until they are dropped with
the old cluster, or here when blue is still reachable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.errors

from rhizome.upgrade.replication import PUBLICATION, SCHEMA, identifier
from rhizome.upgrade.replication_catalog import rows, session

SUBSCRIPTIONS = r"""
SELECT s.subname, d.datname FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid
WHERE s.subname LIKE 'rhizome\_upgrade\_%' ORDER BY 2, 1"""
DATABASES = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
HAS_SCHEMA = "SELECT to_regnamespace('rhizome_upgrade') IS NOT NULL"
HAS_PUBLICATION = "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'rhizome_upgrade')"
SLOTS = r"""
SELECT slot_name, active FROM pg_replication_slots
WHERE slot_type = 'logical' AND slot_name LIKE 'rhizome\_upgrade\_%' ORDER BY 1"""
SLOT_WAIT = 15.0
WRITABLE = "SET default_transaction_read_only = off"
"""Seconds a slot may stay active after its subscription is gone (the walsender ends)."""


def finish_target(target_dsn: str, report: Callable[[str], None]) -> int:
    """Drop green's upgrade subscriptions and rhizome_upgrade objects; how many changes."""
    changes = 0
    with session(target_dsn) as cursor:
        found = rows(cursor, SUBSCRIPTIONS)
        databases = [row[0] for row in rows(cursor, DATABASES)]
    for subscription, database in found:
        with session(target_dsn, database) as cursor:
            name = identifier(subscription)
            cursor.execute(f"ALTER SUBSCRIPTION {name} DISABLE")
            cursor.execute(f"ALTER SUBSCRIPTION {name} SET (slot_name = NONE)")
            cursor.execute(f"DROP SUBSCRIPTION {name}")
        report(f"dropped subscription {subscription} in {database} on the target")
        changes += 1
    for database in databases:
        with session(target_dsn, database) as cursor:
            if rows(cursor, HAS_SCHEMA)[0][0]:
                cursor.execute(
                    f"DROP TRIGGER IF EXISTS apply_sequence_value ON {SCHEMA}.sequence_values"
                )
                cursor.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
                report(f"dropped schema {SCHEMA} in {database} on the target")
                changes += 1
    return changes


def finish_source(source_dsn: str, report: Callable[[str], None]) -> int:
    """Drop blue's publications and upgrade slots; how many changes. Raises psycopg2.Error
    when blue cannot be reached."""
    changes = 0
    with session(source_dsn) as cursor:
        databases = [row[0] for row in rows(cursor, DATABASES)]
    for database in databases:
        with session(source_dsn, database) as cursor:
            cursor.execute(WRITABLE)  # a sealed blue is read-only by default (keeper/seal.py)
            if rows(cursor, HAS_PUBLICATION)[0][0]:
                cursor.execute(f"DROP PUBLICATION {PUBLICATION}")
                report(f"dropped publication {PUBLICATION} in {database} on the source")
                changes += 1
    with session(source_dsn) as cursor:
        for slot in slot_names(cursor):
            drop_slot(cursor, slot)
            report(f"dropped slot {slot} on the source")
            changes += 1
    return changes


def slot_names(cursor: Any) -> list[str]:
    return [row[0] for row in rows(cursor, SLOTS)]


def drop_slot(cursor: Any, slot: str) -> None:
    """Drop a slot once its walsender has noticed that the subscription is gone."""
    deadline = time.monotonic() + SLOT_WAIT
    while True:
        try:
            rows(cursor, "SELECT pg_drop_replication_slot(%s)", (slot,))
            return
        except psycopg2.errors.ObjectInUse:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
