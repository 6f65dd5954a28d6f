"""Client connections with deadlines and failover between endpoints (proxies or servers).

Every call is asynchronous psycopg2 driven with a deadline: a frozen or
black-holed server keeps sockets open and would otherwise hang the client.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg2

from tests.harness.cluster import close_quietly, wait_ready

Endpoint = tuple[str, int]
CONNECT_TIMEOUT = 2.0
STATEMENT_TIMEOUT = 2.0


def connect(endpoint: Endpoint, password: str, timeout: float = CONNECT_TIMEOUT) -> Any:
    host, port = endpoint
    connection = psycopg2.connect(
        host=host, port=port, user="postgres", dbname="postgres", password=password, async_=True
    )
    try:
        wait_ready(connection, timeout)
    except BaseException:
        close_quietly(connection)
        raise
    return connection


def query(connection: Any, sql: str, parameters: Any = (),
          timeout: float = STATEMENT_TIMEOUT) -> list[tuple[Any, ...]]:  # fmt: skip
    """Run one statement string (autocommit); the rows of its last result, if any."""
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        wait_ready(connection, timeout)
        return cursor.fetchall() if cursor.description is not None else []


class FailoverClient:
    """One connection at a time to the first endpoint that answers, starting after the last good."""

    def __init__(self, endpoints: Sequence[Endpoint], password: str) -> None:
        self.endpoints = list(endpoints)
        self.password = password
        self.connection: Any = None
        self.next_index = 0
        self.connect_failures: list[float] = []

    def ensure(self) -> Any:
        if self.connection is not None:
            return self.connection
        last_error: BaseException | None = None
        for _ in self.endpoints:
            endpoint = self.endpoints[self.next_index % len(self.endpoints)]
            try:
                self.connection = connect(endpoint, self.password)
                return self.connection
            except (psycopg2.Error, TimeoutError, OSError) as error:
                self.connect_failures.append(time.monotonic())
                self.next_index += 1
                last_error = error
        raise TimeoutError(f"no endpoint answered: {last_error}")

    def drop(self) -> None:
        """Forget the connection after a failure; the next try starts at the next endpoint."""
        close_quietly(self.connection)
        self.connection = None
        self.next_index += 1
