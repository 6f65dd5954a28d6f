"""rhizome-keeper's fencing guard: a separate process that runs PostgreSQL and
kills it when the keeper's heartbeat stops (DESIGN §3.6; docs/fencing.md).

The keeper's own fencing runs on a thread of the keeper process; a frozen,
hung or dead keeper takes that thread with it. The guard shares none of its
threads: it sleeps until the deadline the keeper last sent, and when no later
deadline came in time it kills every process of the PostgreSQL it guards
(kill_tree: the postmaster is stopped first, so no backend is forked
meanwhile and none can acknowledge another commit).

The guard is the postmaster's parent (``start``), so PostgreSQL's parent-death
signal is tied to the guard, not to the keeper: a keeper can go away for a
restart and come back (guard_server.py: ``<state_dir>/guard.sock``) while
PostgreSQL runs on. The keeper writes one line per change:
- ``arm DEADLINE``: PostgreSQL may accept writes until DEADLINE (seconds of
  rhizome.clock.monotonic, the system-wide CLOCK_BOOTTIME, so both processes
  read the same clock): the fence deadline after the last lease renewal.
- ``disarm``: PostgreSQL cannot accept writes (stopped, or a standby).
- ``normal`` / ``detach`` / ``hold``: what the guard does when the keeper's
  connection ends (see `GuardState.keeper_left`). ``hold`` (the cluster is
  paused) also suspends the deadline: nothing fences while paused.
- ``stop``: the keeper ends normally; the guard exits.
- ``watchdog TIMEOUT RESET_OFFSET`` (with ``--watchdog-device``): test the
  kernel watchdog (guard_device.py) and answer ``watchdog ready`` or
  ``watchdog unusable REASON``.
- ``start JSON`` (``{"argv": [...], "log": PATH, "cwd": PATH}``): start the
  postmaster; answers ``started PID`` or ``start-failed REASON``, and later
  ``exited PID CODE``.
- ``status``: answers ``status MODE ARMED|DISARMED POSTMASTER_PID|- GUARD_PID``.

Stdlib only, so it starts in milliseconds and stays small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rhizome.keeper.kernel_watchdog import PingSchedule

MODULE = "rhizome.keeper.guard"
MODES = ("normal", "detach", "hold")
Mode = Literal["normal", "detach", "hold"]
DETACHED_STANDBY_GRACE = 120.0
"""Seconds a guard left in `detach` mode without a deadline (a standby, a stopped
PostgreSQL) waits for a keeper before it ends, stopping PostgreSQL with it."""

Outcome = Literal["fire", "exit", "wait"]


@dataclass
class GuardState:
    """What the guard knows: the deadline in force, its mode, its keeper (pure)."""

    deadline: float | None = None
    mode: Mode = "normal"
    stopping: bool = False
    schedule: PingSchedule | None = None
    """The kernel watchdog's timings, once the keeper sent them."""
    schedule_changed: bool = False
    alone_since: float | None = None
    """When the keeper's connection ended (None: a keeper is attached)."""

    def receive(self, line: str) -> None:
        """Apply one line from the keeper; a malformed line is an error."""
        words = line.split()
        if words[:1] == ["arm"] and len(words) == 2 and is_number(words[1]):
            self.deadline = float(words[1])
        elif words == ["disarm"]:
            self.deadline = None
        elif len(words) == 1 and words[0] in MODES:
            self.mode = words[0]  # type: ignore[assignment]
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

    @property
    def enforced_deadline(self) -> float | None:
        """The deadline the guard fires at: none while holding (paused)."""
        return None if self.mode == "hold" else self.deadline

    def keeper_left(self, now: float) -> Outcome:
        """The keeper's connection ended: what the guard does now.

        normal: the keeper died (or stopped); a writable PostgreSQL is killed at
        once, and the guard ends (PostgreSQL gets its parent-death signal).
        detach: the keeper restarts; the deadline in force still holds.
        hold: the cluster is paused; PostgreSQL runs on until a keeper comes back.
        """
        self.alone_since = now
        if self.mode == "normal" or self.stopping:
            return "fire" if self.deadline is not None and not self.stopping else "exit"
        return "wait"

    def keeper_attached(self) -> None:
        """A new keeper attached. A deadline left from before a hold is stale: the new
        keeper arms afresh (were it kept, switching to normal would fire at once)."""
        self.alone_since = None
        if self.mode == "hold":
            self.deadline = None

    def wait_time(self, now: float) -> float | None:
        """How long to wait for the next line before `due`; None: no limit."""
        times = []
        if self.enforced_deadline is not None:
            times.append(self.enforced_deadline - now)
        grace = self.standby_grace_end()
        if grace is not None:
            times.append(grace - now)
        return max(0.0, min(times)) if times else None

    def due(self, now: float) -> Outcome:
        """After a wait: fire at a passed deadline, end a detached guard left too long."""
        deadline = self.enforced_deadline
        if deadline is not None and now >= deadline:
            return "fire"
        grace = self.standby_grace_end()
        if grace is not None and now >= grace:
            return "exit"
        return "wait"

    def fired(self) -> None:
        """PostgreSQL was killed: nothing more to enforce."""
        self.deadline = None

    def standby_grace_end(self) -> float | None:
        if self.alone_since is None or self.mode != "detach" or self.deadline is not None:
            return None
        return self.alone_since + DETACHED_STANDBY_GRACE


def is_number(word: str) -> bool:
    """A finite number: `arm nan` or `arm inf` would never fire."""
    try:
        return math.isfinite(float(word))
    except ValueError:
        return False
