"""Workloads through the proxies' read-write ports, each in its own thread.

- unique inserts: a number per statement; `acknowledged` maps each committed
  number to when its commit returned (lost = acknowledged - present at the end);
- bank transfers between accounts in serializable transactions; the total of
  the balances never changes (a change means lost updates or two writers).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg2

from chaos.client import Endpoint, FailoverClient, query

ACCOUNTS = 10
INITIAL_BALANCE = 1000
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS chaos_writes (number integer PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS chaos_wal_sample (number integer PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS chaos_accounts (id integer PRIMARY KEY, balance integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS chaos_probe (id bigserial PRIMARY KEY, source text,"
    " at timestamptz DEFAULT now());"
    f"INSERT INTO chaos_accounts SELECT g, {INITIAL_BALANCE} FROM generate_series(1, {ACCOUNTS})"
    " g ON CONFLICT DO NOTHING;"
)
TRANSFER = (
    "BEGIN ISOLATION LEVEL SERIALIZABLE;"
    "UPDATE chaos_accounts SET balance = balance - %(amount)s WHERE id = %(source)s;"
    "UPDATE chaos_accounts SET balance = balance + %(amount)s WHERE id = %(target)s;"
    "COMMIT;"
)


@dataclass
class WorkloadRecord:
    """What one workload did: when its steps succeeded and failed, when connecting failed,
    and (inserts) each acknowledged number with its acknowledgement time. Plain data."""

    successes: list[float]
    failures: list[float]
    connect_failures: list[float]
    acknowledged: dict[int, float] = field(default_factory=dict)


class ClientLoop:
    """A thread doing one step after another through a FailoverClient, counting outcomes."""

    interval = 0.02

    def __init__(self, endpoints: Sequence[Endpoint], password: str) -> None:
        self.client = FailoverClient(endpoints, password)
        self.successes: list[float] = []
        self.failures: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ClientLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        self.client.drop()

    def step(self, connection: Any) -> None:
        raise NotImplementedError

    def record(self) -> WorkloadRecord:
        """A copy of what happened so far."""
        return WorkloadRecord(list(self.successes), list(self.failures),
                              list(self.client.connect_failures))  # fmt: skip

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step(self.client.ensure())
                self.successes.append(time.monotonic())
            except (psycopg2.Error, TimeoutError, OSError):
                self.failures.append(time.monotonic())
                self.client.drop()
            self._stop.wait(self.interval)


class InsertWorkload(ClientLoop):
    def __init__(self, endpoints: Sequence[Endpoint], password: str) -> None:
        super().__init__(endpoints, password)
        self.acknowledged: dict[int, float] = {}
        self._number = 0

    def step(self, connection: Any) -> None:
        self._number += 1
        query(connection, "INSERT INTO chaos_writes (number) VALUES (%s)", (self._number,))
        self.acknowledged[self._number] = time.monotonic()

    def record(self) -> WorkloadRecord:
        record = super().record()
        record.acknowledged = dict(self.acknowledged)
        return record


class BankWorkload(ClientLoop):
    interval = 0.05

    def __init__(self, endpoints: Sequence[Endpoint], password: str, seed: int) -> None:
        super().__init__(endpoints, password)
        self._random = random.Random(seed)

    def step(self, connection: Any) -> None:
        source, target = self._random.sample(range(1, ACCOUNTS + 1), 2)
        amount = self._random.randint(1, 50)
        query(connection, TRANSFER, {"amount": amount, "source": source, "target": target})
