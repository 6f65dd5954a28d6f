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
End of input while armed means the keeper died holding a writable
PostgreSQL: the guard kills it at once.

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
from rhizome.keeper.process_tree import child_pids, kill_tree, postmaster_of

MODULE = "rhizome.keeper.guard"


@dataclass
class GuardState:
    """What the guard knows: the deadline in force, if armed (pure)."""

    deadline: float | None = None
    stopping: bool = False

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


def run(keeper_pid: int, data_dir: Path, source: int = 0) -> int:
    """Serve the keeper's heartbeat on `source` until `stop` or end of input."""
    state = GuardState()
    pending = b""
    while not state.stopping:
        timeout = state.wait_time(clock.monotonic())
        readable, _, _ = select.select([source], [], [], timeout)
        if not readable:
            fire(keeper_pid, data_dir, "the keeper's heartbeat passed the fence deadline")
            state.deadline = None
            continue
        chunk = os.read(source, 4096)
        if not chunk:
            if state.deadline is not None:
                fire(keeper_pid, data_dir, "the keeper died while PostgreSQL could accept writes")
            return 0
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            state.receive(line.decode())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=MODULE, description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    arguments = parser.parse_args(argv)
    # The keeper ends the guard (stop, or end of input); signals to the whole
    # process group (a terminal's Ctrl-C, systemd's SIGTERM) are the keeper's.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return run(os.getppid(), arguments.data_dir)


if __name__ == "__main__":
    sys.exit(main())
