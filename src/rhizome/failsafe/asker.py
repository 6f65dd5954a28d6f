"""The master keeper's failsafe rounds: a thread that asks while its lease renewal is overdue.

`question()` (from the keeper) says whom to ask and what, or None when there
is nothing to ask (failsafe off, not a writable master, lease renewed in
time). A round that every member confirmed sets `confirmed_at` to the moment
the round started: the keeper's fence watchdog and guard count it as a lease
renewal sent then (keeper/lease.py).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rhizome import clock
from rhizome.failsafe.peers import Peers
from rhizome.failsafe.rules import FailsafeRequest, Member, RoundOutcome

log = logging.getLogger(__name__)

ASK_INTERVAL = 0.2
"""Seconds between the end of one round and the start of the next, and between two
looks at the lease while failsafe is on."""
IDLE_INTERVAL = 5.0
"""Seconds between two looks at the spec while failsafe is off (a wake-up costs CPU): a
master starts asking within this after failsafe is turned on."""


@dataclass(frozen=True)
class Question:
    members: tuple[Member, ...]
    request: FailsafeRequest


class FailsafeAsker:
    """Runs rounds while `question()` returns one; thread-safe readers of its results."""

    def __init__(
        self, question: Callable[[], Question | None], peers: Peers, enabled: Callable[[], bool]
    ) -> None:
        self.question = question
        self.peers = peers
        self.enabled = enabled
        self.confirmed_at = -math.inf
        """Monotonic start of the last round every member confirmed."""
        self.rounds = 0
        self.complete_rounds = 0
        self.asking = False
        """The last check found the lease overdue: rounds are running."""
        self._last_description: str | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="failsafe-asker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        self.peers.close()

    def _run(self) -> None:
        while not self._stopped.wait(ASK_INTERVAL if self.enabled() else IDLE_INTERVAL):
            question = self.question()
            if question is None:
                self._quiet()
                continue
            self.asking = True
            started = clock.monotonic()
            outcome = self.peers.ask(question.members, question.request)
            self.rounds += 1
            if outcome.complete:
                self.confirmed_at = started
                self.complete_rounds += 1
            self._report(outcome)

    def _report(self, outcome: RoundOutcome) -> None:
        description = outcome.describe()
        if description == self._last_description:
            return
        self._last_description = description
        if outcome.complete:
            log.warning("failsafe: etcd unreachable, PostgreSQL stays writable: %s", description)
        else:
            log.error("failsafe: etcd unreachable and %s; fencing at the deadline", description)

    def _quiet(self) -> None:
        if self.asking:
            log.info("failsafe: the lease is renewed in etcd again; no more rounds")
        self.asking = False
        self._last_description = None
