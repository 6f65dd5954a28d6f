"""The keeper's side of its fencing guard (guard.py) and of systemd's watchdog.

`Heartbeat.beat()` runs on the fencing watchdog thread, every few
milliseconds: it sends the guard the deadline until which PostgreSQL may
accept writes (only when it changed) and pings systemd's watchdog. If that
thread stops — the keeper frozen, hung, or the thread dead — the guard kills
PostgreSQL at the last deadline it got, and systemd (WatchdogSec=, the
whole unit killed) restarts the keeper.

With a kernel watchdog (``[keeper] watchdog``) the guard holds the device;
`test_watchdog()` asks it whether the device works and the guard's answers
(lines on its standard output) are read by a thread of their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from rhizome import clock
from rhizome.keeper.guard import MODULE

log = logging.getLogger(__name__)


class GuardLost(RuntimeError):
    """The guard process is gone or no longer reads: PostgreSQL is unprotected."""


class GuardLink:
    """Starts the guard process and feeds it deadlines; thread-safe."""

    def __init__(
        self,
        data_dir: Path,
        watchdog_device: Path | None = None,
        watchdog_required: bool = False,
        on_report: Callable[[], None] = lambda: None,
    ) -> None:
        self.data_dir = data_dir
        self.watchdog_device = watchdog_device
        self.watchdog_required = watchdog_required
        self.on_report = on_report
        self.watchdog_problem: str | None = None
        """Why the kernel watchdog does not work (None: it works, or was not tested)."""
        self._answered = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._sent: float | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", MODULE, "--data-dir", str(self.data_dir)]
        if self.watchdog_device is not None:
            argv += ["--watchdog-device", str(self.watchdog_device)]
            argv += ["--watchdog-required"] if self.watchdog_required else []
        self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._process.stdin is not None
        os.set_blocking(self._process.stdin.fileno(), False)
        threading.Thread(
            target=self._read_answers, args=(self._process,), name="guard-answers", daemon=True
        ).start()
        log.info("fencing guard started (pid %d)", self._process.pid)

    def test_watchdog(self, timeout: int, reset_offset: float, wait: float = 10.0) -> str | None:
        """Have the guard test the kernel watchdog; None when it works, else why not."""
        with self._lock:
            self._answered.clear()
            self._write(f"watchdog {timeout} {reset_offset:.6f}\n")
        if not self._answered.wait(wait):
            self.watchdog_problem = f"the fencing guard did not answer within {wait:g} s"
        return self.watchdog_problem

    def _read_answers(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.decode(errors="replace").strip()
            if line == "watchdog ready":
                self.watchdog_problem = None
            elif line.startswith("watchdog unusable "):
                self.watchdog_problem = line.removeprefix("watchdog unusable ")
                log.warning("kernel watchdog unusable: %s", self.watchdog_problem)
            else:
                log.warning("unexpected line from the fencing guard: %r", line)
                continue
            self._answered.set()
            self.on_report()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def arm(self, deadline: float) -> None:
        """PostgreSQL may accept writes until `deadline` (clock.monotonic seconds)."""
        with self._lock:
            if deadline != self._sent:
                self._write(f"arm {deadline:.6f}\n")
                self._sent = deadline

    def disarm(self) -> None:
        with self._lock:
            if self._sent is not None:
                self._write("disarm\n")
                self._sent = None

    def stop(self) -> None:
        """End the guard (the keeper stopped PostgreSQL itself)."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        with self._lock, contextlib.suppress(GuardLost):
            self._write("stop\n")
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()

    def _write(self, line: str) -> None:
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            raise GuardLost("the fencing guard process is not running")
        try:
            written = os.write(process.stdin.fileno(), line.encode())
        except (BlockingIOError, BrokenPipeError) as error:
            raise GuardLost(f"the fencing guard does not read its input ({error})") from error
        if written != len(line):
            raise GuardLost("the fencing guard does not read its input (partial write)")


class SystemdWatchdog:
    """Pings systemd's watchdog (WatchdogSec=) when the unit asked for it; else nothing."""

    def __init__(self, environment: dict[str, str] | None = None) -> None:
        env = os.environ if environment is None else environment
        # Taken out of the environment: PostgreSQL and the guard must not inherit them
        # (systemd logs every notification a child sends to the unit's socket).
        address = env.pop("NOTIFY_SOCKET", "")
        microseconds = env.pop("WATCHDOG_USEC", "")
        for_us = env.pop("WATCHDOG_PID", str(os.getpid())) == str(os.getpid())
        self.timeout = int(microseconds) / 1e6 if microseconds.isdigit() and for_us else None
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._next = 0.0

    def ping(self) -> None:
        """At most every quarter of WatchdogSec."""
        if self.timeout is None or not self.address:
            return
        now = clock.monotonic()
        if now < self._next:
            return
        self._next = now + self.timeout / 4
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            try:
                notify.sendto(b"WATCHDOG=1", self.address)
            except OSError as error:
                log.warning("cannot ping systemd's watchdog: %s", error)
