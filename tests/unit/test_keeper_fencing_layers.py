"""The fencing layers outside the keeper, without PostgreSQL: systemd's watchdog
timing check, the kernel watchdog's timeout and ping schedule, the mode decision,
and the guard holding a device (a fake one: no real watchdog is ever opened here).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from rhizome.keeper.fencing import (
    KernelWatchdogTiming,
    fencing_problem,
    kernel_watchdog_timing,
    systemd_watchdog_limit,
    systemd_watchdog_problem,
)
from rhizome.keeper.guard import GuardState
from rhizome.keeper.guard_device import DeviceHolder
from rhizome.keeper.guard_link import GuardLink, SystemdWatchdog
from rhizome.keeper.kernel_watchdog import KernelWatchdog, PingSchedule, WatchdogUnusable
from rhizome.keeper.loop import Keeper
from rhizome.spec import FENCE_MARGIN, TimingSettings

DEFAULTS = TimingSettings()


def test_systemd_watchdog_of_two_seconds_fits_the_default_timings():
    assert systemd_watchdog_limit(DEFAULTS) == 2.0  # 5 - 0.5 - fencing point 2.5
    assert systemd_watchdog_problem(2.0, DEFAULTS) is None
    assert systemd_watchdog_problem(None, DEFAULTS) is None  # not run by systemd


def test_a_systemd_watchdog_too_long_for_the_lease_is_named_with_its_fix():
    problem = systemd_watchdog_problem(3.0, DEFAULTS)
    assert problem is not None
    assert "WatchdogSec=3s is too long" in problem
    assert "set WatchdogSec= to 2 s or less (Ansible: keeper_systemd_watchdog_sec)" in problem


def test_a_systemd_watchdog_too_short_to_survive_a_stall_is_named():
    problem = systemd_watchdog_problem(0.5, DEFAULTS)
    assert problem is not None and "too short" in problem and "1 s or more" in problem


def test_timings_without_room_for_systemds_watchdog_say_which_timing_to_change():
    tight = TimingSettings(keeper_lease_ttl=2.0, fence_deadline=1.5, keeper_publish_interval=0.5)
    assert systemd_watchdog_limit(tight) == pytest.approx(0.6)  # 2 - 0.5 - 0.9
    problem = systemd_watchdog_problem(1.0, tight)
    assert problem is not None and "raise timing.keeper_lease_ttl" in problem


def test_kernel_watchdog_timeout_for_the_default_timings():
    assert kernel_watchdog_timing(DEFAULTS) == KernelWatchdogTiming(timeout=2, reset_offset=1.0)


def test_kernel_watchdog_timeout_grows_with_the_lease():
    timing = kernel_watchdog_timing(TimingSettings(keeper_lease_ttl=10.0, fence_deadline=3.5))
    assert timing == KernelWatchdogTiming(timeout=7, reset_offset=6.0)


def test_timings_too_tight_for_whole_seconds_refuse_the_kernel_watchdog():
    problem = kernel_watchdog_timing(TimingSettings(keeper_lease_ttl=4.0, fence_deadline=3.5))
    assert isinstance(problem, str)
    assert "whole seconds" in problem and "raise timing.keeper_lease_ttl" in problem


@pytest.mark.parametrize(
    "timing",
    [
        DEFAULTS,
        TimingSettings(keeper_lease_ttl=10.0, fence_deadline=3.5),
        TimingSettings(keeper_lease_ttl=8.0, fence_deadline=6.0, keeper_publish_interval=2.0),
        TimingSettings(keeper_lease_ttl=30.0, fence_deadline=20.0, keeper_publish_interval=5.0),
    ],
)
def test_pinging_as_scheduled_resets_after_the_guard_and_before_the_lease(timing):
    """Simulate renewals, then silence: the reset lands between the guard's deadline and
    keeper_lease_ttl - FENCE_MARGIN after the last renewal; every renewal answered before
    the fencing point could be pinged at once."""
    kernel = kernel_watchdog_timing(timing)
    assert isinstance(kernel, KernelWatchdogTiming)
    schedule = PingSchedule(kernel.timeout, kernel.reset_offset)
    renewals = [0.0, 1.0, 2.0, 3.0]
    last_ping = -1e9
    now = 0.0
    for renewed_at in renewals:
        deadline = renewed_at + timing.fence_deadline
        slow_answer = renewed_at + timing.fence_deadline - 1.0  # answered late, before fencing
        assert schedule.next_ping(slow_answer, deadline, last_ping) is not None
        now = renewed_at
        while (due := schedule.next_ping(now, deadline, last_ping)) is not None:
            if renewed_at != renewals[-1] and due >= renewed_at + 1.0:
                break  # the next renewal comes first
            now = max(now, due)
            last_ping = now
            now += 0.001
    reset_at = last_ping + kernel.timeout
    last = renewals[-1]
    assert reset_at <= last + timing.keeper_lease_ttl - FENCE_MARGIN + 1e-9
    assert reset_at >= last + timing.fence_deadline + 0.25 - 1e-9


def test_only_a_required_watchdog_blocks_a_primary():
    device = Path("/dev/watchdog")
    assert fencing_problem("off", device, "cannot open") is None
    assert fencing_problem("automatic", device, "cannot open") is None
    assert fencing_problem("required", device, None) is None
    problem = fencing_problem("required", device, "cannot open /dev/watchdog: No such file")
    assert problem is not None
    assert "/dev/watchdog is unusable: cannot open /dev/watchdog" in problem
    assert 'set watchdog = "automatic"' in problem and "modprobe softdog" in problem


def test_a_file_that_is_no_watchdog_is_refused_and_left_closed(tmp_path: Path):
    fake = tmp_path / "watchdog"
    fake.write_text("")
    device = KernelWatchdog(fake)
    with pytest.raises(WatchdogUnusable, match="is not a usable watchdog device"):
        device.open(2)
    assert not device.is_open
    assert fake.read_text() == "V"  # closed the way a real device is disabled


def test_a_missing_device_is_refused(tmp_path: Path):
    with pytest.raises(WatchdogUnusable, match=r"cannot open .*No such file or directory"):
        KernelWatchdog(tmp_path / "none").open(2)


class FakeDevice(KernelWatchdog):
    """Records opens, pings and closes; fails on demand."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(Path("/fake/watchdog"))
        self.fail = fail
        self.events: list[str] = []
        self.opened = False

    @property
    def is_open(self) -> bool:
        return self.opened

    def open(self, timeout: int) -> None:
        if self.fail:
            raise WatchdogUnusable("cannot open /fake/watchdog: Device or resource busy")
        self.opened = True
        self.events.append(f"open {timeout}")

    def ping(self) -> None:
        self.events.append("ping")

    def close(self) -> None:
        if self.opened:
            self.events.append("close")
        self.opened = False


def armed(deadline: float) -> GuardState:
    state = GuardState()
    state.receive("watchdog 2 1.0")
    state.receive(f"arm {deadline}")
    return state


def test_the_guard_holds_the_device_only_while_armed():
    device = FakeDevice()
    answers: list[str] = []
    holder = DeviceHolder(device, answer=answers.append)
    state = armed(deadline=3.5)
    holder.test(PingSchedule(2, 1.0))
    assert answers == ["watchdog ready"]
    assert device.events == ["open 2", "close"]  # tested, then disabled
    assert holder.tend(0.0, state) is None
    assert holder.wait_time(0.0, state) == 0.5  # a quarter of the timeout
    assert holder.tend(0.5, state) is None
    assert holder.tend(2.6, state) is None  # past 3.5 + 1 - 2: no ping any more
    assert holder.wait_time(2.6, state) is None
    state.receive("disarm")
    holder.tend(2.7, state)
    assert device.events == ["open 2", "close", "open 2", "ping", "close"]


def test_a_required_device_that_fails_while_armed_makes_the_guard_fire():
    device = FakeDevice(fail=True)
    answers: list[str] = []
    holder = DeviceHolder(device, required=True, answer=answers.append)
    holder.usable = True  # it worked when tested
    reason = holder.tend(0.0, armed(deadline=3.5))
    assert reason is not None and "the kernel watchdog failed" in reason
    assert any("watchdog unusable cannot open /fake/watchdog" in line for line in answers)
    assert holder.tend(0.1, armed(deadline=3.6)) is not None  # and at every later arm


def test_an_automatic_device_that_fails_lets_the_guard_run_without_it():
    answers: list[str] = []
    holder = DeviceHolder(FakeDevice(fail=True), answer=answers.append)
    holder.test(PingSchedule(2, 1.0))
    assert any("watchdog unusable" in line for line in answers)
    assert holder.tend(0.0, armed(deadline=3.5)) is None


@pytest.mark.parametrize(
    ("device", "expected"),
    [("/dev/null", "is not a usable watchdog device"), ("/nonexistent", "cannot open")],
)
def test_the_guard_process_tells_the_keeper_why_a_device_is_unusable(device, expected, tmp_path):
    link = GuardLink(tmp_path, tmp_path / "guard.sock", Path(device), watchdog_required=True)
    link.start()
    try:
        problem = link.test_watchdog(2, 1.0)
    finally:
        link.stop()
    assert problem is not None and expected in problem and device in problem


def test_systemd_is_pinged_before_the_fencing_thread_runs_and_not_after(tmp_path: Path):
    """Start-up (waiting for etcd, the lease, a stray postmaster) can outlast WatchdogSec:
    a start-up thread pings until the fencing watchdog thread takes over."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(path))
        keeper = Keeper.__new__(Keeper)  # only the two attributes the start-up pinger uses
        keeper.systemd_watchdog = SystemdWatchdog(
            {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"}
        )
        keeper.heartbeat_started = threading.Event()
        pinger = threading.Thread(target=keeper._ping_systemd_until_heartbeat, daemon=True)
        pinger.start()
        notify.settimeout(1.0)
        pings = [notify.recv(64) for _ in range(4)]  # 4 pings: 0.15 s or more, under 1 s each
        assert pings == [b"WATCHDOG=1"] * 4
        keeper.heartbeat_started.set()
        pinger.join(1.0)
        assert not pinger.is_alive()
