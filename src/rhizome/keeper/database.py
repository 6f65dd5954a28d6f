"""Short SQL sessions with PostgreSQL: the local instance and an upstream.

Every connection has a connect timeout and a statement timeout, so a frozen
server never blocks the keeper for long. Passwords go to libpq as connection
parameters, never through a command line.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions

from rhizome.keeper.conffiles import Upstream
from rhizome.keeper.config import KeeperConfig

CONNECT_TIMEOUT = 3
STATEMENT_TIMEOUT_MS = 10_000

Connection = psycopg2.extensions.connection
DatabaseError = psycopg2.Error


@contextmanager
def local_session(
    keeper: KeeperConfig, statement_timeout_ms: int = STATEMENT_TIMEOUT_MS
) -> Iterator[Any]:
    """An autocommit cursor on the local instance, over its Unix socket, as superuser."""
    with superuser_session(
        keeper, str(keeper.socket_dir), keeper.port, "rhizome-keeper", statement_timeout_ms
    ) as cursor:
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
    keeper: KeeperConfig, host: str, port: int, application_name: str, statement_timeout_ms: int
) -> Iterator[Any]:
    """An autocommit cursor as the superuser, with connect and statement timeouts."""
    connection = psycopg2.connect(
        host=host,
        port=port,
        user=keeper.superuser,
        password=keeper.superuser_password,
        dbname="postgres",
        connect_timeout=CONNECT_TIMEOUT,
        application_name=application_name,
        options=f"-c statement_timeout={statement_timeout_ms}",
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def accepts_connections(keeper: KeeperConfig) -> bool:
    """Whether the local instance answers a query now."""
    try:
        with local_session(keeper) as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True
