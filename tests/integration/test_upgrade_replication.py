"""`rhizomectl upgrade prepare / status / finish` and the keeper's sequence functions on two
real PostgreSQL 15 instances (blue: the source, with wal_level = logical; green: the target).

Both run with trust authentication on 127.0.0.1, so green's subscriptions connect
to blue without a password file; both are 15 here, the code takes the target's
pg_dump either way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import psycopg2
import pytest

from rhizome.upgrade.sequences import confirmed_lsn, record_sequences, upgrade_databases
from tests.harness.postgres import PostgresFactory, PostgresInstance

pytestmark = pytest.mark.integration

LOGICAL = {"wal_level": "logical", "max_replication_slots": "10", "max_wal_senders": "10"}
SCHEMA = [
    "CREATE ROLE app_owner LOGIN PASSWORD 'owner secret'",
    "CREATE DATABASE app OWNER app_owner",
]
TABLES = [
    "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)",
    "CREATE TABLE events (id serial PRIMARY KEY, note text)",
    "ALTER TABLE accounts OWNER TO app_owner",
]


def rhizomectl(*arguments: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rhizome.cli.main", "upgrade", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def dsns(blue: PostgresInstance, green: PostgresInstance) -> list[str]:
    return ["--source-dsn", blue.dsn(), "--target-dsn", green.dsn()]


def eventually(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.2)


def write(instance: PostgresInstance, first: int, last: int) -> None:
    for number in range(first, last + 1):
        instance.execute("INSERT INTO accounts VALUES (%s, %s)", (number, 10), dbname="app")
        instance.execute("INSERT INTO events (note) VALUES (%s)", (f"e{number}",), dbname="app")


def count(instance: PostgresInstance, table: str) -> int:
    return int(instance.execute(f"SELECT count(*) FROM {table}", dbname="app")[0][0])  # noqa: S608


def fill_blue(postgres_factory: PostgresFactory) -> tuple[PostgresInstance, PostgresInstance]:
    blue = postgres_factory("blue", settings=LOGICAL)
    green = postgres_factory("green")
    for statement in SCHEMA:
        blue.execute(statement)
    for statement in TABLES:
        blue.execute(statement, dbname="app")
    write(blue, 1, 50)  # before prepare: the initial copy carries these
    return blue, green


def test_prepare_streams_records_sequences_and_finishes(postgres_factory: PostgresFactory):
    blue, green = fill_blue(postgres_factory)
    prepared = rhizomectl("prepare", *dsns(blue, green), "--timeout", "120")
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    assert "prepared: databases app, postgres" in prepared.stdout
    assert "SCRAM" not in prepared.stdout + prepared.stderr
    assert count(green, "accounts") == 50 and count(green, "events") == 50
    password = "SELECT rolpassword FROM pg_authid WHERE rolname = 'app_owner'"
    assert green.execute(password) == blue.execute(password)  # the hash, never shown
    assert "SCRAM-SHA-256$" not in green.log_path.read_text()
    write(blue, 51, 80)  # after prepare: streamed
    eventually(lambda: count(green, "events") == 80, "the streamed rows on green")
    assert_sequences_carried(blue, green)
    assert_confirmed_catches_up(blue)
    status = rhizomectl("status", *dsns(blue, green), "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    report = json.loads(status.stdout)
    app = next(item for item in report["databases"] if item["database"] == "app")
    assert report["ready"] and app["sequence_values_arrived"] and app["tables_not_ready"] == []
    again = rhizomectl("prepare", *dsns(blue, green), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] == [], again.stderr
    assert_an_interrupted_prepare_is_completed(blue, green)
    assert_finish_leaves_a_plain_database(blue, green)


def assert_sequences_carried(blue: PostgresInstance, green: PostgresInstance) -> None:
    """What the keeper does once blue is sealed: record, then green applies through its trigger."""
    connection = psycopg2.connect(blue.dsn(dbname="app"))
    try:
        assert upgrade_databases(connection) == ["app", "postgres"]
        assert record_sequences(connection) == 1  # events_id_seq
    finally:
        connection.close()
    highest = int(blue.execute("SELECT max(id) FROM events", dbname="app")[0][0])
    arrived = "SELECT count(*) FROM rhizome_upgrade.sequence_values"
    eventually(lambda: bool(green.execute(arrived, dbname="app")[0][0]), "sequence values on green")
    following = int(green.execute("SELECT nextval('events_id_seq')", dbname="app")[0][0])
    assert following > highest
    plain = psycopg2.connect(green.dsn(dbname="app"))  # no publication on green: nothing written
    try:
        assert record_sequences(plain) == 0
    finally:
        plain.close()


def assert_confirmed_catches_up(blue: PostgresInstance) -> None:
    position = blue.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")[0][0]

    def confirmed() -> int | None:
        connection = psycopg2.connect(blue.dsn())
        try:
            return confirmed_lsn(connection)
        finally:
            connection.close()

    eventually(lambda: (confirmed() or 0) >= int(position), "confirmed_lsn up to the WAL end")


def assert_an_interrupted_prepare_is_completed(
    blue: PostgresInstance, green: PostgresInstance
) -> None:
    """A subscription that never got created, its slot left on blue: the next run drops the
    slot and subscribes again."""
    for statement in ("ALTER SUBSCRIPTION rhizome_upgrade_postgres DISABLE",
                      "ALTER SUBSCRIPTION rhizome_upgrade_postgres SET (slot_name = NONE)",
                      "DROP SUBSCRIPTION rhizome_upgrade_postgres"):  # fmt: skip
        green.execute(statement)
    completed = rhizomectl("prepare", *dsns(blue, green), "--json")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert json.loads(completed.stdout)["changed"] == [
        "drop slot rhizome_upgrade_postgres left by an interrupted prepare",
        "subscribe postgres (slot rhizome_upgrade_postgres on the source, initial copy)",
    ]


def assert_finish_leaves_a_plain_database(blue: PostgresInstance, green: PostgresInstance) -> None:
    finished = rhizomectl("finish", "--target-dsn", green.dsn(), "--source-dsn", blue.dsn())
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "dropped subscription rhizome_upgrade_app" in finished.stdout
    assert green.execute("SELECT count(*) FROM pg_subscription")[0][0] == 0
    assert green.execute("SELECT to_regnamespace('rhizome_upgrade')", dbname="app")[0][0] is None
    assert blue.execute("SELECT count(*) FROM pg_replication_slots")[0][0] == 0
    assert count(green, "accounts") == 80 and count(green, "events") == 80
    green.execute("INSERT INTO events (note) VALUES ('after the cutover')", dbname="app")
    again = rhizomectl("finish", "--target-dsn", green.dsn())
    assert again.returncode == 0 and "nothing to change" in again.stdout


def test_prepare_refuses_a_password_and_a_source_without_logical_wal(
    postgres_factory: PostgresFactory,
):
    blue = postgres_factory("blue")  # wal_level replica
    green = postgres_factory("green")
    blue.execute("CREATE TABLE accounts (id int PRIMARY KEY)")
    green.execute("CREATE TABLE legacy (id int PRIMARY KEY)")
    secret = rhizomectl("prepare", "--source-dsn", blue.dsn() + " password=hunter2",
                        "--target-dsn", green.dsn())  # fmt: skip
    assert secret.returncode == 2 and "must not carry a password" in secret.stderr
    assert "hunter2" not in secret.stdout + secret.stderr
    refused = rhizomectl("prepare", *dsns(blue, green))
    assert refused.returncode == 1 and "wal_level" in refused.stdout
    assert "restart" in refused.stdout and "nothing was changed" in refused.stdout
    assert "tables that no earlier prepare made (public.legacy)" in refused.stdout
    assert green.execute("SELECT to_regclass('public.accounts')")[0][0] is None
    assert blue.execute("SELECT count(*) FROM pg_publication")[0][0] == 0
