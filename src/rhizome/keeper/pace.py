"""When a keeper with nothing to do looks at PostgreSQL, and when it runs a whole pass.

What changes around PostgreSQL is announced and wakes the loop at once: a
store change, the postmaster's exit, a new or lost lease, the guard. What
nothing announces is what PostgreSQL itself answers: WAL that arrived or
advanced, a replication connection that came or went, a client session, an
instance that stopped answering. So between two passes the keeper still asks
it every keeper_publish_interval, with one short query (observe.PROBE_QUERY),
and compares the answer with the one it got at the last pass. A different
answer ends the wait at once, and so does an error; no answer within the
observation timeout does too, and the pass takes it as its observation instead
of waiting for PostgreSQL once more. The whole pass (the full observation, the
plan, the publish, the configuration files) otherwise comes after
keeper_publish_interval, one interval later after each pass that found nothing
new, up to QUIET_STRETCH intervals. Every bound that depends on
observing PostgreSQL (a hung master reported and killed, a standby's new WAL
published within an interval) is kept; an idle keeper runs a third of the
passes.

The probes and the passes of an idle keeper come right after a lease renewal
(`LoopWake.tick`, every keeper_publish_interval too): a thread that wakes just
after another one costs a fraction of one woken by its own timer. The timer
stays as the fallback when no renewal comes (etcd slow or away); it runs
TICK_SLACK of an interval longer than the tick would take, so that the tick
comes first, and the probes are that much further apart while renewals fail.
"""

from __future__ import annotations

import contextlib
import threading

from rhizome import clock
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.database import DatabaseError, KeptSession
from rhizome.keeper.observe import Probe, SqlObservation, observe_sql, probe_sql
from rhizome.spec.timing import TimingSettings

QUIET_STRETCH = 3
"""The longest wait between two passes that found nothing to do, in keeper_publish_intervals."""
TICK_SLACK = 0.25
"""How late a tick may come, as a share of keeper_publish_interval, before the timer acts."""


def pass_pause(timing: TimingSettings, quiet_passes: int) -> float:
    """Seconds until the next pass after `quiet_passes` quiet ones in a row (0: something
    changed in the last pass)."""
    return timing.keeper_publish_interval * min(1 + quiet_passes, QUIET_STRETCH)


class LoopWake:
    """The loop's wake-up call: `set()` for a change that wants a pass now, `tick()` for
    the time to look at PostgreSQL again (after every lease renewal)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._changed = False
        self._ticked = False

    def set(self) -> None:
        with self._condition:
            self._changed = True
            self._condition.notify_all()

    def tick(self) -> None:
        with self._condition:
            self._ticked = True
            self._condition.notify_all()

    def is_set(self) -> bool:
        return self._changed

    def wait(self, timeout: float) -> bool | None:
        """True: a change came; False: a tick; None: neither within `timeout`. A change
        stays set for `clear()`; a tick is taken."""
        with self._condition:
            self._condition.wait_for(lambda: self._changed or self._ticked, timeout)
            if self._changed:
                return True
            ticked, self._ticked = self._ticked, False
            return False if ticked else None

    def forget_tick(self) -> None:
        """A tick that came during the pass is stale: the pass looked at everything."""
        with self._condition:
            self._ticked = False

    def clear(self) -> None:
        with self._condition:
            self._changed = self._ticked = False


class QuietWait:
    """Observes PostgreSQL for the loop's passes, and probes it while the loop waits."""

    def __init__(self, keeper: KeeperConfig, session: KeptSession, wake: LoopWake) -> None:
        self.keeper = keeper
        self.session = session
        self.wake = wake
        self._baseline: Probe | None = None
        """The probe's answer at the last pass (None: PostgreSQL did not run or answer)."""
        self._unanswered = False
        """The probe that ended the wait got no answer: the pass need not ask again."""

    def observe(self, running: bool) -> SqlObservation | None:
        """For a pass: a full observation (None: PostgreSQL did not run or answer)."""
        unanswered, self._unanswered = self._unanswered, False
        self._baseline = None
        if not running or unanswered:
            return None
        observed = observe_sql(self.keeper, self.session)
        if observed is not None:
            with contextlib.suppress(DatabaseError):  # no baseline: the first probe passes
                self._baseline = probe_sql(self.session)
        return observed

    def wait(self, pause: float, interval: float, running: bool) -> None:
        """Until the next pass: `pause` seconds, or until woken; while PostgreSQL runs, a
        probe at every tick (or `interval` without one) ends the wait when its answer
        changed or none came. A pause of an interval or more ends at the tick due with it."""
        next_pass = clock.monotonic() + pause
        slack = TICK_SLACK * interval if pause >= interval else 0.0
        self.wake.forget_tick()
        while (left := next_pass - clock.monotonic()) > slack:
            if self.wake.wait(min(left, interval) + slack):
                break
            if next_pass - clock.monotonic() > slack and running and self._changed():
                break
        self.wake.clear()

    def _changed(self) -> bool:
        try:
            probed = probe_sql(self.session)
        except DatabaseError:  # it answered, if only with an error: the pass asks for itself
            return True
        self._unanswered = probed is None
        return probed is None or probed != self._baseline
