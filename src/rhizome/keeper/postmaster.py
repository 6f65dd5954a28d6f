"""The postmaster, started by the keeper's fencing guard and followed by PID.

The keeper has the guard start PostgreSQL (not pg_ctl) so that it holds the
postmaster's PID and learns of its exit at once: a thread waits on a pidfd
and calls `on_exit`. The postmaster runs under `setpriv --pdeathsig` as the
guard's child: if the guard ends, PostgreSQL gets a fast shutdown. A keeper
that restarts leaves it running under the guard; the next keeper `adopt`s
it (handover.py, docs/fencing.md "Restarts and pause").

`allow_writes()` is called before PostgreSQL may accept writes (started as
a primary, or promoted): its `on_writable` hook arms the fencing guard first.
`stop()` may be called from any thread (the fencing watchdog does); it
escalates from a fast shutdown to an immediate one and finally SIGKILLs the
postmaster and every child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from rhizome import clock
from rhizome.keeper import postgres_log
from rhizome.keeper.commands import find_pdeathsig_wrapper, postmaster_argv
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.database import accepts_connections
from rhizome.keeper.process_tree import is_postgres, kill_tree, postmaster_of

log = logging.getLogger(__name__)

READY_POLL_INTERVAL = 0.05
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
IMMEDIATE_TIMEOUT = 5.0
UNRESPONSIVE_KILL_AFTER = 1.0
"""Seconds an unresponsive PostgreSQL gets for an immediate shutdown before SIGKILL."""
KILL_WAIT = 10.0
EXIT_CODE_WAIT = 0.5
"""Seconds the watcher waits for the guard's report of the exit code after the exit."""

Spawn = Callable[[list[str], Path, Path], int]


class StopMode(Enum):
    FAST = "fast"
    IMMEDIATE = "immediate"
    KILL = "kill"
    """Unresponsive: immediate shutdown, SIGKILL of every process after UNRESPONSIVE_KILL_AFTER."""


@dataclass(frozen=True)
class PostmasterExit:
    """How the last postmaster ended: `expected` when the keeper stopped it."""

    code: int
    at: float  # clock.monotonic()
    expected: bool


class Postmaster:
    """Start (through the guard), adopt, watch and stop one PostgreSQL postmaster."""

    def __init__(
        self,
        keeper: KeeperConfig,
        on_exit: Callable[[PostmasterExit], None],
        on_writable: Callable[[], None] = lambda: None,
        spawn: Spawn | None = None,
        exit_code: Callable[[int, float], int | None] = lambda pid, wait: None,
    ) -> None:
        """`spawn(argv, log, cwd)` starts the postmaster and returns its PID (the guard
        does: GuardLink.start_postmaster); `exit_code(pid, wait)` is what it exited with."""
        self.keeper = keeper
        self.on_exit = on_exit
        self.on_writable = on_writable
        self.spawn = spawn or spawn_here
        self.exit_code = exit_code
        self.wrapper = find_pdeathsig_wrapper()
        self.may_accept_writes = False
        """Started as a primary or being promoted (cleared when it exits)."""
        self._lock = threading.Lock()
        self._process: TrackedProcess | None = None
        self._stopping = False
        self.log_offset = 0
        """Where the log of the latest start begins in postgres_log.log_path."""

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.alive() else None

    @property
    def running(self) -> bool:
        process = self._process
        return process is not None and process.alive()

    def start(self, *, primary: bool) -> bool:
        """Start the postmaster; True once it accepts connections (False: exited or slow)."""
        with self._lock:
            if self.running:
                return True
            if primary:
                self.allow_writes()
            else:
                self.may_accept_writes = False
            self._stopping = False
            argv = postmaster_argv(self.keeper, self.wrapper)
            log.info("starting PostgreSQL as a %s", "primary" if primary else "standby")
            log_file, self.log_offset = postgres_log.open_for_start(self.keeper)
            log_file.close()
            pid = self.spawn(argv, postgres_log.log_path(self.keeper), self.keeper.state_dir)
            process = self._track(pid)
        if process is None:
            return False
        return self.wait_until_ready(START_TIMEOUT)

    def adopt(self, pid: int, *, may_accept_writes: bool) -> bool:
        """Take over a postmaster a previous keeper left running; False once it is gone."""
        with self._lock:
            self.may_accept_writes = may_accept_writes
            self._stopping = False
            process = self._track(pid)
        if process is None:
            self.may_accept_writes = False
        return process is not None

    def _track(self, pid: int) -> TrackedProcess | None:
        """Watch `pid` (called under the lock); None when it is already gone."""
        try:
            process = TrackedProcess(pid)
        except ProcessLookupError:
            return None
        self._process = process
        threading.Thread(
            target=self._watch, args=(process,), name="postmaster", daemon=True
        ).start()
        return process

    def allow_writes(self) -> None:
        """PostgreSQL is about to accept writes: arm the fencing first (on_writable)."""
        self.on_writable()
        self.may_accept_writes = True

    def wait_until_ready(self, timeout: float) -> bool:
        deadline = clock.monotonic() + timeout
        while self.running and clock.monotonic() < deadline:
            if accepts_connections(self.keeper):
                return True
            time.sleep(READY_POLL_INTERVAL)
        return False

    def stop(self, mode: StopMode = StopMode.FAST, timeout: float = STOP_TIMEOUT) -> None:
        """Stop and wait: fast (SIGINT), then immediate (SIGQUIT), then SIGKILL of the tree."""
        process = self._begin_stop()
        if process is None:
            return
        if mode is StopMode.FAST:
            log.info("stopping PostgreSQL (fast shutdown)")
            if process.signal_and_wait(signal.SIGINT, timeout):
                return
            log.warning("fast shutdown took over %.0f s; shutting down immediately", timeout)
        limit = UNRESPONSIVE_KILL_AFTER if mode is StopMode.KILL else IMMEDIATE_TIMEOUT
        if process.signal_and_wait(signal.SIGQUIT, limit):
            return
        self.kill()

    def fence(self, kill_at: float) -> None:
        """Fast shutdown now, SIGKILL of everything if it still runs at `kill_at` (monotonic)."""
        process = self._begin_stop()
        if process is None:
            return
        if not process.signal_and_wait(signal.SIGINT, kill_at - clock.monotonic()):
            self.kill()

    def kill(self) -> None:
        """SIGKILL the postmaster and all its children (stopped first, so none is added)."""
        process = self._process
        if process is None or not process.alive():
            return
        kill_tree(process.pid)
        process.wait(KILL_WAIT)
        log.warning("PostgreSQL killed (SIGKILL)")

    def _begin_stop(self) -> TrackedProcess | None:
        with self._lock:
            process = self._process
            if process is None or not process.alive():
                return None
            self._stopping = True
            return process

    def _watch(self, process: TrackedProcess) -> None:
        process.wait(None)
        code = self.exit_code(process.pid, EXIT_CODE_WAIT)
        with self._lock:
            if process is not self._process:
                return  # a newer postmaster runs: its flags are not ours to clear
            expected = self._stopping
            self.may_accept_writes = False
        code = -1 if code is None else code
        if expected:
            log.info("PostgreSQL stopped (exit code %s)", code)
        else:
            log.warning("PostgreSQL exited unexpectedly (exit code %s)", code)
        self.on_exit(PostmasterExit(code=code, at=clock.monotonic(), expected=expected))


class TrackedProcess:
    """A process followed through a pidfd (it need not be our child)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.descriptor = os.pidfd_open(pid)

    def alive(self) -> bool:
        return not self.wait(0.0)

    def wait(self, timeout: float | None) -> bool:
        """True once the process has exited (within `timeout` seconds; None: no limit)."""
        readable, _, _ = select.select([self.descriptor], [], [], timeout)
        return bool(readable)

    def signal_and_wait(self, signal_number: int, timeout: float) -> bool:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.descriptor, signal_number)
        return self.wait(max(timeout, 0.0))


def spawn_here(argv: list[str], log_path: Path, cwd: Path) -> int:
    """Start the postmaster as our own child (tests without a guard)."""
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, cwd=cwd
        )
    return process.pid


def stop_stray_postmaster(data_dir: Path, timeout: float = STOP_TIMEOUT) -> int | None:
    """Fast-shut-down a postmaster the keeper did not start (e.g. left by a previous keeper).

    Returns its PID when there was one.
    """
    pid = postmaster_of(data_dir)
    if pid is None:
        return None
    log.warning(
        "a PostgreSQL the keeper did not start runs on %s (pid %d): stopping it", data_dir, pid
    )
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = clock.monotonic() + timeout
    while is_postgres(pid) and clock.monotonic() < deadline:
        time.sleep(0.05)
    if is_postgres(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
    return pid
