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
        probe every `interval` ends the wait when its answer changed or none came."""
        next_pass = clock.monotonic() + pause
        while (left := next_pass - clock.monotonic()) > 0:
            if self.wake.wait(min(left, interval)):
                break
            if left > interval and running and self._changed():
                break
        self.wake.clear()

    def _changed(self) -> bool:
        try:
            probed = probe_sql(self.session)
        except DatabaseError:  # it answered, if only with an error: the pass asks for itself
            return True
        self._unanswered = probed is None
        return probed is None or probed != self._baseline
