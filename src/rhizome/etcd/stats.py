"""How an agent's etcd calls went, for its metrics."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from rhizome import clock


@dataclass
class RequestStats:
    """Calls since the process started, for the agents' metrics (watch streams not counted)."""

    succeeded: int = 0
    failed: int = 0
    seconds: float = 0.0
    """Time spent in calls, failed ones included."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, started: float, succeeded: bool) -> None:
        with self.lock:
            self.seconds += clock.monotonic() - started
            if succeeded:
                self.succeeded += 1
            else:
                self.failed += 1


def combined(stats: tuple[RequestStats, ...]) -> RequestStats:
    """The totals of several clients' stats (one agent with several clients)."""
    return RequestStats(
        succeeded=sum(item.succeeded for item in stats),
        failed=sum(item.failed for item in stats),
        seconds=sum(item.seconds for item in stats),
    )
