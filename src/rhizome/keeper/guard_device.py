"""The fencing guard's hold on the kernel watchdog (kernel_watchdog.py).

While the guard enforces a deadline the device is held open and pinged
(PingSchedule); otherwise — disarmed, holding under pause, stopped — it is
disabled with the magic close. Stdlib only, like the guard itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rhizome.keeper.kernel_watchdog import KernelWatchdog, PingSchedule, WatchdogUnusable


class Enforcing(Protocol):
    """What the holder reads of the guard's state (guard.GuardState)."""

    @property
    def enforced_deadline(self) -> float | None: ...

    @property
    def schedule(self) -> PingSchedule | None: ...


class DeviceHolder:
    """The kernel watchdog, held open and pinged while the guard enforces a deadline."""

    def __init__(
        self,
        device: KernelWatchdog | None = None,
        required: bool = False,
        answer: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.device = device
        self.required = required
        self.answer = answer
        """Sends one line to the keeper attached now (none attached: dropped)."""
        self.usable = False
        self.last_ping = 0.0

    def test(self, schedule: PingSchedule) -> None:
        """Open, configure and disable the device; tell the keeper whether it works."""
        if self.device is None:
            self.answer("watchdog unusable the guard was started without --watchdog-device")
            return
        if self.device.is_open:
            self.answer("watchdog ready" if self.usable else "watchdog unusable not usable")
            return
        try:
            self.device.open(schedule.timeout)
        except WatchdogUnusable as error:
            self.usable = False
            self.answer(f"watchdog unusable {error}")
            return
        self.device.close()
        self.usable = True
        self.answer("watchdog ready")

    def wait_time(self, now: float, state: Enforcing) -> float | None:
        deadline, schedule = state.enforced_deadline, state.schedule
        if self.device is None or not self.device.is_open or deadline is None:
            return None
        assert schedule is not None
        due = schedule.next_ping(now, deadline, self.last_ping)
        return None if due is None else max(0.0, due - now)

    def tend(self, now: float, state: Enforcing) -> str | None:
        """Open, ping or disable the device as `state` needs; a reason to fire, if any."""
        deadline, schedule = state.enforced_deadline, state.schedule
        if self.device is None:
            return None
        if deadline is None or schedule is None:
            self.device.close()
            return None
        if not self.usable:
            return "the kernel watchdog is required but unusable" if self.required else None
        try:
            if not self.device.is_open:
                if now <= schedule.last_ping_at(deadline):
                    self.device.open(schedule.timeout)
                    self.last_ping = now
                return None
            due = schedule.next_ping(now, deadline, self.last_ping)
            if due is not None and now >= due:
                self.device.ping()
                self.last_ping = now
        except WatchdogUnusable as error:
            self.device.close()
            self.usable = False
            self.answer(f"watchdog unusable {error}")
            return f"the kernel watchdog failed ({error})" if self.required else None
        return None

    def release(self) -> None:
        if self.device is not None:
            self.device.close()
