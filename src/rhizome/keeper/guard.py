"""rhizome-keeper's fencing guard: a separate process that kills PostgreSQL
when the keeper's heartbeat stops (DESIGN §3.6).

The keeper's own fencing runs on a thread of the keeper process; a frozen,
hung or dead keeper takes that thread with it. The guard is the keeper's
child but shares none of its threads: it sleeps until the deadline the keeper
last sent, and when no later deadline came in time it kills every process
of the PostgreSQL it guards (kill_tree: the postmaster is stopped first, so
no backend is forked meanwhile and none can acknowledge another commit).

The keeper writes one line per change on the guard's standard input:
- ``arm DEADLINE``: PostgreSQL may accept writes until DEADLINE (seconds of
  rhizome.clock.monotonic, the system-wide CLOCK_BOOTTIME, so both processes
  read the same clock): the fence deadline after the last lease renewal.
- ``disarm``: PostgreSQL cannot accept writes (stopped, or a standby).
- ``stop``: the keeper ends normally; the guard exits.
- ``watchdog TIMEOUT RESET_OFFSET`` (only when started with
  ``--watchdog-device``): test the kernel watchdog with these timings
  (kernel_watchdog.py) and answer on standard output ``watchdog ready`` or
  ``watchdog unusable REASON``. From then on the guard holds the device open
  and pings it while armed, and disables it (magic close) when disarmed.
End of input while armed means the keeper died holding a writable
PostgreSQL: the guard kills it at once.

When the device fails while armed, the guard says ``watchdog unusable
REASON``; with ``--watchdog-required`` it also kills PostgreSQL, which may
not accept writes without the kernel watchdog.

Stdlib only, so it starts in milliseconds and stays small.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from rhizome import clock
from rhizome.keeper.kernel_watchdog import KernelWatchdog, PingSchedule, WatchdogUnusable
from rhizome.keeper.process_tree import child_pids, kill_tree, postmaster_of

MODULE = "rhizome.keeper.guard"


@dataclass
class GuardState:
    """What the guard knows: the deadline in force, if armed (pure)."""

    deadline: float | None = None
    stopping: bool = False
    schedule: PingSchedule | None = None
    """The kernel watchdog's timings, once the keeper sent them."""
    schedule_changed: bool = False

    def receive(self, line: str) -> None:
        """Apply one line from the keeper; a malformed line is an error."""
        words = line.split()
        if words[:1] == ["arm"] and len(words) == 2 and is_number(words[1]):
            self.deadline = float(words[1])
        elif words == ["disarm"]:
            self.deadline = None
        elif words == ["stop"]:
            self.deadline = None
            self.stopping = True
        elif words[:1] == ["watchdog"] and len(words) == 3 and words[1].isdigit():
            if not is_number(words[2]):
                raise ValueError(f"unexpected line from the keeper: {line!r}")
            self.schedule = PingSchedule(int(words[1]), float(words[2]))
            self.schedule_changed = True
        else:
            raise ValueError(f"unexpected line from the keeper: {line!r}")

    def wait_time(self, now: float) -> float | None:
        """How long to wait for the next line before firing; None: no limit."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - now)


def is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def fire(keeper_pid: int, data_dir: Path, why: str) -> None:
    """Kill PostgreSQL: the keeper's children (but us) and the data directory's postmaster."""
    own = os.getpid()
    roots = [pid for pid in child_pids(keeper_pid) if pid != own]
    postmaster = postmaster_of(data_dir)
    if postmaster is not None and postmaster not in roots:
        roots.append(postmaster)
    for root in roots:
        kill_tree(root)
    say(f"FENCED by the guard ({why}): killed PostgreSQL (processes {roots or 'none left'})")


def say(message: str) -> None:
    """One line on stderr; written after the kill, so a blocked log cannot delay it."""
    with contextlib.suppress(OSError):
        os.write(2, f"rhizome-keeper-guard[{os.getpid()}]: {message}\n".encode())


class DeviceHolder:
    """The kernel watchdog, held open and pinged while the guard is armed."""

    def __init__(self, device: KernelWatchdog | None = None, required: bool = False) -> None:
        self.device = device
        self.required = required
        self.usable = False
        self.last_ping = 0.0

    def test(self, schedule: PingSchedule) -> None:
        """Open, configure and disable the device; tell the keeper whether it works."""
        if self.device is None:
            answer("watchdog unusable the guard was started without --watchdog-device")
            return
        if self.device.is_open:
            return
        try:
            self.device.open(schedule.timeout)
        except WatchdogUnusable as error:
            self.usable = False
            answer(f"watchdog unusable {error}")
            return
        self.device.close()
        self.usable = True
        answer("watchdog ready")

    def wait_time(self, now: float, state: GuardState) -> float | None:
        if self.device is None or not self.device.is_open or state.deadline is None:
            return None
        assert state.schedule is not None
        due = state.schedule.next_ping(now, state.deadline, self.last_ping)
        return None if due is None else max(0.0, due - now)

    def tend(self, now: float, state: GuardState) -> str | None:
        """Open, ping or disable the device as `state` needs; a reason to fire, if any."""
        if self.device is None:
            return None
        if state.deadline is None or state.schedule is None:
            self.device.close()
            return None
        if not self.usable:
            return "the kernel watchdog is required but unusable" if self.required else None
        schedule, deadline = state.schedule, state.deadline
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
            answer(f"watchdog unusable {error}")
            return f"the kernel watchdog failed ({error})" if self.required else None
        return None

    def release(self) -> None:
        if self.device is not None:
            self.device.close()


def answer(line: str) -> None:
    """One line to the keeper (standard output); a keeper that no longer reads is gone."""
    with contextlib.suppress(OSError):
        os.write(1, (" ".join(line.split()) + "\n").encode())


def run(
    keeper_pid: int, data_dir: Path, source: int = 0, holder: DeviceHolder | None = None
) -> int:
    """Serve the keeper's heartbeat on `source` until `stop` or end of input."""
    state = GuardState()
    holder = holder if holder is not None else DeviceHolder()
    pending = b""
    try:
        while not state.stopping:
            now = clock.monotonic()
            waits = [
                t for t in (state.wait_time(now), holder.wait_time(now, state)) if t is not None
            ]
            readable, _, _ = select.select([source], [], [], min(waits) if waits else None)
            if not readable:
                if state.deadline is not None and clock.monotonic() >= state.deadline:
                    fire(keeper_pid, data_dir, "the keeper's heartbeat passed the fence deadline")
                    state.deadline = None
                tend(holder, state, keeper_pid, data_dir)
                continue
            chunk = os.read(source, 4096)
            if not chunk:
                if state.deadline is not None:
                    fire(
                        keeper_pid, data_dir, "the keeper died while PostgreSQL could accept writes"
                    )
                return 0
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                state.receive(line.decode())
            if state.schedule is not None and state.schedule_changed:
                state.schedule_changed = False
                holder.test(state.schedule)
            tend(holder, state, keeper_pid, data_dir)
    finally:
        holder.release()
    return 0


def tend(holder: DeviceHolder, state: GuardState, keeper_pid: int, data_dir: Path) -> None:
    reason = holder.tend(clock.monotonic(), state)
    if reason is not None:
        fire(keeper_pid, data_dir, reason)
        state.deadline = None
        holder.tend(clock.monotonic(), state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=MODULE, description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--watchdog-device", type=Path, help="the kernel watchdog to hold")
    parser.add_argument("--watchdog-required", action="store_true")
    arguments = parser.parse_args(argv)
    # The keeper ends the guard (stop, or end of input); signals to the whole
    # process group (a terminal's Ctrl-C, systemd's SIGTERM) are the keeper's.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    device = KernelWatchdog(arguments.watchdog_device) if arguments.watchdog_device else None
    holder = DeviceHolder(device, arguments.watchdog_required)
    return run(os.getppid(), arguments.data_dir, holder=holder)


if __name__ == "__main__":
    sys.exit(main())
