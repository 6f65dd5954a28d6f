"""The fencing guard process: ``python -m rhizome.keeper.guard_server``.

It serves one keeper at a time — the keeper that started it (the socket on
its standard input) and, after that keeper went away in `detach` or `hold`
mode, a new keeper that connects to ``<state_dir>/guard.sock`` (0600) — and it
is the parent of the postmaster it starts for them. What each line means and
what happens when a keeper leaves: guard.py. Stdlib only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

from rhizome import clock
from rhizome.keeper.guard import GuardState, Outcome
from rhizome.keeper.guard_device import DeviceHolder
from rhizome.keeper.kernel_watchdog import KernelWatchdog
from rhizome.keeper.process_tree import kill_tree, postmaster_of

MODULE = "rhizome.keeper.guard_server"
SEND_TIMEOUT = 1.0


class Guard:
    """The guard's loop: keeper lines, new keepers, its postmaster's exit, deadlines."""

    def __init__(
        self,
        data_dir: Path,
        listener: socket.socket,
        connection: socket.socket | None,
        holder: DeviceHolder,
    ) -> None:
        self.data_dir = data_dir
        self.listener = listener
        self.connection = connection
        self.holder = holder
        holder.answer = self.answer
        self.state = GuardState()
        self.pending = b""
        self.postmaster: subprocess.Popen[bytes] | None = None
        self.postmaster_fd: int | None = None
        """A pidfd of the postmaster: readable once it has exited."""

    def run(self) -> int:
        try:
            while not self.state.stopping:
                if self.connection is None and self.postmaster is None:
                    return 0  # no keeper, no PostgreSQL: nothing left to guard
                outcome = self.step()
                if outcome == "fire":
                    self.fire(self.reason())
                    if self.connection is None and self.state.mode == "normal":
                        return 0
                elif outcome == "exit":
                    return 0
        finally:
            self.holder.release()
        return 0

    def step(self) -> Outcome:
        now = clock.monotonic()
        waits = [self.state.wait_time(now), self.holder.wait_time(now, self.state)]
        timeout = min((wait for wait in waits if wait is not None), default=None)
        sources: list[socket.socket | int] = [self.connection or self.listener]
        if self.postmaster_fd is not None:
            sources.append(self.postmaster_fd)
        readable, _, _ = select.select(sources, [], [], timeout)
        outcome: Outcome = "wait"
        if self.postmaster_fd is not None and self.postmaster_fd in readable:
            self.reap()
        if self.listener in readable:
            self.accept()
        if self.connection is not None and self.connection in readable:
            outcome = self.read()
        if outcome == "wait":
            outcome = self.state.due(clock.monotonic())
        self.tend()
        return outcome

    def reason(self) -> str:
        if self.state.alone_since is None:
            return "the keeper's heartbeat passed the fence deadline"
        if self.state.mode == "normal":
            return "the keeper died while PostgreSQL could accept writes"
        return "no keeper came back before the fence deadline"

    def read(self) -> Outcome:
        assert self.connection is not None
        try:
            chunk = self.connection.recv(4096)
        except OSError:
            chunk = b""
        if not chunk:
            self.connection.close()
            self.connection = None
            return self.state.keeper_left(clock.monotonic())
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            self.obey(line.decode())
        return "wait"

    def obey(self, line: str) -> None:
        if line.startswith("start "):
            self.start_postmaster(line.removeprefix("start "))
        elif line.strip() == "status":
            armed = "ARMED" if self.state.deadline is not None else "DISARMED"
            pid = str(self.postmaster.pid) if self.postmaster is not None else "-"
            self.answer(f"status {self.state.mode} {armed} {pid} {os.getpid()}")
        else:
            self.state.receive(line)
            if self.state.schedule is not None and self.state.schedule_changed:
                self.state.schedule_changed = False
                self.holder.test(self.state.schedule)

    def accept(self) -> None:
        connection, _ = self.listener.accept()
        if self.connection is not None:
            connection.close()  # one keeper at a time
            return
        connection.settimeout(SEND_TIMEOUT)
        self.connection = connection
        self.pending = b""
        self.state.keeper_attached()
        say("a keeper attached")

    def start_postmaster(self, request: str) -> None:
        if self.postmaster is not None:
            self.answer(f"start-failed a postmaster already runs (pid {self.postmaster.pid})")
            return
        try:
            fields = json.loads(request)
            with open(fields["log"], "ab") as log:
                self.postmaster = subprocess.Popen(
                    [str(word) for word in fields["argv"]], stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, cwd=fields["cwd"],
                )  # fmt: skip
            self.postmaster_fd = os.pidfd_open(self.postmaster.pid)
        except (OSError, ValueError, KeyError, TypeError) as error:
            self.answer(f"start-failed {error}")
            return
        self.answer(f"started {self.postmaster.pid}")

    def reap(self) -> None:
        assert self.postmaster is not None and self.postmaster_fd is not None
        code = self.postmaster.wait()
        os.close(self.postmaster_fd)
        self.answer(f"exited {self.postmaster.pid} {code}")
        self.postmaster, self.postmaster_fd = None, None

    def fire(self, why: str) -> None:
        """Kill PostgreSQL: our postmaster and the data directory's, with every child."""
        roots = [self.postmaster.pid] if self.postmaster is not None else []
        other = postmaster_of(self.data_dir)
        if other is not None and other not in roots:
            roots.append(other)
        for root in roots:
            kill_tree(root)
        self.state.fired()
        say(f"FENCED by the guard ({why}): killed PostgreSQL (processes {roots or 'none left'})")

    def tend(self) -> None:
        reason = self.holder.tend(clock.monotonic(), self.state)
        if reason is not None:
            self.fire(reason)
            self.holder.tend(clock.monotonic(), self.state)

    def answer(self, line: str) -> None:
        """One line to the keeper attached now; a keeper that does not read is gone."""
        if self.connection is None:
            return
        with contextlib.suppress(OSError):
            self.connection.sendall((" ".join(line.split()) + "\n").encode())


def say(message: str) -> None:
    """One line on stderr; written after the kill, so a blocked log cannot delay it."""
    with contextlib.suppress(OSError):
        os.write(2, f"rhizome-keeper-guard[{os.getpid()}]: {message}\n".encode())


def listen(path: Path) -> tuple[socket.socket, int]:
    """The guard's socket for keepers that come back (0600; an old one is replaced),
    and the inode of its file (removed at exit only while it is still ours)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o077)
    try:
        listener.bind(str(path))
    finally:
        os.umask(previous)
    path.chmod(0o600)
    listener.listen(4)
    return listener, path.stat().st_ino


def ignore(signal_number: int, frame: object) -> None:
    """Signals for the keeper's process group are the keeper's (a handler, not SIG_IGN:
    PostgreSQL, started by us, must not inherit ignored signals)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=MODULE, description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--socket", required=True, type=Path, help="where new keepers attach")
    parser.add_argument("--watchdog-device", type=Path, help="the kernel watchdog to hold")
    parser.add_argument("--watchdog-required", action="store_true")
    arguments = parser.parse_args(argv)
    for signal_number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signal_number, ignore)
    connection = socket.socket(fileno=os.dup(0))
    os.close(0)
    os.open(os.devnull, os.O_RDONLY)  # fd 0 again, for anything that reads it
    connection.settimeout(SEND_TIMEOUT)
    listener, inode = listen(arguments.socket)
    device = KernelWatchdog(arguments.watchdog_device) if arguments.watchdog_device else None
    holder = DeviceHolder(device, arguments.watchdog_required)
    try:
        return Guard(arguments.data_dir, listener, connection, holder).run()
    finally:
        with contextlib.suppress(OSError):
            if arguments.socket.stat().st_ino == inode:
                arguments.socket.unlink()


if __name__ == "__main__":
    sys.exit(main())
