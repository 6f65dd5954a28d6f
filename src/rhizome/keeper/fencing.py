"""Timings and decisions of the fencing layers outside the keeper (pure; docs/fencing.md).

With the default timings (fence_deadline 3.5 s, keeper_lease_ttl 5 s) a
master keeper starts fencing 2.5 s after its last lease renewal (its fencing
point), the guard kills PostgreSQL at 3.5 s, and the lease expires at 5 s;
every fence must land by keeper_lease_ttl - FENCE_MARGIN = 4.5 s.

- systemd's watchdog (WatchdogSec=) kills a keeper that has not pinged for
  WatchdogSec. A keeper frozen before its fencing point is killed by
  fencing point + WatchdogSec, so WatchdogSec <= 4.5 - 2.5 = 2 s.
- The kernel watchdog resets the host `timeout` whole seconds after the
  guard's last ping. The guard must be able to ping on any renewal answered
  before the fencing point: timeout <= 4.5 - 2.5 = 2 s; and the reset must
  come after the guard's own deadline by MINIMUM_GUARD_TIME (see
  kernel_watchdog.PingSchedule): reset_offset - timeout / 4 >= 0.25 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rhizome.keeper.lease import SYSTEMD_PING_SHARE, fencing_point
from rhizome.spec import FENCE_MARGIN, TimingSettings

WatchdogMode = Literal["off", "automatic", "required"]
WATCHDOG_MODES: tuple[WatchdogMode, ...] = ("off", "automatic", "required")
MINIMUM_SYSTEMD_WATCHDOG = 1.0
"""Seconds: the keeper pings at least every 5/8 of WatchdogSec (lease.SYSTEMD_PING_SHARE),
so a shorter one restarts the keeper (and fails over its master) on a stall of well
under a second."""
MINIMUM_GUARD_TIME = 0.25
"""Seconds the guard keeps, after its deadline, to kill PostgreSQL and disable
the kernel watchdog before the host would reset."""


def fence_by(timing: TimingSettings) -> float:
    """Seconds after the last renewal by which every fence must have landed."""
    return timing.keeper_lease_ttl - FENCE_MARGIN


def systemd_watchdog_limit(timing: TimingSettings) -> float:
    """The longest WatchdogSec that kills a frozen keeper before its lease can expire."""
    return fence_by(timing) - fencing_point(timing.fence_deadline)


def systemd_watchdog_problem(watchdog_seconds: float | None, timing: TimingSettings) -> str | None:
    """What is wrong with systemd's WatchdogSec (WATCHDOG_USEC) for these timings; None: fine."""
    if watchdog_seconds is None:
        return None
    limit = systemd_watchdog_limit(timing)
    if limit < MINIMUM_SYSTEMD_WATCHDOG:
        return (
            f"systemd's WatchdogSec={watchdog_seconds:g}s cannot back up the fence with these"
            f" timings: keeper_lease_ttl ({timing.keeper_lease_ttl}) - {FENCE_MARGIN} s - the"
            f" fencing point ({fencing_point(timing.fence_deadline):g} s) leaves {limit:g} s, under"
            f" {MINIMUM_SYSTEMD_WATCHDOG:g} s; raise timing.keeper_lease_ttl or lower"
            " timing.fence_deadline"
        )
    if watchdog_seconds > limit:
        return (
            f"systemd's WatchdogSec={watchdog_seconds:g}s is too long: a frozen keeper must be"
            f" killed within keeper_lease_ttl ({timing.keeper_lease_ttl}) - {FENCE_MARGIN} s -"
            f" the fencing point ({fencing_point(timing.fence_deadline):g} s) = {limit:g} s;"
            f" set WatchdogSec= to {limit:g} s or less (Ansible: keeper_systemd_watchdog_sec)"
        )
    if watchdog_seconds < MINIMUM_SYSTEMD_WATCHDOG:
        return (
            f"systemd's WatchdogSec={watchdog_seconds:g}s is too short: a stall of"
            f" {watchdog_seconds * (1 - SYSTEMD_PING_SHARE):g} s restarts the keeper; set"
            f" WatchdogSec= to {MINIMUM_SYSTEMD_WATCHDOG:g} s or more (Ansible:"
            " keeper_systemd_watchdog_sec)"
        )
    return None


@dataclass(frozen=True)
class KernelWatchdogTiming:
    timeout: int
    """Whole seconds after the guard's last ping at which the host resets."""
    reset_offset: float
    """Seconds from the guard's deadline to the latest moment a reset may land."""


def kernel_watchdog_timing(timing: TimingSettings) -> KernelWatchdogTiming | str:
    """The kernel watchdog's timeout for these timings, or why none fits."""
    reset_offset = fence_by(timing) - timing.fence_deadline
    room = min(
        fence_by(timing) - fencing_point(timing.fence_deadline),
        4 * (reset_offset - MINIMUM_GUARD_TIME),
    )
    timeout = math.floor(room + 1e-9)
    if timeout < 1:
        return (
            f"the timings leave {max(room, 0.0):.2f} s for the kernel watchdog's timeout, which"
            " counts whole seconds (1 s or more): raise timing.keeper_lease_ttl or lower"
            " timing.fence_deadline (see docs/fencing.md)"
        )
    return KernelWatchdogTiming(timeout, reset_offset)


def fencing_problem(mode: WatchdogMode, device: Path, problem: str | None) -> str | None:
    """Why this keeper may not run a primary (None: it may), from the kernel watchdog's state.

    `problem` is why the device is unusable (None: it works). Only `required`
    blocks a primary; `automatic` runs without the device (the keeper warns).
    """
    if mode != "required" or problem is None:
        return None
    return (
        f'the kernel watchdog is required ([keeper] watchdog = "required") but {device} is'
        f" unusable: {problem}; not running a primary. Fix: load a watchdog driver (e.g."
        f" modprobe softdog), give the keeper's OS user write access to {device}, then restart"
        ' the keeper; or set watchdog = "automatic"'
    )
