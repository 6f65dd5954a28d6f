"""The postmaster as the keeper's child process.

The keeper starts PostgreSQL itself (not through pg_ctl) so that it holds the
postmaster's PID and learns of its exit at once: a thread waits for the
child and calls `on_exit`. The postmaster runs under `setpriv --pdeathsig`:
if the keeper dies, PostgreSQL gets a fast shutdown instead of running on,
unfenced, while the sentinel fails over.

`stop()` may be called from any thread (the fencing watchdog does); it
escalates from a fast shutdown to an immediate one and finally SIGKILLs the
postmaster and every child.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from rhizome import clock
from rhizome.keeper.commands import find_pdeathsig_wrapper, postmaster_argv
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.database import accepts_connections

log = logging.getLogger(__name__)

READY_POLL_INTERVAL = 0.05
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
IMMEDIATE_TIMEOUT = 5.0


class StopMode(Enum):
    FAST = "fast"
    IMMEDIATE = "immediate"


@dataclass(frozen=True)
class PostmasterExit:
    """How the last postmaster ended: `expected` when the keeper stopped it."""

    code: int
    at: float  # clock.monotonic()
    expected: bool


class Postmaster:
    """Start, watch and stop one PostgreSQL postmaster."""

    def __init__(self, keeper: KeeperConfig, on_exit: Callable[[PostmasterExit], None]) -> None:
        self.keeper = keeper
        self.on_exit = on_exit
        self.wrapper = find_pdeathsig_wrapper()
        self.may_accept_writes = False
        """Started as a primary or being promoted (cleared when it exits)."""
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        if self.wrapper is None:
            log.warning("setpriv not found: PostgreSQL will outlive the keeper if it dies")

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    @property
    def running(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    def start(self, *, primary: bool) -> bool:
        """Start the postmaster; True once it accepts connections (False: exited or slow)."""
        with self._lock:
            if self.running:
                return True
            self.may_accept_writes = primary
            self._stopping = False
            argv = postmaster_argv(self.keeper, self.wrapper)
            log.info("starting PostgreSQL as a %s", "primary" if primary else "standby")
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, cwd=self.keeper.state_dir)
            self._process = process
        threading.Thread(
            target=self._watch, args=(process,), name="postmaster", daemon=True
        ).start()
        return self.wait_until_ready(START_TIMEOUT)

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
            if self._signal_and_wait(process, signal.SIGINT, timeout):
                return
            log.warning("fast shutdown took over %.0f s; shutting down immediately", timeout)
        if self._signal_and_wait(process, signal.SIGQUIT, IMMEDIATE_TIMEOUT):
            return
        self.kill()

    def fence(self, kill_at: float) -> None:
        """Fast shutdown now, SIGKILL of everything if it still runs at `kill_at` (monotonic)."""
        process = self._begin_stop()
        if process is None:
            return
        if not self._signal_and_wait(process, signal.SIGINT, kill_at - clock.monotonic()):
            self.kill()

    def kill(self) -> None:
        """SIGKILL the postmaster and all its children (stopped first, so none is added)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGSTOP)
        for child in child_pids(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        log.warning("PostgreSQL killed (SIGKILL)")

    def _begin_stop(self) -> subprocess.Popen[bytes] | None:
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                return None
            self._stopping = True
            return process

    def _signal_and_wait(
        self, process: subprocess.Popen[bytes], signal_number: int, timeout: float
    ) -> bool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal_number)
        try:
            process.wait(timeout=max(timeout, 0.0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        expected = self._stopping
        self.may_accept_writes = False
        if expected:
            log.info("PostgreSQL stopped (exit code %s)", code)
        else:
            log.warning("PostgreSQL exited unexpectedly (exit code %s)", code)
        self.on_exit(PostmasterExit(code=code, at=clock.monotonic(), expected=expected))


def child_pids(parent: int) -> list[int]:
    """PIDs of the live children of `parent` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            children.append(int(entry.name))
    return children


def stop_stray_postmaster(data_dir: Path, timeout: float = STOP_TIMEOUT) -> int | None:
    """Fast-shut-down a postmaster the keeper did not start (e.g. left by a previous keeper).

    Returns its PID when there was one.
    """
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    if not _is_postgres(pid):
        return None
    log.warning(
        "a PostgreSQL the keeper did not start runs on %s (pid %d): stopping it", data_dir, pid
    )
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = clock.monotonic() + timeout
    while _is_postgres(pid) and clock.monotonic() < deadline:
        time.sleep(0.05)
    if _is_postgres(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
    return pid


def _is_postgres(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state_letter = state[state.rindex(")") + 2]
    return b"postgres" in command and state_letter not in ("Z", "X")
