"""The leader sentinel's clock: it never steps during one leadership.

Timers kept in `state` (missing_keepers_since, master_unhealthy_since,
operation.started_at and phase_started_at) are compared with the `now` of
whichever sentinel leads. Two hosts' wall clocks never agree exactly, and one
may be stepped (NTP, an operator): compared across hosts, a timer would fire
early or late by the difference. So:

- during one leadership, `now` is the wall time when it began plus the
  monotonic time elapsed since (rhizome.clock.monotonic): it never steps,
  and still reads as a date in history entries and command results;
- the first decision of a new leadership re-arms every timer read from the
  state to this `now` (decide(): ClusterObservation.rearm_timers), until a
  decision of this leadership has been stored. A change of leader can only
  delay a timer, by at most its own length; it never fires one early.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

from rhizome import clock


class LeaderClock:
    """`now` for the decisions of one leadership, and whether timers must be re-armed."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = clock.monotonic,
    ) -> None:
        self.wall = wall
        self.monotonic = monotonic
        self.leadership: Hashable | None = None
        """Identifies the current leadership (leader key revision and lease)."""
        self.started_wall = 0.0
        self.started_monotonic = 0.0
        self.rearm_pending = False

    def reading(self, leadership: Hashable) -> tuple[float, bool]:
        """(now, rearm_timers) for a decision of `leadership`."""
        if leadership != self.leadership:
            self.leadership = leadership
            self.started_wall = self.wall()
            self.started_monotonic = self.monotonic()
            self.rearm_pending = True
        now = self.started_wall + (self.monotonic() - self.started_monotonic)
        return now, self.rearm_pending

    def restart(self) -> None:
        """This sentinel could not count on its lease: its next decision starts a leadership
        anew (its timers are re-armed; what it measured while cut off means nothing)."""
        self.leadership = None

    def decision_stored(self) -> None:
        """A decision of this leadership is in the store: its timers are on this clock."""
        self.rearm_pending = False
