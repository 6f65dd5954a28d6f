"""A background writer for the operation scenarios: one new connection per insert.

Runs on the molecule controller until the stop file appears, inserting a
numbered row through the proxies' read-write port every interval. Each
insert opens a new connection (so a connection the proxy refuses, or one
it drops, shows), and an insert counts as acknowledged once its commit
returned. When stopped it reads back every acknowledged number through the
proxy and writes a JSON summary: acknowledged; refused (the connection was
refused, timed out or answered with an error before it was established: what
a proxy holding new connections must avoid); dropped (an established or
half-established connection closed under the insert, as when the proxies cut
every connection to a master being replaced: the insert is not acknowledged,
the client retries); the first errors; missing (acknowledged but not
found: lost writes); the longest pause between two acknowledged writes, in
seconds, and when it began (Unix time).

The superuser's password is read from a file, never from the command line.

    python writer.py --hosts 10.88.0.3,10.88.0.4 --password-file F \
        --stop-file S --summary SUMMARY.json --run maintenance
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import psycopg2

PORT = 6432
CONNECT_TIMEOUT = 30  # longer than the proxy holds a connection during a switchover


def connect(hosts: str, password: str, application_name: str) -> Any:
    """A connection through the proxies' read-write port (the first that answers);
    sequence_client.py uses it too."""
    return psycopg2.connect(
        host=hosts,
        port=",".join([str(PORT)] * len(hosts.split(","))),
        user="postgres",
        password=password,
        dbname="postgres",
        connect_timeout=CONNECT_TIMEOUT,
        application_name=application_name,
    )


def connect_writer(arguments: argparse.Namespace, password: str) -> Any:
    return connect(arguments.hosts, password, f"molecule-writer-{arguments.run}")


def execute(arguments: argparse.Namespace, password: str, sql: str, *parameters: Any) -> list:
    connection = connect_writer(arguments, password)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, parameters)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def refused(error: psycopg2.Error) -> bool:
    """A connection attempt the server side refused or never answered, as
    opposed to one closed half-way through its handshake."""
    text = str(error)
    return error.pgcode is not None or "refused" in text or "timeout expired" in text


def insert(arguments: argparse.Namespace, password: str, number: int) -> tuple[str, str] | None:
    """Inserts row `number` on a new connection: None once committed, else (kind, error)."""
    try:
        connection = connect_writer(arguments, password)
    except psycopg2.Error as error:
        return ("refused" if refused(error) else "dropped"), str(error).strip()
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO molecule_writes (run, number) VALUES (%s, %s)",
                (arguments.run, number),
            )
    except psycopg2.Error as error:
        return "dropped", str(error).strip()
    finally:
        connection.close()
    return None


def write_until_stopped(arguments: argparse.Namespace, password: str) -> dict[str, Any]:
    acknowledged: list[int] = []
    acknowledged_at: list[float] = []
    failures = {"refused": 0, "dropped": 0}
    errors: list[str] = []
    number = 0
    stop_file = Path(arguments.stop_file)
    while not stop_file.exists():
        number += 1
        started = time.monotonic()
        failure = insert(arguments, password, number)
        if failure is None:
            acknowledged.append(number)
            acknowledged_at.append(time.time())
        else:
            kind, error = failure
            failures[kind] += 1
            errors.append(f"insert {number} {kind}: {error}")
        time.sleep(max(0.0, arguments.interval - (time.monotonic() - started)))
    pause, pause_began = longest_pause(acknowledged_at)
    return {
        "attempted": number, "acknowledged": acknowledged, "errors": errors[:10],
        "longest_pause": pause, "longest_pause_began": pause_began, **failures,
    }  # fmt: skip


def longest_pause(moments: list[float]) -> tuple[float, float | None]:
    """The longest time between two consecutive acknowledged writes, and when it began."""
    gaps = [(later - earlier, earlier) for earlier, later in itertools.pairwise(moments)]
    if not gaps:
        return 0.0, None
    gap, began = max(gaps)
    return round(gap, 3), round(began, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", required=True, help="proxy addresses, comma-separated")
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--run", required=True, help="names this run's rows")
    parser.add_argument("--interval", type=float, default=0.05)
    arguments = parser.parse_args()
    password = Path(arguments.password_file).read_text().strip()

    execute(
        arguments,
        password,
        "CREATE TABLE IF NOT EXISTS molecule_writes"
        " (run text, number bigint, written timestamptz DEFAULT now(), PRIMARY KEY (run, number))",
    )
    execute(arguments, password, "DELETE FROM molecule_writes WHERE run = %s", arguments.run)
    Path(arguments.summary).with_suffix(".started").touch()

    outcome = write_until_stopped(arguments, password)
    rows = execute(
        arguments, password, "SELECT number FROM molecule_writes WHERE run = %s", arguments.run
    )
    present = {number for (number,) in rows}
    missing = [number for number in outcome["acknowledged"] if number not in present]
    summary = {
        "run": arguments.run,
        "attempted": outcome["attempted"],
        "acknowledged": len(outcome["acknowledged"]),
        "refused": outcome["refused"],
        "dropped": outcome["dropped"],
        "errors": outcome["errors"],
        "missing": len(missing),
        "missing_numbers": missing[:20],
        "longest_pause": outcome["longest_pause"],
        "longest_pause_began": outcome["longest_pause_began"],
    }
    Path(arguments.summary).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
