"""The keeper's side of its fencing guard (guard.py) and of systemd's watchdog.

`Heartbeat.beat()` runs on the fencing watchdog thread, every few
milliseconds: it sends the guard the deadline until which PostgreSQL may
accept writes (only when it changed) and pings systemd's watchdog. If that
thread stops — the keeper frozen, hung, or the thread dead — the guard kills
PostgreSQL at the last deadline it got, and systemd (WatchdogSec=, the
whole unit killed) restarts the keeper.

The keeper talks to the guard over a unix stream socket: a socketpair for a
guard it starts, ``<state_dir>/guard.sock`` for one a previous keeper left
running (`attach`). The guard starts the postmaster (`start_postmaster`) and
reports its exit; its other answers (the kernel watchdog's test, ``status``)
are read by a thread of their own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rhizome import clock
from rhizome.keeper.guard import MODES, Mode
from rhizome.keeper.guard_server import MODULE as SERVER_MODULE

log = logging.getLogger(__name__)

ATTACH_TIMEOUT = 5.0
"""Seconds a guard gets to answer a request (status, start)."""


class GuardLost(RuntimeError):
    """The guard process is gone or no longer reads: PostgreSQL is unprotected."""


class GuardRefused(RuntimeError):
    """The guard did not start the postmaster; the message says why."""


@dataclass(frozen=True)
class GuardStatus:
    """What a guard found on its socket says about itself (its `status` answer)."""

    mode: Mode
    armed: bool
    postmaster_pid: int | None
    guard_pid: int
    peer_pid: int
    """The PID the kernel reports for the socket's other end (SO_PEERCRED)."""


class GuardLink:
    """Starts or attaches to the guard process and feeds it deadlines; thread-safe."""

    def __init__(
        self,
        data_dir: Path,
        socket_path: Path,
        watchdog_device: Path | None = None,
        watchdog_required: bool = False,
        on_report: Callable[[], None] = lambda: None,
    ) -> None:
        self.data_dir = data_dir
        self.socket_path = socket_path
        self.watchdog_device = watchdog_device
        self.watchdog_required = watchdog_required
        self.on_report = on_report
        self.watchdog_problem: str | None = None
        """Why the kernel watchdog does not work (None: it works, or was not tested)."""
        self.pid: int | None = None
        self.mode: Mode = "normal"
        self._answered = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: socket.socket | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._request_lock = threading.Lock()
        self._replies: queue.Queue[str] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._exit_reported = threading.Condition()
        self._sent: float | None = None

    def start(self) -> None:
        """Start a guard of our own (its standard input is our connection)."""
        argv = [sys.executable, "-m", SERVER_MODULE, "--data-dir", str(self.data_dir)]
        argv += ["--socket", str(self.socket_path)]
        if self.watchdog_device is not None:
            argv += ["--watchdog-device", str(self.watchdog_device)]
            argv += ["--watchdog-required"] if self.watchdog_required else []
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with theirs:
            self._process = subprocess.Popen(argv, stdin=theirs.fileno())
        self.pid = self._process.pid
        self._serve(ours)
        log.info("fencing guard started (pid %d)", self.pid)

    def attach(self, timeout: float = ATTACH_TIMEOUT) -> GuardStatus | None:
        """Connect to a guard left running by a previous keeper; its status, or None."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.settimeout(timeout)
        try:
            connection.connect(str(self.socket_path))
            credentials = connection.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
            )
        except OSError as error:
            connection.close()
            log.info("no fencing guard answers on %s (%s)", self.socket_path, error)
            return None
        connection.settimeout(None)
        peer_pid = struct.unpack("3i", credentials)[0]
        self._serve(connection)
        try:
            answer = self._request("status", timeout)
        except (GuardLost, GuardRefused) as error:
            log.warning("the fencing guard on %s did not answer: %s", self.socket_path, error)
            self.abandon()
            return None
        status = parse_status(answer, peer_pid)
        if status is not None:
            self.pid, self.mode = status.guard_pid, status.mode
            self._sent = math.nan if status.armed else None  # the next arm or disarm is sent
        return status

    def _serve(self, connection: socket.socket) -> None:
        self._connection = connection
        self._closed.clear()
        threading.Thread(
            target=self._read_answers, args=(connection,), name="guard-answers", daemon=True
        ).start()

    def test_watchdog(self, timeout: int, reset_offset: float, wait: float = 10.0) -> str | None:
        """Have the guard test the kernel watchdog; None when it works, else why not."""
        with self._lock:
            self._answered.clear()
            self._write(f"watchdog {timeout} {reset_offset:.6f}\n")
        if not self._answered.wait(wait):
            self.watchdog_problem = f"the fencing guard did not answer within {wait:g} s"
        return self.watchdog_problem

    def start_postmaster(self, argv: list[str], log_path: Path, cwd: Path) -> int:
        """Have the guard start the postmaster (its child); the postmaster's PID."""
        request = json.dumps({"argv": argv, "log": str(log_path), "cwd": str(cwd)})
        answer = self._request(f"start {request}", ATTACH_TIMEOUT)
        words = answer.split(maxsplit=1)
        if words[0] == "started" and len(words) == 2 and words[1].isdigit():
            return int(words[1])
        raise GuardRefused(f"the fencing guard could not start PostgreSQL: {answer}")

    def exit_code(self, pid: int, wait: float) -> int | None:
        """The exit code the guard reported for `pid` (waiting up to `wait`), if any."""
        with self._exit_reported:
            self._exit_reported.wait_for(lambda: pid in self._exits or self._closed.is_set(), wait)
            return self._exits.get(pid)

    def _request(self, line: str, timeout: float) -> str:
        with self._request_lock:
            with self._lock:
                self._write(line + "\n")
            try:
                return self._replies.get(timeout=timeout)
            except queue.Empty:
                raise GuardRefused(f"no answer within {timeout:g} s") from None

    def _read_answers(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError), connection.makefile("rb") as lines:
            for raw in lines:
                self._dispatch(raw.decode(errors="replace").strip())
        self._closed.set()
        with self._exit_reported:
            self._exit_reported.notify_all()

    def _dispatch(self, line: str) -> None:
        kind = line.split(maxsplit=1)[0] if line else ""
        if kind in ("started", "start-failed", "status"):
            self._replies.put(line)
        elif kind == "exited":
            words = line.split()
            if len(words) == 3 and words[1].isdigit():
                with self._exit_reported:
                    self._exits[int(words[1])] = int(words[2])
                    self._exit_reported.notify_all()
        elif line == "watchdog ready":
            self.watchdog_problem = None
            self._answered.set()
            self.on_report()
        elif line.startswith("watchdog unusable "):
            self.watchdog_problem = line.removeprefix("watchdog unusable ")
            log.warning("kernel watchdog unusable: %s", self.watchdog_problem)
            self._answered.set()
            self.on_report()
        else:
            log.warning("unexpected line from the fencing guard: %r", line)

    @property
    def alive(self) -> bool:
        if self._connection is None or self._closed.is_set():
            return False
        return self._process is None or self._process.poll() is None

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

    def set_mode(self, mode: Mode) -> None:
        """What the guard does when this keeper goes away (guard.py); sent on a change."""
        with self._lock:
            if mode != self.mode:
                self._write(f"{mode}\n")
                self.mode = mode
                log.info("fencing guard mode: %s", mode)

    def leave(self, mode: Mode) -> None:
        """Go away leaving PostgreSQL to the guard in `mode` (detach or hold)."""
        with self._lock:
            self._write(f"{mode}\n")
            self.mode = mode
        self.abandon()

    def abandon(self) -> None:
        """Close our connection; the guard goes on in the mode it was in."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def stop(self) -> None:
        """End the guard (the keeper stopped PostgreSQL itself)."""
        if not self.alive:
            return
        with self._lock, contextlib.suppress(GuardLost):
            self._write("stop\n")
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
            return
        self._closed.wait(5)
        if self.pid is not None:  # our child when we re-executed ourselves: reap it
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)

    def _write(self, line: str) -> None:
        connection = self._connection
        if connection is None or not self.alive:
            raise GuardLost("the fencing guard process is not running")
        try:
            written = connection.send(line.encode(), socket.MSG_DONTWAIT)
        except OSError as error:
            raise GuardLost(f"the fencing guard does not read its input ({error})") from error
        if written != len(line):
            raise GuardLost("the fencing guard does not read its input (partial write)")


def parse_status(answer: str, peer_pid: int) -> GuardStatus | None:
    """A guard's `status MODE ARMED|DISARMED PID|- GUARD_PID` answer (None: malformed)."""
    words = answer.split()
    if len(words) != 5 or words[0] != "status" or words[1] not in MODES:
        return None
    if words[2] not in ("ARMED", "DISARMED") or not words[4].isdigit():
        return None
    if not (words[3].isdigit() or words[3] == "-"):
        return None
    return GuardStatus(
        mode=words[1],  # type: ignore[arg-type]
        armed=words[2] == "ARMED",
        postmaster_pid=int(words[3]) if words[3].isdigit() else None,
        guard_pid=int(words[4]),
        peer_pid=peer_pid,
    )


class SystemdWatchdog:
    """Pings systemd's watchdog (WatchdogSec=) when the unit asked for it; else nothing."""

    def __init__(self, environment: dict[str, str] | None = None) -> None:
        env = os.environ if environment is None else environment
        # Taken out of the environment: PostgreSQL and the guard must not inherit them
        # (systemd logs every notification a child sends to the unit's socket).
        self.inherited = {
            name: env.pop(name) for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
            if name in env
        }  # fmt: skip
        """Put back for a keeper that runs its program again (same PID, same unit)."""
        address = self.inherited.get("NOTIFY_SOCKET", "")
        microseconds = self.inherited.get("WATCHDOG_USEC", "")
        for_us = self.inherited.get("WATCHDOG_PID", str(os.getpid())) == str(os.getpid())
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
