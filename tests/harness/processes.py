"""Server processes in their own process group, stopped by the PID we started.

PostgreSQL's children call setsid() and leave the postmaster's process group, so
freezing and killing walk the process tree as well as signalling the group: the
group leader is stopped first, so no new child can appear while the tree is read.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ADDRESS_IN_USE = "address already in use"
LOG_TAIL_LINES = 40


class ServerStartError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""


class PortInUseError(ServerStartError):
    """A server exited because one of its ports was taken: retry with new ports."""


def _process_state(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process from /proc, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def is_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    state = _process_state(pid)
    return state is not None and state[0] not in ("Z", "X")


def descendant_pids(root_pid: int) -> set[int]:
    """Every live process below root_pid in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            state = _process_state(int(entry.name))
            if state is not None:
                children.setdefault(state[1], []).append(int(entry.name))
    found: set[int] = set()
    pending = [root_pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _signal_pid(pid: int, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal_number)


def _signal_group(group_id: int, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group_id, signal_number)


def wait_until_gone(pids: set[int], timeout: float) -> bool:
    """Wait until none of pids is alive; False on timeout."""
    deadline = time.monotonic() + timeout
    while any(is_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def wait_until_stopped(pids: set[int], timeout: float) -> bool:
    """Wait until every pid is stopped by a signal (or is gone); False on timeout."""
    deadline = time.monotonic() + timeout
    while any((_process_state(pid) or ("T",))[0] not in ("T", "Z", "X") for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


class ServerProcess:
    """One server: its own session and process group, output appended to a log file."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        run_as: str | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.run_as = run_as
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch the process (no readiness check)."""
        with self.log_path.open("ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                user=self.run_as,
                group=self.run_as,
                extra_groups=[] if self.run_as is not None else None,
            )
        _live_processes.add(self)

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise RuntimeError("process not started")
        return self._popen.pid

    @property
    def is_running(self) -> bool:
        """True while the leader runs (a zombie counts as exited but keeps its PID reserved)."""
        return self._popen is not None and self._popen.returncode is None and is_alive(self.pid)

    @property
    def exit_code(self) -> int | None:
        return None if self._popen is None else self._popen.returncode

    def send_signal(self, signal_number: int) -> None:
        """Signal the group leader only."""
        if self.is_running:
            _signal_pid(self.pid, signal_number)

    def freeze(self) -> set[int]:
        """SIGSTOP the group and every descendant, wait until all are stopped.

        Returns the descendants it stopped.
        """
        if not self.is_running:
            return set()
        _signal_group(self.pid, signal.SIGSTOP)
        stopped: set[int] = set()
        while new_pids := descendant_pids(self.pid) - stopped:
            for pid in new_pids:
                _signal_pid(pid, signal.SIGSTOP)
            stopped |= new_pids
        wait_until_stopped({self.pid, *stopped}, timeout=5)
        return stopped

    def thaw(self) -> None:
        """SIGCONT the group and every descendant."""
        if not self.is_running:
            return
        for pid in descendant_pids(self.pid):
            _signal_pid(pid, signal.SIGCONT)
        _signal_group(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        """Host death: freeze the whole tree, then SIGKILL all of it at once."""
        descendants = self.freeze()
        for pid in descendants:
            _signal_pid(pid, signal.SIGKILL)
        self._reap()
        wait_until_gone(descendants, timeout=10)

    def stop(self, stop_signal: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        """Thaw, send stop_signal to the leader, wait; SIGKILL everything after timeout."""
        if self.is_running:
            self.thaw()
            self.send_signal(stop_signal)
            if not wait_until_gone({self.pid}, timeout):
                self.kill()
        self._reap()

    def wait_leader(self, timeout: float) -> int | None:
        """Wait for the leader alone to exit and collect its status, leaving the rest of
        its group running (systemd's KillMode=process); its exit code (None: still running)."""
        if self._popen is None:
            return None
        try:
            code = self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        _live_processes.discard(self)
        return code

    def _reap(self) -> None:
        """SIGKILL what is left of the group, then collect the leader's exit status.

        The unreaped leader keeps its PID, so the group id cannot name anyone else's group.
        """
        if self._popen is None or self._popen.returncode is not None:
            return
        _signal_group(self.pid, signal.SIGKILL)
        self._popen.wait(timeout=10)
        _live_processes.discard(self)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, probe: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll probe until True; raise with the log tail if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running:
                self._reap()
                tail = self.log_tail()
                error = PortInUseError if ADDRESS_IN_USE in tail.lower() else ServerStartError
                raise error(f"{what} exited ({self.exit_code}); {self.log_path}:\n{tail}")
            if probe():
                return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{what} not ready after {timeout}s; {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.02)


_live_processes: set[ServerProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last resort if a fixture's teardown never ran (e.g. the test run was interrupted)."""
    for process in list(_live_processes):
        process.kill()


class ProcessOwner:
    """A harness object running one ServerProcess: fault injection on the whole tree."""

    _process: ServerProcess | None = None

    def kill(self) -> None:
        """SIGKILL the process and every descendant at once (a host death)."""
        if self._process is not None:
            self._process.kill()

    def freeze(self) -> None:
        """SIGSTOP the process and every descendant: sockets stay open, nothing answers."""
        if self._process is not None:
            self._process.freeze()

    def thaw(self) -> None:
        if self._process is not None:
            self._process.thaw()
