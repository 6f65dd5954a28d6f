"""SQL sessions with PostgreSQL: the local instance and an upstream.

Every connection has a connect timeout and a statement timeout, so a frozen
server never blocks the keeper for long. Passwords go to libpq as connection
parameters, never through a command line. The loop's observations reuse one
`KeptSession` (a new connection costs a backend and a SCRAM exchange); the
other sessions are short.
"""

from __future__ import annotations

import select
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions

from rhizome import clock
from rhizome.keeper.conffiles import Upstream
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.tls import peer_client_fields

CONNECT_TIMEOUT = 3
STATEMENT_TIMEOUT_MS = 10_000

OBSERVATION_TIMEOUT = CONNECT_TIMEOUT
"""Seconds a kept session may take to connect, or to answer one observation."""

KEEPER_APPLICATION_NAME = "rhizome-keeper"
"""The application_name of the keeper's local sessions (a sealed master keeps them)."""
WRITABLE = "-c default_transaction_read_only=off"
"""The keeper's sessions write even where clients' transactions are read-only by default
(a master sealed for a cutover, seal.py)."""
Connection = psycopg2.extensions.connection
DatabaseError = psycopg2.Error
Result = TypeVar("Result")


class Unresponsive(psycopg2.OperationalError):  # type: ignore[misc]  # psycopg2 is untyped
    """The instance did not answer within OBSERVATION_TIMEOUT."""


@contextmanager
def local_session(
    keeper: KeeperConfig,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
    database: str = "postgres",
) -> Iterator[Any]:
    """An autocommit cursor on the local instance, over its Unix socket, as superuser."""
    with superuser_session(
        keeper, str(keeper.socket_dir), keeper.port, KEEPER_APPLICATION_NAME,
        statement_timeout_ms, database,
    ) as cursor:  # fmt: skip
        yield cursor


@contextmanager
def upstream_session(keeper: KeeperConfig, upstream: Upstream) -> Iterator[Any]:
    """An autocommit cursor on another keeper's PostgreSQL, as superuser over TCP."""
    application_name = f"rhizome-keeper-{keeper.name}"
    with superuser_session(
        keeper, upstream.host, upstream.port, application_name, STATEMENT_TIMEOUT_MS
    ) as cursor:
        yield cursor


@contextmanager
def superuser_session(
    keeper: KeeperConfig,
    host: str,
    port: int,
    application_name: str,
    statement_timeout_ms: int,
    database: str = "postgres",
) -> Iterator[Any]:
    """An autocommit cursor as the superuser, with connect and statement timeouts (over TCP,
    with TLS verified as keeper/tls.py says; a Unix socket needs none)."""
    parameters = superuser_parameters(keeper, host, port, application_name, statement_timeout_ms)
    parameters["dbname"] = database
    if not host.startswith("/"):
        parameters.update(peer_client_fields(keeper.tls))
    connection = psycopg2.connect(**parameters, connect_timeout=CONNECT_TIMEOUT)
    with autocommit_cursor(connection) as cursor:
        yield cursor


@contextmanager
def autocommit_cursor(connection: Any) -> Iterator[Any]:
    """An autocommit cursor on `connection`, which is closed with it."""
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def superuser_parameters(
    keeper: KeeperConfig, host: str, port: int, application_name: str, statement_timeout_ms: int
) -> dict[str, Any]:
    """libpq parameters of a superuser session (the password a parameter, no command line)."""
    return {
        "host": host,
        "port": port,
        "user": keeper.superuser,
        "password": keeper.superuser_password,
        "dbname": "postgres",
        "application_name": application_name,
        "options": f"-c statement_timeout={statement_timeout_ms} {WRITABLE}",
    }


def accepts_connections(keeper: KeeperConfig) -> bool:
    """Whether the local instance answers a query now."""
    try:
        with local_session(keeper) as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


class KeptSession:
    """A long-lived autocommit session with the local instance, for one thread.

    A query that fails on the kept connection (a restarted PostgreSQL closed
    it) is retried at once on a fresh one; any failure closes the connection.
    Waits are bounded on the client side, so a frozen server is reported as
    not answering after OBSERVATION_TIMEOUT, as a connect timeout did.
    """

    def __init__(self, keeper: KeeperConfig) -> None:
        self.keeper = keeper
        self._connection: Any = None
        self.unanswered_since: float | None = None
        """When the first of the latest run of unanswered queries started (monotonic)."""

    def run(self, work: Callable[[Any], Result]) -> Result:
        """`work(cursor)`; raises DatabaseError when the instance does not answer."""
        started = clock.monotonic()
        try:
            result = self._run_retried(work)
        except Unresponsive:
            if self.unanswered_since is None:
                self.unanswered_since = started
            raise
        except DatabaseError:
            self.unanswered_since = None  # it answered, if only with an error
            raise
        self.unanswered_since = None
        return result

    def unresponsive_for(self) -> float:
        """Seconds PostgreSQL has not answered the kept session (0 when it answers)."""
        since = self.unanswered_since
        return 0.0 if since is None else clock.monotonic() - since

    def _run_retried(self, work: Callable[[Any], Result]) -> Result:
        if self._connection is not None:
            try:
                return self._run_once(work)
            except Unresponsive:
                raise
            except DatabaseError:
                pass  # a broken connection: once more on a fresh one
        return self._run_once(work)

    def close(self) -> None:
        """Close the connection (PostgreSQL stopped: nothing is left unanswered)."""
        self.unanswered_since = None
        self._disconnect()

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _run_once(self, work: Callable[[Any], Result]) -> Result:
        try:
            if self._connection is None:
                self._connection = self._connect()
            with self._connection.cursor() as cursor:
                return work(BoundedCursor(cursor, clock.monotonic() + OBSERVATION_TIMEOUT))
        except DatabaseError:
            self._disconnect()
            raise

    def _connect(self) -> Any:
        keeper = self.keeper
        parameters = superuser_parameters(
            keeper,
            str(keeper.socket_dir),
            keeper.port,
            KEEPER_APPLICATION_NAME,
            STATEMENT_TIMEOUT_MS,
        )
        # async_: autocommit, and every wait goes through wait_until()
        connection = psycopg2.connect(**parameters, async_=True)
        try:
            wait_until(connection, clock.monotonic() + OBSERVATION_TIMEOUT)
        except DatabaseError:
            connection.close()
            raise
        return connection


class BoundedCursor:
    """An asynchronous connection's cursor whose queries finish by `deadline`."""

    def __init__(self, cursor: Any, deadline: float) -> None:
        self.cursor = cursor
        self.deadline = deadline

    def execute(self, query: str, parameters: tuple[Any, ...] | None = None) -> None:
        self.cursor.execute(query, parameters)
        wait_until(self.cursor.connection, self.deadline)

    def fetchone(self) -> Any:
        return self.cursor.fetchone()

    def fetchall(self) -> Any:
        return self.cursor.fetchall()


def wait_until(connection: Any, deadline: float) -> None:
    """Drive an asynchronous connection's pending operation; Unresponsive after `deadline`."""
    while (state := connection.poll()) != psycopg2.extensions.POLL_OK:
        remaining = deadline - clock.monotonic()
        if remaining <= 0:
            raise Unresponsive(f"PostgreSQL did not answer within {OBSERVATION_TIMEOUT} s")
        if state == psycopg2.extensions.POLL_READ:
            select.select([connection], [], [], remaining)
        else:
            select.select([], [connection], [], remaining)
