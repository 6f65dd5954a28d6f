"""Failed starts of PostgreSQL back off (pure): 1 s, 2 s, 4 s, ... up to 60 s.

A PostgreSQL that cannot start (a configuration it refuses, a full disk, a
library missing) was started again at once, hundreds of times a minute. Each
failure now doubles the wait before the next start, up to START_BACKOFF_LIMIT,
and the keeper reports how many starts failed, PostgreSQL's own reason (the
last lines it logged) and when it tries again. A start that succeeds resets it.
"""

from __future__ import annotations

from dataclasses import dataclass

START_BACKOFF_FIRST = 1.0
START_BACKOFF_LIMIT = 60.0


def start_backoff(failures: int) -> float:
    """Seconds to wait after `failures` consecutive failed starts (0: none failed)."""
    if failures <= 0:
        return 0.0
    return min(START_BACKOFF_LIMIT, START_BACKOFF_FIRST * 2.0 ** min(failures - 1, 32))


@dataclass(frozen=True)
class StartFailures:
    """Consecutive failed starts: how many, the last one's time (monotonic) and reason."""

    count: int = 0
    last_at: float = 0.0
    reason: str = ""

    def after_failure(self, at: float, reason: str) -> StartFailures:
        return StartFailures(self.count + 1, at, reason)

    def next_start_in(self, now: float) -> float:
        """Seconds until a start may be tried again (0: now)."""
        if self.count == 0:
            return 0.0
        return max(0.0, self.last_at + start_backoff(self.count) - now)

    def waiting_text(self, now: float) -> str:
        times = "once" if self.count == 1 else f"{self.count} times in a row"
        return (
            f"PostgreSQL failed to start {times}: {self.reason}; "
            f"next start in {self.next_start_in(now):.1f} s"
        )


NO_FAILURES = StartFailures()


class StartRecord:
    """The keeper's memory of failed starts (the loop thread alone changes it)."""

    def __init__(self) -> None:
        self.failures = StartFailures()

    def failed(self, at: float, reason: str) -> None:
        self.failures = self.failures.after_failure(at, reason)

    def started(self) -> None:
        self.failures = StartFailures()
