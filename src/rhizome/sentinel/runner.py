"""The sentinel process: lease, election, and the leader's decide-and-write loop.

Every sentinel publishes itself on a lease and campaigns for the leader key
when nobody holds it. The leader wakes on every store change, when a timer
of its last decision runs out (`Decision.recheck_at`) and when its lease is
due for renewal; unless the view is the one it last decided on and no timer
ran out, it runs the pure `decide()` on the current view and writes the next
state with compare-and-swap, guarded by its own leader key so that a deposed
leader can never write. Its decisions read the
time from a LeaderClock, which never steps during one leadership.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable

from rhizome import __version__, clock
from rhizome.etcd import EtcdError
from rhizome.lease import LeaseHolder
from rhizome.sentinel.decision import ClusterObservation, decide
from rhizome.sentinel.leader_clock import LeaderClock
from rhizome.sentinel.supervision import ThreadWatch
from rhizome.spec import TimingSettings
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.codec import encode_document
from rhizome.store.documents import ClusterState, LeaderInfo, SentinelInfo
from rhizome.store.follower import StoreFollower
from rhizome.store.keys import KeyKind
from rhizome.store.view import ClusterView

log = logging.getLogger(__name__)

TICK = 0.1
"""Wait between two passes while the store is not followed yet or no lease is held."""
IDLE_WAIT = 1.0
"""Longest wait between two passes without a store change. Only a safety net: the
lease renewal and the timers of the last decision wake the loop when they are due."""
DECISION_REFRESH = 10.0
"""Longest time the leader goes without deciding while nothing changes. A decision
depends on the store and on its own timers (`Decision.recheck_at`) only, so this is
a safety net too: a pass woken for the lease renewal alone decides nothing new."""


class Sentinel:
    """One sentinel; `run()` until `stop` is set."""

    def __init__(
        self,
        store: ClusterStore,
        sentinel_id: str,
        clock: Callable[[], float] = time.time,
        leader_clock: LeaderClock | None = None,
        thread_watch: ThreadWatch | None = None,
    ) -> None:
        self.store = store
        self.sentinel_id = sentinel_id
        self.clock = clock
        self.leader_clock = leader_clock or LeaderClock(wall=clock)
        self.thread_watch = thread_watch
        """Raises in the run loop once a thread of the process died (supervision.py)."""
        self.lease = LeaseHolder(store.client, TimingSettings().sentinel_lease_ttl)
        self.follower = StoreFollower(store)
        self.started_at = clock()
        self.ticked_at = -math.inf
        """When the loop last ran (rhizome.clock.monotonic()), for the API's liveness."""
        self._last_renewal_attempt = 0.0
        self._renewal_due = 0.0
        """clock.monotonic() time of the next lease renewal."""
        self._recheck_due = math.inf
        """clock.monotonic() time at which a timer of the last decision runs out."""
        self._decided: tuple[ClusterView, float] | None = None
        """The view the last complete decision was made on, and when to decide again on it."""
        self._reported_problems: set[str] = set()
        self._last_notes: tuple[str, ...] = ()
        self._blocked_on: set[str] = set()

    def run(self, stop: threading.Event) -> None:
        self.follower.start()
        revision = 0
        try:
            while not stop.is_set():
                self.ticked_at = clock.monotonic()
                if self.thread_watch is not None:
                    self.thread_watch.check()
                revision = self.follower.wait_for_change(revision, self._wait())
                if self.follower.synchronized:
                    self.step(self.follower.view())
        finally:
            self.follower.stop()
            self.lease.revoke()  # hands leadership over at once

    def _wait(self) -> float:
        """Seconds until the next pass is due without a store change."""
        if not self.follower.synchronized or self.lease.lease_id is None:
            return TICK
        due = min(self._renewal_due, self._recheck_due)
        return min(IDLE_WAIT, max(due - clock.monotonic(), 0.0))

    def step(self, view: ClusterView) -> None:
        """One pass: keep the lease, campaign if needed, lead if elected."""
        self._recheck_due = math.inf
        timing = view.spec.document.timing if view.spec else TimingSettings()
        if not self._keep_lease(timing):
            self.leader_clock.restart()
            self._decided = None
            return
        if view.leader is None:
            self._campaign()
            return
        if self.is_leader(view):
            self._lead(view)

    def _keep_lease(self, timing: TimingSettings) -> bool:
        """Renew every renew_interval; False when we cannot count on our lease."""
        self.lease.ttl = math.ceil(timing.sentinel_lease_ttl)  # for the next grant
        now = clock.monotonic()
        due = now - self._last_renewal_attempt >= timing.renew_interval
        margin = timing.sentinel_lease_ttl - timing.renew_interval
        self._renewal_due = self._last_renewal_attempt + timing.renew_interval
        if due or self.lease.lease_id is None:
            self._last_renewal_attempt = now
            self._renewal_due = now + timing.renew_interval
            if self.lease.renew(within=margin) and self.lease.granted_new:
                self._publish_self()
        return self.lease.lease_id is not None and self.lease.seconds_since_renewal() < margin

    def _publish_self(self) -> None:
        info = SentinelInfo(
            id=self.sentinel_id,
            host=socket.gethostname(),
            started_at=self.started_at,
            version=__version__,
        )
        assert self.lease.lease_id is not None
        try:
            self.store.publish_sentinel(info, self.lease.lease_id)
        except EtcdError as error:
            log.warning("cannot publish this sentinel: %s", error)

    def _campaign(self) -> None:
        assert self.lease.lease_id is not None
        leader = LeaderInfo(sentinel_id=self.sentinel_id, elected_at=self.clock())
        try:
            if self.store.campaign(leader, self.lease.lease_id):
                log.info("sentinel %s is now the leader", self.sentinel_id)
        except EtcdError as error:
            log.warning("cannot campaign for leadership: %s", error)

    def is_leader(self, view: ClusterView) -> bool:
        leader = view.leader
        return (
            leader is not None
            and leader.document.sentinel_id == self.sentinel_id
            and leader.lease == self.lease.lease_id
        )

    def _lead(self, view: ClusterView) -> None:
        decided_view, decide_again_at = self._decided or (None, 0.0)
        if decided_view is view and clock.monotonic() < decide_again_at:
            self._recheck_due = decide_again_at
            return  # decided on this very view, and no timer of that decision ran out
        if not self._inputs_are_sound(view) or view.spec is None:
            return
        assert view.leader is not None
        now, rearm_timers = self.leader_clock.reading((view.leader.mod_revision, view.leader.lease))
        observation = ClusterObservation(
            spec=view.spec.document,
            state=view.state.document if view.state else None,
            keepers={name: stored.document for name, stored in view.keepers.items()},
            proxies={name: stored.document for name, stored in view.proxies.items()},
            commands=view.commands,
            now=now,
            rearm_timers=rearm_timers,
            leadership_started_at=self.leader_clock.started_wall,
        )
        decision = decide(observation)
        self._recheck_due = clock.monotonic() + (decision.recheck_at - now)
        if decision.notes != self._last_notes:
            for note in decision.notes:
                log.info("%s", note)
            self._last_notes = decision.notes
        current = view.state.document if view.state else None
        try:
            if decision.state != current and not self._write_state(view, decision.state):
                return  # somebody else changed state: finish commands only once recorded
            if not observation.spec.paused:
                self.leader_clock.decision_stored()
            for name, mod_revision in decision.finished_commands:
                self.store.finish_command(name, mod_revision)
        except EtcdError as error:
            log.warning("cannot write the decision: %s", error)
            return
        self._decided = (view, min(self._recheck_due, clock.monotonic() + DECISION_REFRESH))

    def _write_state(self, view: ClusterView, state: ClusterState) -> bool:
        """Compare-and-swap the next state; False when the store changed first."""
        assert view.leader is not None
        expected = view.state.mod_revision if view.state else 0
        written = self.store.write_state(state, expected, leader_revision=view.leader.mod_revision)
        if written is None:
            log.info("state changed under us; deciding again on the new state")
            return False
        key = self.store.keys.single(KeyKind.STATE)
        self.follower.record_own_write(key, encode_document(state), written)
        return True

    def _inputs_are_sound(self, view: ClusterView) -> bool:
        """Never decide on a document we cannot read: report it (once) and wait.

        An undecodable keeper or proxy document is not an absent one: read as
        absent, a master's keeper would count as dead and fenced while its
        PostgreSQL may still accept writes (e.g. a newer keeper mid-upgrade).
        """
        keys = self.store.keys
        blocking_prefixes = (
            keys.single(KeyKind.SPEC),
            keys.single(KeyKind.STATE),
            keys.member_prefix(KeyKind.KEEPER),
            keys.member_prefix(KeyKind.PROXY),
        )
        problems = [p for p in view.problems if p.key.startswith(blocking_prefixes)]
        for problem in view.problems:
            if str(problem) not in self._reported_problems:
                self._reported_problems.add(str(problem))
                log.error("%s", problem)
        if problems and self._reported_problems != self._blocked_on:
            self._blocked_on = set(self._reported_problems)
            log.error("deciding nothing until the documents above can be read")
        if view.spec is None and not problems:
            log.debug("no spec yet: waiting for `rhizomectl init`")
        return not problems
