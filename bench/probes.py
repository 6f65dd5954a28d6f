"""Clients that write through a proxy every 10 ms and record every attempt.

Both systems get the same clients: one holding a session (it reconnects after
an error) and one opening a new connection per transaction. Each attempt is
recorded with when it started and ended, whether it was acknowledged, and when
the connection it used was established, so that a failover is measured as "the
first write acknowledged on a connection opened after the fault". Every
connect and statement has a client-side deadline: a frozen server keeps its
sockets open and would otherwise hang the client forever.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import statistics
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg2

from tests.harness.cluster import execute_within, wait_ready

WRITE_INTERVAL = 0.01
ATTEMPT_DEADLINE = 1.0
PATIENT_CONNECT_DEADLINE = 10.0
"""For switchovers: long enough that a proxy holding a new connection is not a failure."""
TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS probe_writes "
    "(client text, number integer, PRIMARY KEY (client, number))"
)


@dataclass(frozen=True)
class Endpoint:
    """Where the clients connect: the proxy's address and the superuser's password."""

    host: str
    port: int
    password: str
    tls_options: tuple[tuple[str, str], ...] = ()
    """libpq settings for TLS, e.g. (("sslmode", "verify-full"), ("sslrootcert", ca))."""

    def connect(self, deadline: float = ATTEMPT_DEADLINE) -> Any:
        """An autocommit (asynchronous) connection, ready within `deadline` seconds."""
        connection = psycopg2.connect(
            host=self.host,
            port=self.port,
            user="postgres",
            dbname="postgres",
            password=self.password,
            async_=True,
            **dict(self.tls_options),
        )
        try:
            wait_ready(connection, deadline)
        except BaseException:
            close_quietly(connection)
            raise
        return connection

    def query_primary(
        self, sql: str, parameters: tuple[Any, ...] = (), timeout: float = 60.0
    ) -> list[tuple[Any, ...]]:
        """One statement through the proxy on a primary (not in recovery); its rows.

        Retried until `timeout`: a proxy may still send a new connection to a
        demoted server for a while (HAProxy until its health check marks it down).
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._query_if_primary(sql, parameters)
            except (psycopg2.Error, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _query_if_primary(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        connection = self.connect(deadline=10.0)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_is_in_recovery()")
                wait_ready(connection, 10.0)
                if cursor.fetchone()[0]:
                    raise psycopg2.OperationalError("reached a standby, not the primary")
                cursor.execute(sql, parameters)
                wait_ready(connection, 10.0)
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            close_quietly(connection)


@dataclass(frozen=True)
class Attempt:
    started: float
    finished: float
    acknowledged: bool
    connection_failed: bool  # the connect itself failed (refused, closed, timed out)
    connected_at: float | None  # when the connection used was established
    error: str  # "" when acknowledged, else what went wrong (see error_kind)


@dataclass
class WritingClient:
    """Inserts (client, number) rows every 10 ms from a thread, recording each attempt."""

    endpoint: Endpoint
    name: str
    new_connection_per_transaction: bool = False
    connect_deadline: float = ATTEMPT_DEADLINE
    attempts: list[Attempt] = field(default_factory=list)
    acknowledged: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> WritingClient:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        number = 0
        session: tuple[Any, float] | None = None  # (connection, when it was established)
        while not self._stop.is_set():
            number += 1
            started = time.monotonic()
            if session is None:
                try:
                    session = (self.endpoint.connect(self.connect_deadline), time.monotonic())
                except (psycopg2.Error, TimeoutError) as error:
                    failed = Attempt(
                        started, time.monotonic(), False, True, None, error_kind(error)
                    )
                    self.attempts.append(failed)
                    self._stop.wait(WRITE_INTERVAL)
                    continue
            connection, connected_at = session
            error_text = ""
            try:
                execute_within(
                    connection,
                    "INSERT INTO probe_writes VALUES (%s, %s)",
                    (self.name, number),
                    ATTEMPT_DEADLINE,
                )
                self.acknowledged.append(number)
            except (psycopg2.Error, TimeoutError) as error:
                error_text = error_kind(error)
            finished = time.monotonic()
            self.attempts.append(
                Attempt(started, finished, not error_text, False, connected_at, error_text)
            )
            if self.new_connection_per_transaction or error_text:
                close_quietly(connection)
                session = None
            self._stop.wait(WRITE_INTERVAL)
        if session is not None:
            close_quietly(session[0])

    def lost_writes(self) -> int:
        """Acknowledged rows of this client that the primary behind the proxy does not have."""
        rows = self.endpoint.query_primary(
            "SELECT number FROM probe_writes WHERE client = %s", (self.name,)
        )
        return len(set(self.acknowledged) - {number for (number,) in rows})


def error_kind(error: BaseException) -> str:
    """A short, countable name for a client error: its first line, numbers dropped."""
    if isinstance(error, TimeoutError):
        return "timed out (1 s deadline)"
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return re.sub(r"\d+(\.\d+)*", "N", first_line)[:100]


def create_table(endpoint: Endpoint) -> None:
    """The table every client writes to (once per system, before the first client)."""
    endpoint.query_primary(TABLE_SQL)


def close_quietly(connection: Any) -> None:
    if connection is not None:
        with contextlib.suppress(psycopg2.Error):
            connection.close()


# -- pure helpers: what the attempts say -------------------------------------------------------


def recovery_seconds(attempts: Sequence[Attempt], fault_at: float) -> float | None:
    """Seconds from the fault to the first write acknowledged on a connection opened after it."""
    for attempt in attempts:
        opened_after = attempt.connected_at is not None and attempt.connected_at > fault_at
        if attempt.acknowledged and opened_after:
            return attempt.finished - fault_at
    return None


def longest_pause(attempts: Sequence[Attempt], since: float, until: float) -> float:
    """The longest time without an acknowledged write within [since, until]."""
    moments = [since]
    moments += [a.finished for a in attempts if a.acknowledged and since < a.finished < until]
    moments.append(until)
    return max(later - earlier for earlier, later in itertools.pairwise(moments))


def error_counts(attempts: Sequence[Attempt]) -> dict[str, int]:
    """'connect: <kind>' / 'transaction: <kind>' -> how many attempts failed so."""
    counts: Counter[str] = Counter()
    for attempt in attempts:
        if attempt.error:
            stage = "connect" if attempt.connection_failed else "transaction"
            counts[f"{stage}: {attempt.error}"] += 1
    return dict(counts)


def failures(attempts: Sequence[Attempt], since: float) -> tuple[int, int]:
    """(failed connects, failed transactions on an established connection) after `since`."""
    after = [attempt for attempt in attempts if attempt.started >= since]
    connects = sum(1 for attempt in after if attempt.connection_failed)
    transactions = sum(
        1 for attempt in after if not attempt.acknowledged and not attempt.connection_failed
    )
    return connects, transactions


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (fraction 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


@dataclass(frozen=True)
class Summary:
    count: int
    median: float
    p90: float
    maximum: float


def summarize(values: Sequence[float]) -> Summary | None:
    if not values:
        return None
    return Summary(len(values), statistics.median(values), percentile(values, 0.9), max(values))


def ratio(rhizome: float | None, patroni: float | None) -> str:
    """rhizome / Patroni as text ('-' when either is missing or Patroni's is zero)."""
    if rhizome is None or not patroni:
        return "-"
    return f"{rhizome / patroni:.2f}"
