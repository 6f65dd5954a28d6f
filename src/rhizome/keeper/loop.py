"""The keeper's reconcile loop: watch the store, observe, plan, act, publish.

A watch thread (StoreFollower) keeps the cluster's keys current and wakes the
loop on every change; the postmaster's exit and a newly granted lease wake it
too. Each pass observes PostgreSQL, plans, publishes the observation (at once
when it changed, otherwise every 10 intervals) and carries out the first
planned action; the next pass starts from a fresh observation. With nothing to
do, the next pass comes after keeper_publish_interval, later while passes keep
finding nothing new; PostgreSQL is still asked every interval (pace.py).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time

from rhizome import clock
from rhizome.api.config import ApiConfig
from rhizome.etcd import EtcdError
from rhizome.etcd.client import LEASE_NOT_FOUND
from rhizome.fatal import die_on_thread_errors
from rhizome.keeper import (
    actions,
    datadir,
    departure,
    fencing,
    fencing_setup,
    handover,
    inputs,
    pace,
    pause_hold,
    postgres_log,
)
from rhizome.keeper.archive_catch_up import ArchiveCatchUp, catch_up_request, joined_problems
from rhizome.keeper.conffiles import keeper_archiving
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.config_check import ConfigurationCheck
from rhizome.keeper.config_gate import ConfigGate
from rhizome.keeper.database import KeptSession
from rhizome.keeper.failsafe import KeeperFailsafe
from rhizome.keeper.guard import Mode
from rhizome.keeper.guard_link import GuardLink, GuardLost, SystemdWatchdog
from rhizome.keeper.identity import KeeperPublisher, instance_id
from rhizome.keeper.lease import LeaseGuard, fencing_point, heartbeat_interval_of
from rhizome.keeper.plan import BaseBackup, LocalStatus, Plan, Stop, plan
from rhizome.keeper.postmaster import Postmaster, PostmasterExit, StopMode
from rhizome.keeper.report import keeper_info, same_report
from rhizome.keeper.seal import SealRecord
from rhizome.keeper.start_backoff import StartRecord
from rhizome.lease import LeaseHolder
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import KeeperInfo
from rhizome.store.follower import StoreFollower

log = logging.getLogger(__name__)

WAITING_RECHECK = 0.25
FAILURE_BACKOFF = 1.0
STARTUP_RETRY = 0.5


class Keeper:
    """One keeper: owns one PostgreSQL and its lease."""

    def __init__(self, keeper: KeeperConfig, store: ClusterStore, api: ApiConfig | None = None):
        self.config = keeper
        self.store = store
        self.wake = pace.LoopWake()
        self.stopping = threading.Event()
        self.follower = StoreFollower(store)
        self.failsafe = KeeperFailsafe(
            keeper.name, store, self.follower, api or ApiConfig(None), lambda: self.spec
        )
        self.guard = GuardLink(
            keeper.data_dir,
            keeper.state_dir / handover.GUARD_SOCKET,
            keeper.watchdog_device if keeper.watchdog != "off" else None,
            watchdog_required=keeper.watchdog == "required",
            on_report=self.wake.set,
        )
        self.systemd_watchdog = SystemdWatchdog()
        self.heartbeat_started = threading.Event()
        """The fencing watchdog thread pings systemd from now on (before: a startup thread)."""
        self.postmaster = Postmaster(
            keeper, self._postmaster_exited, self._arm_guard,
            spawn=self.guard.start_postmaster, exit_code=self.guard.exit_code,
        )  # fmt: skip
        self.restart_requested = False
        """SIGUSR2: leave PostgreSQL to the guard and run again (docs/fencing.md)."""
        self.handoff: handover.Handoff | None = None
        self.publisher: KeeperPublisher | None = None
        self.session = KeptSession(keeper)
        """The loop thread's observation session (closed while PostgreSQL is down)."""
        self.quiet = pace.QuietWait(keeper, self.session, self.wake)
        self.lease: LeaseGuard | None = None
        self.spec = ClusterSpec()
        self.role: str | None = None
        self.crashed_at: float | None = None
        self.rewinds = inputs.RewindMemory()
        self.acknowledged_generation = 0
        self.last_error: str | None = None
        self.observed: KeeperInfo | None = None  # the last observation, published or not (API)
        self.quiet_passes = 0  # passes in a row that found nothing new to do (pace.py)
        self.starts = StartRecord()  # failed starts back off (plan)
        self.seals = SealRecord()  # a master sealed for a cutover (seal.py)
        self.config_gate = ConfigGate(keeper)  # pg_parameters PostgreSQL refuses stay out
        self.configuration_check = ConfigurationCheck(keeper)
        self.hold_switch = pause_hold.HoldSwitch()
        self.archive = ArchiveCatchUp(keeper.data_dir, self.stopping)  # after a promotion
        self.passed_at = clock.monotonic()  # for the API: the loop's last pass
        self.heartbeat_at = -math.inf  # and the fencing watchdog's last tick

    def request_stop(self, restart: bool = False) -> None:
        self.restart_requested = restart  # the latest request counts: a stop ends a restart
        self.stopping.set()
        self.wake.set()

    def run(self) -> None:
        """Run until `request_stop()`; then stop PostgreSQL and revoke the lease."""
        threading.Thread(
            target=self._ping_systemd_until_heartbeat, name="systemd-startup-ping", daemon=True
        ).start()
        datadir.prepare_state_dir(self.config)
        self.publisher = KeeperPublisher(self.store, self.config.name, instance_id(self.config))
        self.publisher.check_name()  # NameTaken: another host runs a keeper of this name
        die_on_thread_errors(self._fence_now)
        taken = handover.take_over(
            self.config, self.guard, self.postmaster, self.publisher.own_instance
        )
        if taken is not None:
            self._adopt_lease(taken.handoff)
        if not self.postmaster.running and (self.config.data_dir / "PG_VERSION").exists():
            # We may be a restarted master whose lease expired while we were gone (or
            # whose PostgreSQL ended during the take-over): held back as after a crash.
            self.crashed_at = clock.monotonic()
        self.follower.start()
        self.archive.start()
        try:
            if self._start_lease() and self.lease is not None:
                threading.Thread(
                    target=inputs.relay_changes, name="watch-relay", daemon=True,
                    args=(self.config.name, self.follower, self.stopping, self.wake.set,
                          self.lease.note_own_document),
                ).start()  # fmt: skip
                self._loop()
        finally:
            self._shut_down()

    def _start_lease(self) -> bool:
        """Wait for the store, then hold a lease of the spec's TTL; False when asked to stop."""
        while not self.follower.synchronized:
            if self.stopping.wait(STARTUP_RETRY):
                return False
        self.spec = inputs.desired(self.config, self.follower.view()).spec
        timing = self.spec.timing
        fencing_setup.prepare_fencing(self.config, self.guard, self.systemd_watchdog, timing)
        if self.lease is None:
            holder = LeaseHolder(self.store.client, timing.keeper_lease_ttl)
            self._hold_lease(holder, timing.keeper_publish_interval, timing.fence_deadline)
        assert self.lease is not None
        while not self.lease.wait_for_lease(STARTUP_RETRY):
            if self.stopping.is_set():
                return False
        log.info("keeper %s holds lease %x", self.config.name, self.lease.lease_id or 0)
        return True

    def _hold_lease(self, holder: LeaseHolder, renew_interval: float, deadline: float) -> None:
        self.lease = LeaseGuard(
            holder, renew_interval, deadline, self._fence, self._new_lease, self._heartbeat,
            extension=self.failsafe.extension,
            heartbeat_interval=heartbeat_interval_of(renew_interval, self.systemd_watchdog.timeout),
            on_renewal=self.wake.tick,
        )  # fmt: skip
        self.lease.start()
        self.failsafe.start_asking(
            lambda: self.postmaster.running and self.postmaster.may_accept_writes,
            holder.seconds_since_renewal,
        )

    def _adopt_lease(self, handoff: handover.Handoff) -> None:
        holder = LeaseHolder(self.store.client, handoff.lease_ttl)
        outcome = handover.adopt_lease(handoff, holder, self.guard, self.postmaster)
        if outcome == "kept":
            self._hold_lease(holder, handoff.renew_interval, handoff.fence_deadline)
        elif outcome == "crashed":
            self.crashed_at = clock.monotonic()

    def _ping_systemd_until_heartbeat(self) -> None:
        """Before the lease is held nothing is writable: keep systemd's watchdog content."""
        while not self.heartbeat_started.wait(0.05):
            self.systemd_watchdog.ping()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            pause = self._pass()
            if pause > 0:
                interval = self.spec.timing.keeper_publish_interval
                self.quiet.wait(pause, interval, running=self.postmaster.running)

    def _pass(self) -> float:
        """One observe-plan-publish-act pass; returns how long to wait before the next."""
        assert self.lease is not None
        self.passed_at = clock.monotonic()
        view = self.follower.view()
        wish = self.config_gate.apply(inputs.desired(self.config, view))
        self.spec = wish.spec
        with contextlib.suppress(GuardLost):  # the heartbeat ends the keeper on a lost guard
            own_instance = self.publisher.own_instance if self.publisher is not None else None
            self.guard.set_mode(pause_hold.guard_mode(
                self.hold_switch, self.config.name, wish, view, own_instance
            ))  # fmt: skip
        self.role = wish.role
        if wish.role != "master":
            self.crashed_at = None
        running = self.postmaster.running
        if not running:
            self.session.close()
        sql = self.quiet.observe(running)  # first: it may find PostgreSQL not answering
        local = inputs.observe_local(
            self.config, wish, sql, self.session.unresponsive_for(), self.configuration_check,
            process_running=running,
            recovering_since=self._recovering_since(), rewind_outcome=self.rewinds.outcome(wish),
            lease_fresh=self.lease.fresh(),
            may_accept_writes=running and self.postmaster.may_accept_writes,
            fencing_problem=fencing.fencing_problem(
                self.config.watchdog, self.config.watchdog_device, self.guard.watchdog_problem
            ),
            start_failures=self.starts.failures, promotion_hold=self.failsafe.promotion_hold(),
            sealed_lsn=self.seals.current(wish.assignment),
        )  # fmt: skip
        self.config_gate.observed(local.sql.file_errors if local.sql else ())
        self.archive.offer(catch_up_request(self.config, wish.spec, local.sql))
        now = clock.monotonic()
        decided = plan(local, inputs.cluster_facts(self.config, wish, local, now))
        if decided.converged and wish.state is not None:
            self.acknowledged_generation = wish.state.generation
        if not decided.actions:
            self.last_error = decided.waiting or joined_problems(
                self.config_gate.problem, keeper_archiving(self.config, wish.spec).problem,
                self.archive.problem, self.configuration_check.tls_problem,
            )  # fmt: skip
        previous = self.observed
        observed = self._publish(local, stored=self.config.name in view.keepers)
        if not decided.actions:
            return self._idle_pause(decided, changed=not same_report(previous, observed))
        return self._act(decided, actions.ActionContext(
            self.config, self.postmaster, wish.spec, wish.request,
            lambda outcome: self.rewinds.record(wish, outcome), self.starts, self.seals,
        ))  # fmt: skip

    def _act(self, decided: Plan, context: actions.ActionContext) -> float:
        action = decided.actions[0]
        log.debug("next action: %s (plan %s)", action, decided.actions)
        try:
            actions.execute(action, context)
        except Exception as error:  # any failure is reported and retried
            self.last_error = f"{type(action).__name__}: {error}"
            log.error("action %s failed: %s", type(action).__name__, error)
            return FAILURE_BACKOFF
        self.quiet_passes = 0
        if isinstance(action, BaseBackup):
            self.rewinds.forget()
        if isinstance(action, Stop) and action.mode is StopMode.KILL:
            # like a crash: not restarted while the sentinel may fail over
            self.crashed_at = clock.monotonic()
        self.last_error = None
        return 0.0

    def _idle_pause(self, decided: Plan, changed: bool) -> float:
        """Until the next pass: sooner while something changes (pace.py)."""
        timing = self.spec.timing
        if decided.waiting is not None:
            self.quiet_passes = 0
            return min(WAITING_RECHECK, timing.keeper_publish_interval)
        self.quiet_passes = 0 if changed else self.quiet_passes + 1
        postgres_log.rotate_if_large(self.config)
        return pace.pass_pause(timing, self.quiet_passes)

    def _publish(self, local: LocalStatus, stored: bool) -> KeeperInfo:
        """Publish the observation when it changed, is not `stored` in the store, or is old;
        returns it."""
        assert self.lease is not None
        info = keeper_info(
            self.config, local, observed_at=time.time(),
            acknowledged_generation=self.acknowledged_generation,
            may_accept_writes=self.postmaster.may_accept_writes, last_error=self.last_error,
            instance_id=self.publisher.own_instance if self.publisher is not None else None,
            holding=self.hold_switch.holding(self.guard.mode), api_url=self.failsafe.api.url,
        )  # fmt: skip
        self.observed = info
        lease_id = self.lease.lease_id
        if lease_id is None or self.publisher is None:
            return info
        interval = self.spec.timing.keeper_publish_interval
        try:
            published = self.publisher.publish_if_due(info, lease_id, stored, interval)
        except EtcdError as error:
            log.warning("cannot publish the keeper document: %s", error)
            if LEASE_NOT_FOUND in str(error):
                self.lease.check_now()
            return info
        if published:
            self._write_handoff()
        return info

    def _write_handoff(self) -> None:
        """Keep handoff.json current for the next keeper (a killed one cannot write it)."""
        assert self.lease is not None and self.publisher is not None
        handoff = handover.handoff_of(
            self.lease, self.publisher.own_instance, self.config.data_dir,
            self.guard.pid, self.postmaster.pid,
        )  # fmt: skip
        if handoff != self.handoff:
            handover.write_handoff(self.config.state_dir / handover.HANDOFF_FILE, handoff)
            self.handoff = handoff

    def _recovering_since(self) -> float | None:
        """Since when the cluster may be failing over from this (master) keeper."""
        lost_at = self.lease.lost_at if self.lease is not None else None
        times = [moment for moment in (self.crashed_at, lost_at) if moment is not None]
        return max(times) if times else None

    def _postmaster_exited(self, ended: PostmasterExit) -> None:
        """From the postmaster's watch thread: a master's crash holds back its restart."""
        if not ended.expected and self.role in ("master", None):  # None: before the 1st pass
            self.crashed_at = ended.at
        self.wake.set()

    def _new_lease(self) -> None:
        if self.publisher is not None:
            self.publisher.republish = True
        self.wake.set()

    def _fence(self, seconds_since_renewal: float, kill_at: float) -> None:
        """From the watchdog: stop a PostgreSQL that may accept writes, by kill_at.

        The fence comes first and the log after: a blocked log sink cannot delay it.
        """
        if not (self.postmaster.running and self.postmaster.may_accept_writes):
            return
        assert self.lease is not None
        renewed_at = self.lease.renewed_at()
        self.postmaster.fence(kill_at)
        since = clock.monotonic() - renewed_at
        log.error(
            "FENCED: PostgreSQL stopped %.3f s after the last lease renewal (fencing started"
            " %.2f s after it; fence deadline %.1f s)",
            since, seconds_since_renewal, self.spec.timing.fence_deadline,
        )  # fmt: skip
        self.wake.set()

    def _heartbeat(self, deadline: float | None) -> None:
        """From the watchdog, every tick: feed the guard and systemd's watchdog (no
        deadline before the first renewal: the guard keeps what it was given)."""
        self.heartbeat_started.set()
        self.heartbeat_at = clock.monotonic()
        self.systemd_watchdog.ping()
        if not self.guard.alive:
            raise GuardLost("the fencing guard process ended")
        if not self.postmaster.may_accept_writes:
            self.guard.disarm()
        elif deadline is not None:
            self.guard.arm(deadline)

    def _arm_guard(self) -> None:
        """PostgreSQL is about to accept writes: the guard holds it to the lease first."""
        assert self.lease is not None, "no primary runs before the lease is held"
        self.guard.arm(self.lease.holder.renewed_at + self.lease.fence_deadline)

    def _fence_now(self) -> None:
        """Last words before the process ends on an unexpected error: kill a writable PostgreSQL."""
        if self.postmaster.may_accept_writes:
            self.postmaster.kill()

    def _shut_down(self) -> None:
        way = departure.departure(
            restart_requested=self.restart_requested,
            systemd_restarting=not self.restart_requested and departure.systemd_restarting(),
            paused=pause_hold.departs_holding(
                self.hold_switch, self.guard.mode, self.follower.view(), self.config.name
            ),
        )  # fmt: skip
        alive = self.lease is not None and self.guard.alive
        if way != "stop" and alive and self._leave_running(way):
            return
        self.restart_requested = False
        log.info("keeper %s stopping", self.config.name)
        self.session.close()
        try:
            self.postmaster.stop(StopMode.FAST)
        finally:
            # The lease threads end first: their heartbeat must not find the guard gone.
            # A PostgreSQL that could not be stopped keeps the lease and the guard,
            # which kills it once this process has ended (end of its input while armed).
            fenced = not (self.postmaster.running and self.postmaster.may_accept_writes)
            if self.lease is not None:
                self.lease.stop(revoke=fenced)
            if fenced:
                self.guard.stop()
            self.follower.stop()
            self.failsafe.stop()

    def _leave_running(self, way: Mode) -> bool:
        """Leave PostgreSQL and the lease to the guard and the next keeper (detach, hold).

        The guard learns the mode first (it keeps the deadline in force). One last
        keepalive, never a new lease: the next keeper's window starts now. False
        (stop instead) when the lease is gone under a writable PostgreSQL.
        """
        assert self.lease is not None
        log.info("keeper %s leaving PostgreSQL running (%s)", self.config.name, way)
        self.guard.set_mode(way)
        self.session.close()
        self.lease.stop(revoke=False)
        holder = self.lease.holder
        kept = holder.keep(fencing_point(self.lease.fence_deadline))
        writable = self.postmaster.may_accept_writes
        if way == "detach" and writable and holder.lease_id is None:
            log.error("the lease is gone: stopping PostgreSQL instead of leaving it running")
            self.guard.set_mode("normal")
            return False
        if kept and writable:
            self.guard.arm(holder.renewed_at + self.lease.fence_deadline)
        self.handoff = None
        self._write_handoff()
        self.guard.leave(way)
        self.follower.stop()
        self.failsafe.stop()
        return True
