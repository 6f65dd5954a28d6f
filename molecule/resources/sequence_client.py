"""A session client for the major-upgrade scenario: one session, ids from a sequence.

Runs on the molecule controller until the stop file appears. It keeps one
connection through the proxies' read-write port and inserts a row into
`molecule_sequence` (id bigserial) every interval, recording the id each
commit returned and the major version of the server that issued it. When
the session breaks (the cutover closes every session to the old master) the
transaction in flight fails and is counted; the client opens a new session
and goes on. When stopped it reads back every acknowledged id through the
proxy and writes a JSON summary: acknowledged, failed_transactions,
reconnects, missing (acknowledged ids not found: lost writes), the ids
issued by each major version (their count, least and greatest), and whether
every id the new version issued is above every id the old one issued.

The superuser's password is read from a file, never from the command line.

    python sequence_client.py --hosts 10.88.0.3,10.88.0.4 --password-file F \
        --stop-file S --summary SUMMARY.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import psycopg2
from writer import connect as connect_through_proxies  # this script's directory


def connect(arguments: argparse.Namespace, password: str) -> Any:
    """An autocommit session through the proxies (writer.py's connection)."""
    connection = connect_through_proxies(arguments.hosts, password, "molecule-sequence-client")
    connection.autocommit = True
    return connection


def insert_until_stopped(arguments: argparse.Namespace, password: str) -> dict[str, Any]:
    issued: list[tuple[int, int]] = []
    errors: list[str] = []
    failed = reconnects = 0
    stop_file = Path(arguments.stop_file)
    connection = None
    while not stop_file.exists():
        started = time.monotonic()
        try:
            if connection is None:
                connection = connect(arguments, password)
                reconnects += 1
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO molecule_sequence DEFAULT VALUES"
                    " RETURNING id, current_setting('server_version_num')::int / 10000"
                )
                identifier, version = cursor.fetchone()
            issued.append((identifier, version))
        except psycopg2.Error as error:
            failed += 1
            errors.append(str(error).strip()[:200])
            if connection is not None:
                connection.close()
            connection = None
        time.sleep(max(0.0, arguments.interval - (time.monotonic() - started)))
    if connection is not None:
        connection.close()
    return {"issued": issued, "failed": failed, "reconnects": reconnects - 1, "errors": errors}


def by_version(issued: list[tuple[int, int]]) -> dict[str, dict[str, int]]:
    versions: dict[str, list[int]] = {}
    for identifier, version in issued:
        versions.setdefault(str(version), []).append(identifier)
    return {
        version: {"count": len(ids), "least": min(ids), "greatest": max(ids)}
        for version, ids in sorted(versions.items())
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", required=True, help="proxy addresses, comma-separated")
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--interval", type=float, default=0.05)
    arguments = parser.parse_args()
    password = Path(arguments.password_file).read_text().strip()

    with connect(arguments, password) as setup, setup.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS molecule_sequence"
            " (id bigserial PRIMARY KEY, written timestamptz DEFAULT now())"
        )
    setup.close()
    Path(arguments.summary).with_suffix(".started").touch()

    outcome = insert_until_stopped(arguments, password)
    reader = connect(arguments, password)
    with reader.cursor() as cursor:
        cursor.execute("SELECT id FROM molecule_sequence")
        present = {identifier for (identifier,) in cursor.fetchall()}
    reader.close()
    issued = outcome["issued"]
    missing = [identifier for identifier, _ in issued if identifier not in present]
    versions = by_version(issued)
    ordered = [identifier for identifier, _ in issued]
    old, new = (min(versions, key=int), max(versions, key=int)) if versions else ("", "")
    summary = {
        "acknowledged": len(issued),
        "failed_transactions": outcome["failed"],
        "reconnects": outcome["reconnects"],
        "errors": outcome["errors"][:10],
        "missing": len(missing),
        "missing_ids": missing[:20],
        "by_version": versions,
        "increasing": all(earlier < later for earlier, later in itertools.pairwise(ordered)),
        "new_above_old": bool(old != new and versions[new]["least"] > versions[old]["greatest"]),
    }
    Path(arguments.summary).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
