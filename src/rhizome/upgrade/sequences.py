"""What the keeper does for a blue/green cutover on its sealed master (design "Cutover").

Logical replication does not carry sequences. Once no client can commit on
blue, the keeper records every sequence's last value in each database that
is published for the upgrade (`record_sequences`, on a connection to that
database, for each of `upgrade_databases`); the rows travel to green like
any other, where a trigger calls setval. It then reports `confirmed_lsn`:
when green has confirmed everything up to the seal, it has those values too.

Each function takes a psycopg2 connection or a cursor (the keeper's sessions
yield cursors); none of them closes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rhizome.upgrade.replication import PUBLICATION

PUBLISHED = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = %s)"
RECORD = """
INSERT INTO rhizome_upgrade.sequence_values (database, schema_name, sequence_name, last_value)
SELECT current_database(), schemaname, sequencename, last_value
FROM pg_catalog.pg_sequences
WHERE last_value IS NOT NULL AND schemaname <> 'rhizome_upgrade'
ON CONFLICT (schema_name, sequence_name) DO UPDATE
SET last_value = EXCLUDED.last_value, database = EXCLUDED.database, recorded_at = now()"""
"""pg_sequences.last_value counts the values sessions have cached too, so it is at
least every value handed out; NULL means the sequence was never used."""
DATABASES = (
    "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"
)
CONFIRMED = (
    "SELECT count(*) = count(confirmed_flush_lsn), min(confirmed_flush_lsn - '0/0'::pg_lsn)"
    " FROM pg_catalog.pg_replication_slots"
    r" WHERE slot_type = 'logical' AND slot_name LIKE 'rhizome\_upgrade\_%'"
)


@contextlib.contextmanager
def cursor_of(session: Any) -> Iterator[Any]:
    """A cursor of a connection (closed after use), or the cursor given."""
    if not callable(getattr(session, "cursor", None)):
        yield session
        return
    with session.cursor() as cursor:
        yield cursor


def record_sequences(session: Any) -> int:
    """Upsert the last value of every sequence of the connected database into
    rhizome_upgrade.sequence_values; the number recorded. 0 without writing when the
    database is not published for an upgrade (no publication rhizome_upgrade)."""
    with cursor_of(session) as cursor:
        cursor.execute(PUBLISHED, (PUBLICATION,))
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(RECORD)
        recorded = int(cursor.rowcount)
        if not cursor.connection.autocommit:
            cursor.connection.commit()
    return recorded


def upgrade_databases(session: Any) -> list[str]:
    """The databases `record_sequences` must run in: every connectable non-template one
    (it returns 0 in those without the publication)."""
    with cursor_of(session) as cursor:
        cursor.execute(DATABASES)
        return [str(row[0]) for row in cursor.fetchall()]


def confirmed_lsn(session: Any) -> int | None:
    """The least confirmed_flush_lsn of the rhizome_upgrade_% logical slots as an integer
    WAL position (the slots are cluster-wide: any database will do); None without any,
    and while one of them has confirmed nothing yet."""
    with cursor_of(session) as cursor:
        cursor.execute(CONFIRMED)
        every_slot_confirmed, least = cursor.fetchone()
    return int(least) if every_slot_confirmed and least is not None else None
