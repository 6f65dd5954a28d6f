"""When a keeper with nothing to do looks at PostgreSQL, and when it runs a whole pass.

What changes around PostgreSQL is announced and wakes the loop at once: a
store change, the postmaster's exit, a new or lost lease, the guard. What
nothing announces is what PostgreSQL itself answers: WAL that arrived or
advanced, a replication connection that ended, an instance that stopped
answering. So between two passes the keeper asks it every
keeper_publish_interval, as before, with the observation's own queries (a
probe), and compares the answer with the last pass's. Only a different answer
or none ends the wait early, and the next pass uses that answer; the whole
pass (plan, publish, the configuration files) otherwise comes after
keeper_publish_interval, one interval later after each quiet pass, up to
QUIET_STRETCH intervals. Every bound that depends on observing PostgreSQL
(a hung master killed, a standby's last WAL published before a dead master's
lease expires) is kept; an idle keeper runs a third of the passes.
"""

from __future__ import annotations

import threading

from rhizome import clock
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.database import KeptSession
from rhizome.keeper.observe import SqlObservation, observe_sql
from rhizome.spec.timing import TimingSettings

QUIET_STRETCH = 3
"""The longest wait between two passes that found nothing to do, in keeper_publish_intervals."""


def pass_pause(timing: TimingSettings, quiet_passes: int) -> float:
    """Seconds until the next pass after `quiet_passes` quiet ones in a row (0: something
    changed in the last pass)."""
    return timing.keeper_publish_interval * min(1 + quiet_passes, QUIET_STRETCH)


class QuietWait:
    """Observes PostgreSQL for the loop's passes, and probes it while the loop waits."""

    def __init__(self, keeper: KeeperConfig, session: KeptSession, wake: threading.Event) -> None:
        self.keeper = keeper
        self.session = session
        self.wake = wake
        self.last: SqlObservation | None = None
        """What the last pass saw (None: PostgreSQL did not run or did not answer)."""
        self._probed: SqlObservation | None = None
        self._handed_over = False

    def observe(self, running: bool) -> SqlObservation | None:
        """For a pass: the answer that ended the wait, or a new observation."""
        handed_over, self._handed_over = self._handed_over, False
        if not running:
            self.last = None
        elif handed_over:
            self.last = self._probed
        else:
            self.last = observe_sql(self.keeper, self.session)
        return self.last

    def wait(self, pause: float, interval: float, running: bool) -> None:
        """Until the next pass: `pause` seconds, or until woken; while PostgreSQL runs, a
        probe every `interval` ends the wait when its answer changed or none came."""
        next_pass = clock.monotonic() + pause
        while (left := next_pass - clock.monotonic()) > 0:
            if self.wake.wait(min(left, interval)):
                break
            if left > interval and running and self._changed():
                break
        self.wake.clear()

    def _changed(self) -> bool:
        probed = observe_sql(self.keeper, self.session)
        if probed is not None and probed == self.last:
            return False
        self._probed, self._handed_over = probed, True
        return True
