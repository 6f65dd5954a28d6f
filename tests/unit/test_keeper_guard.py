"""The fencing guard's pieces that need no PostgreSQL: its state, the heartbeat link,
systemd's watchdog ping, the name check, and the last words of a dying agent.

The guard killing a real PostgreSQL is tested in tests/integration/test_keeper_fencing.py.
"""

from __future__ import annotations

import itertools
import math
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.guard import GuardState
from rhizome.keeper.guard_link import GuardLink, GuardLost, SystemdWatchdog
from rhizome.keeper.identity import holder_problem
from rhizome.keeper.lease import (
    WATCHDOG_INTERVAL,
    LeaseGuard,
    heartbeat_interval_of,
    own_key_vanished,
    watchdog_sleep,
)
from rhizome.keeper.postmaster import Postmaster, TrackedProcess
from rhizome.store.documents import KeeperInfo


def test_guard_state_follows_the_keepers_lines():
    state = GuardState()
    assert state.wait_time(now=10.0) is None  # disarmed: waits for the keeper only
    state.receive("arm 12.5")
    assert state.wait_time(now=10.0) == 2.5
    assert state.wait_time(now=13.0) == 0.0  # overdue: fire at once
    state.receive("disarm")
    assert state.wait_time(now=13.0) is None
    state.receive("stop")
    assert state.stopping


@pytest.mark.parametrize("line", ["arm", "arm soon", "fire", "arm 1 2"])
def test_guard_state_refuses_a_malformed_line(line):
    with pytest.raises(ValueError, match="unexpected line from the keeper"):
        GuardState().receive(line)


def test_guard_link_sends_only_changes_and_ends_the_guard(tmp_path: Path):
    link = GuardLink(tmp_path, tmp_path / "guard.sock")
    link.start()
    try:
        assert link.alive
        link.arm(1e12)  # far away: nothing fires
        link.arm(1e12)
        link.disarm()
        link.disarm()
    finally:
        link.stop()
    assert not link.alive
    with pytest.raises(GuardLost, match="not running"):
        link.arm(1e12)


def test_systemd_watchdog_pings_the_notify_socket_at_most_every_quarter(tmp_path: Path):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(path))
        notify.settimeout(1.0)
        watchdog = SystemdWatchdog({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        watchdog.ping()
        watchdog.ping()  # within 0.5 s of the first: not sent
        assert notify.recv(64) == b"WATCHDOG=1"
        notify.settimeout(0.2)
        with pytest.raises(TimeoutError):
            notify.recv(64)


def test_systemd_watchdog_takes_its_settings_out_of_the_environment_children_inherit():
    environment = {"NOTIFY_SOCKET": "/run/notify", "WATCHDOG_USEC": "2000000", "HOME": "/"}
    assert SystemdWatchdog(environment).timeout == 2.0
    assert environment == {"HOME": "/"}


def test_systemd_watchdog_does_nothing_without_watchdog_settings():
    assert SystemdWatchdog({}).timeout is None
    assert SystemdWatchdog({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).timeout is None


def document(instance: str | None) -> KeeperInfo:
    return KeeperInfo(
        name="k1", host="10.0.0.1", port=5432, observed_at=0.0, running=True, healthy=True,
        instance_id=instance,
    )  # fmt: skip


def test_a_name_is_taken_only_by_another_instance():
    assert holder_problem("k1", "mine", document("mine")) is None
    assert holder_problem("k1", "mine", document(None)) is None  # an older keeper's document
    problem = holder_problem("k1", "mine", document("theirs"))
    assert problem is not None
    assert "keeper name 'k1' is already used" in problem
    assert "instance theirs, PostgreSQL at 10.0.0.1:5432" in problem
    assert "change 'name' in this keeper's configuration" in problem


DYING_AGENT = textwrap.dedent(
    """
    import logging, sys, threading, time
    from rhizome.fatal import die_on_thread_errors

    class Blocked(logging.Handler):
        def emit(self, record):
            time.sleep(3600)  # a log sink that never returns

    logging.getLogger().addHandler(Blocked())
    die_on_thread_errors(lambda: print("fenced", flush=True))
    threading.Thread(target=lambda: 1 / 0, name="lease-renewer").start()
    time.sleep(30)
    print("still alive", flush=True)
    """
)


def test_a_thread_that_dies_fences_and_ends_the_process_even_when_logging_blocks():
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", DYING_AGENT], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 70
    assert result.stdout == "fenced\n"
    assert time.monotonic() - started < 10


def test_the_exit_of_an_old_postmaster_leaves_the_new_ones_write_flag_alone(tmp_path: Path):
    """Hole 5: the old postmaster's exit watcher ran after a new primary was started."""
    exits = []
    postmaster = Postmaster(keeper_config(tmp_path), exits.append)
    old_process = subprocess.Popen(["sleep", "30"])
    new_process = subprocess.Popen(["sleep", "30"])
    try:
        old = TrackedProcess(old_process.pid)
        old_process.kill()
        old_process.wait()
        postmaster._process = TrackedProcess(new_process.pid)
        postmaster.may_accept_writes = True
        postmaster._watch(old)  # late: the old one ended before the new one started
        assert postmaster.may_accept_writes
        assert exits == []
    finally:
        new_process.kill()
        new_process.wait()


def keeper_config(tmp_path: Path) -> KeeperConfig:
    return KeeperConfig(
        name="k1", data_dir=tmp_path / "data", state_dir=tmp_path / "state",
        socket_dir=tmp_path / "state", host="127.0.0.1", port=5432,
        listen_addresses="127.0.0.1", bin_dir=tmp_path, superuser="postgres",
        replication_user="replicator", superuser_password="x", replication_password="y",
    )  # fmt: skip


class FlakyHolder:
    """A lease holder whose first renewals fail (etcd electing a leader)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[float] = []
        self.lease_id: int | None = 1
        self.renewed_at = time.monotonic()
        self.granted_new = False

    def renew(self, within: float | None = None) -> bool:
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            return False
        self.renewed_at = time.monotonic()
        return True

    def seconds_since_renewal(self) -> float:
        return time.monotonic() - self.renewed_at


def test_a_failed_renewal_is_retried_well_before_the_next_interval_and_ticks_nothing():
    holder = FlakyHolder(failures=2)
    ticks: list[float] = []
    guard = LeaseGuard(holder, 1.0, 3.5, lambda since, kill_at: None, lambda: None,  # type: ignore[arg-type]
                       on_renewal=lambda: ticks.append(time.monotonic()))  # fmt: skip
    guard.start()
    try:
        deadline = time.monotonic() + 3
        while len(holder.calls) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        guard.stop(revoke=False)
    gaps = [later - earlier for earlier, later in itertools.pairwise(holder.calls)]
    assert gaps[0] < 0.4 and gaps[1] < 0.4  # retries after failures
    assert gaps[2] > 0.8  # back to the interval once renewed
    assert len(ticks) == len(holder.calls) - 2, "only a successful renewal ticks the loop"
    assert ticks[0] >= holder.calls[2]


class RevocableHolder:
    """A lease holder whose lease etcd revokes while it renews it (a thawed old etcd leader)."""

    def __init__(self) -> None:
        self.lease_id: int | None = 7
        self.renewed_at = time.monotonic()
        self.granted_new = False
        self.revoked = False
        self.calls = 0
        self.failed_at: list[float] = []

    def renew(self, within: float | None = None) -> bool:
        self.calls += 1
        if self.revoked:
            self.lease_id = None
            self.failed_at.append(time.monotonic())
            return False
        self.renewed_at = time.monotonic()
        return True

    def seconds_since_renewal(self) -> float:
        return time.monotonic() - self.renewed_at if self.lease_id else math.inf


def test_a_check_request_renews_at_once_and_a_revoked_lease_fences_without_waiting():
    holder = RevocableHolder()
    fences: list[float] = []
    guard = LeaseGuard(holder, 10.0, 3.5, lambda since, kill_at: fences.append(time.monotonic()),  # type: ignore[arg-type]
                       lambda: None)  # fmt: skip
    guard.start()
    try:
        assert guard.wait_for_lease(1)
        holder.revoked = True
        asked_at = time.monotonic()
        guard.check_now()
        deadline = asked_at + 2
        while not fences and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        guard.stop(revoke=False)
    assert guard.lost_at is not None and guard.lost_at - asked_at < 0.2
    assert fences and fences[0] - asked_at < 0.3, "the revoked lease waited for the next interval"


def test_the_watchdog_sleeps_until_the_fencing_point_and_no_further():
    assert watchdog_sleep(since=0.0, threshold=2.5, heartbeat_interval=1.25) == 1.25
    assert watchdog_sleep(since=2.4, threshold=2.5, heartbeat_interval=1.25) == pytest.approx(0.1)
    assert watchdog_sleep(since=2.499999, threshold=2.5, heartbeat_interval=1.25) == (
        WATCHDOG_INTERVAL / 2
    )
    assert watchdog_sleep(since=2.5, threshold=2.5, heartbeat_interval=1.25) == WATCHDOG_INTERVAL
    assert watchdog_sleep(since=math.inf, threshold=2.5, heartbeat_interval=1.25) == (
        WATCHDOG_INTERVAL
    )
    assert watchdog_sleep(since=0.0, threshold=2.5, heartbeat_interval=0.25) == 0.25


def test_the_watchdog_sleeps_a_little_longer_than_a_renewal_and_pings_systemd_in_time():
    assert heartbeat_interval_of(1.0, None) == 1.25  # the renewal's wake comes first
    assert heartbeat_interval_of(1.0, 2.0) == 1.25  # 0.75 s of WatchdogSec left for a stall
    assert heartbeat_interval_of(1.0, 1.0) == 0.625
    assert heartbeat_interval_of(0.5, 2.0) == 0.75


def test_in_steady_state_the_watchdog_ticks_once_per_renewal():
    holder = FlakyHolder(failures=0)
    beats: list[float] = []
    guard = LeaseGuard(holder, 0.6, 3.5, lambda since, kill_at: None, lambda: None, beats.append)  # type: ignore[arg-type]
    guard.start()
    try:
        time.sleep(2.0)
    finally:
        guard.stop(revoke=False)
    renewals = len(holder.calls)
    assert renewals >= 3
    assert len(beats) <= renewals + 1, f"{len(beats)} ticks for {renewals} renewals"


def test_the_renewer_wakes_the_sleeping_watchdog_when_the_lease_is_lost():
    holder = RevocableHolder()
    fences: list[float] = []
    guard = LeaseGuard(holder, 10.0, 30.0, lambda since, kill_at: fences.append(time.monotonic()),  # type: ignore[arg-type]
                       lambda: None)  # fmt: skip
    guard.start()
    try:
        assert guard.wait_for_lease(1)
        time.sleep(0.1)  # the watchdog sleeps: its fencing point is 29 s away
        holder.revoked = True
        guard.check_now()
        deadline = time.monotonic() + 2
        while not fences and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        guard.stop(revoke=False)
    assert fences and holder.failed_at
    assert fences[0] - holder.failed_at[0] < 0.05, "the watchdog slept on after the lease was lost"


def watch_revoked_lease(extension: float) -> tuple[list[float], list[float]]:
    """Fences and heartbeat deadlines of a guard whose lease is revoked, for 0.3 s."""
    holder = RevocableHolder()
    fences: list[float] = []
    beats: list[float] = []
    guard = LeaseGuard(holder, 10.0, 3.5, lambda since, kill_at: fences.append(kill_at),  # type: ignore[arg-type]
                       lambda: None, beats.append, extension=lambda: extension)  # fmt: skip
    guard.start()
    try:
        assert guard.wait_for_lease(1)
        holder.revoked = True
        guard.check_now()
        time.sleep(0.3)
    finally:
        guard.stop(revoke=False)
    return fences, beats


def test_a_lost_lease_fences_at_once_and_the_guard_only_ever_gets_finite_deadlines():
    fences, beats = watch_revoked_lease(extension=-math.inf)
    assert fences, "a lost lease fences at once"
    assert beats and all(map(math.isfinite, beats)), "the guard refuses `arm -inf` and ends"


def test_a_complete_failsafe_round_keeps_a_master_whose_lease_was_lost():
    fences, beats = watch_revoked_lease(extension=time.monotonic() + 0.5)
    assert not fences and all(map(math.isfinite, beats))


@pytest.mark.parametrize(
    ("before", "now", "held", "vanished"),
    [
        (7, None, 7, True),  # our document on our lease is gone
        (7, 7, 7, False),  # still there
        (None, None, 7, False),  # not published yet
        (5, None, 7, False),  # the document of an older lease, replaced since
        (7, None, None, False),  # we know the lease is gone already
        (None, 7, 7, False),  # just published
    ],
)
def test_own_key_vanished_only_when_our_document_leaves_our_current_lease(
    before, now, held, vanished
):
    assert own_key_vanished(before, now, held) is vanished


class FreshHolder:
    """A lease holder that never renewed (a keeper restarted after its lease expired):
    its first renewal, a grant, takes 0.3 s."""

    def __init__(self) -> None:
        self.lease_id: int | None = None
        self.renewed_at = 0.0
        self.granted_new = False

    def renew(self, within: float | None = None) -> bool:
        time.sleep(0.3)
        self.lease_id, self.renewed_at, self.granted_new = 9, time.monotonic(), True
        return True

    def seconds_since_renewal(self) -> float:
        return time.monotonic() - self.renewed_at if self.lease_id else math.inf


def test_the_guard_gets_no_deadline_before_the_first_renewal():
    """A deadline counted from a lease never renewed lies in the past: a guard holding a
    paused master would kill it when it left `hold` (CI, test_etcd_api_move)."""
    holder = FreshHolder()
    beats: list[float | None] = []
    guard = LeaseGuard(holder, 10.0, 3.5, lambda since, kill_at: None, lambda: None,  # type: ignore[arg-type]
                       beats.append)  # fmt: skip
    guard.start()
    try:
        assert guard.wait_for_lease(2)
        time.sleep(0.1)
    finally:
        guard.stop(revoke=False)
    assert beats[0] is None, "a deadline before any renewal"
    given = [deadline for deadline in beats if deadline is not None]
    assert given and all(deadline == holder.renewed_at + 3.5 for deadline in given)
