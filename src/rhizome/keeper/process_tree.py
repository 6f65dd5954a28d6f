"""Kill a PostgreSQL process tree so that no backend can acknowledge one more commit.

Stdlib only: the fencing guard (guard.py) imports it and must start fast and
stay small. The postmaster is stopped first (SIGSTOP), so it forks no new
backend while its children are killed; then everything gets SIGKILL, which
also ends processes that are themselves stopped or frozen.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def child_pids(parent: int) -> list[int]:
    """PIDs of the live children of `parent` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = read_stat(int(entry.name))
        if stat is not None and stat[1] == parent:
            children.append(int(entry.name))
    return children


def read_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent PID) of a process; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def send(pid: int, signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal_number)


def kill_tree(root: int) -> None:
    """SIGSTOP `root`, SIGKILL its descendants, then SIGKILL `root` itself."""
    send(root, signal.SIGSTOP)
    for child in child_pids(root):
        kill_tree(child)
    send(root, signal.SIGKILL)


def postmaster_of(data_dir: Path) -> int | None:
    """The PID in `data_dir`/postmaster.pid when that process is a live postgres."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if is_postgres(pid) else None


def is_postgres(pid: int) -> bool:
    """A live (not zombie) process whose command line names postgres."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    stat = read_stat(pid)
    return stat is not None and b"postgres" in command and stat[0] not in ("Z", "X")
