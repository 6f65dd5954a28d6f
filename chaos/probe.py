"""Who accepts writes? Several times a second, for every PostgreSQL directly and
through every proxy: which server answered, whether it is a primary, and
whether a real write into `chaos_probe` committed (locally: the probe asks
whether the server accepts writes, not whether a synchronous standby is there).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2

from chaos.client import Endpoint, connect, query
from tests.harness.cluster import close_quietly

PROBE_INTERVAL = 0.25
PROBE_TIMEOUT = 1.0
IDENTIFY = "SELECT host(inet_server_addr()), NOT pg_is_in_recovery()"
WRITE = "INSERT INTO chaos_probe (source) VALUES (%s)"


@dataclass(frozen=True)
class ProbeSample:
    target: str
    """"direct n1" or "proxy n2": what the probe connected to."""
    via: str
    """"direct" or "proxy"."""
    started: float
    finished: float
    server: str | None
    """The address of the PostgreSQL that answered (None: no answer)."""
    primary: bool | None
    wrote: bool


class Probe:
    """One thread per target; `samples` grows until `stop()`."""

    def __init__(self, targets: Sequence[tuple[str, str, Endpoint]], password: str) -> None:
        self.targets = list(targets)
        self.password = password
        self.samples: list[ProbeSample] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=t, daemon=True) for t in targets]

    def start(self) -> Probe:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _run(self, target: str, via: str, endpoint: Endpoint) -> None:
        connection: Any = None
        while not self._stop.is_set():
            started = time.monotonic()
            server: str | None = None
            primary: bool | None = None
            wrote = False
            try:
                if connection is None:
                    connection = connect(endpoint, self.password, PROBE_TIMEOUT)
                    query(connection, "SET synchronous_commit TO local", (), PROBE_TIMEOUT)
                server, primary = query(connection, IDENTIFY, (), PROBE_TIMEOUT)[0]
                query(connection, WRITE, (target,), PROBE_TIMEOUT)
                wrote = True
            except (psycopg2.OperationalError, psycopg2.InterfaceError, TimeoutError, OSError):
                close_quietly(connection)
                connection = None
            except psycopg2.Error:  # e.g. a standby refusing the write: the session lives on
                if connection is not None and connection.closed:
                    connection = None
            self.samples.append(
                ProbeSample(target, via, started, time.monotonic(), server, primary, wrote)
            )
            self._stop.wait(max(0.0, PROBE_INTERVAL - (time.monotonic() - started)))
        close_quietly(connection)
