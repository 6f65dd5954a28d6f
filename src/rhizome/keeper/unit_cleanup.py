"""The keeper unit's ExecStopPost: ``python -m rhizome.keeper.unit_cleanup``.

The unit has ``KillMode=process`` so that PostgreSQL and its fencing guard
outlive a keeper restart (docs/fencing.md, "Restarts and pause"). systemd
then kills only the keeper, also when its watchdog fires or its stop times
out. This runs after every stop of the keeper, in the unit's cgroup:

- Every process left that is neither the guard nor below it is an orphan of
  the keeper (pg_basebackup, pg_rewind, initdb, psql): SIGKILLed, so none
  writes into a data directory the next keeper starts over.
- When the keeper did not end cleanly (systemd's ``$SERVICE_RESULT`` is not
  ``success``) and the guard is stopped (frozen together with the keeper, it
  cannot fence), everything left is SIGKILLed, PostgreSQL included.

A keeper that ended cleanly stopped PostgreSQL or left it on purpose (a
restart, a paused cluster), and a live guard fences or holds by itself:
the guard and its PostgreSQL are left alone then.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from rhizome.keeper.process_tree import read_stat, send

GUARD_MODULE = b"rhizome.keeper.guard_server"
STOPPED_STATES = ("T", "t")


def to_kill(
    service_result: str, processes: dict[int, tuple[str, int]], guards: set[int]
) -> set[int]:
    """What to SIGKILL of the unit's `processes` ({pid: (state, parent pid)})."""
    guard_stopped = any(processes[pid][0] in STOPPED_STATES for pid in guards if pid in processes)
    if service_result != "success" and guard_stopped:
        return set(processes)
    kept = set(guards)
    changed = True
    while changed:  # the guard's descendants (PostgreSQL) are kept
        below = {pid for pid, (_, parent) in processes.items() if parent in kept} - kept
        kept |= below
        changed = bool(below)
    return set(processes) - kept


def unit_procs_file(cgroup_text: str, cgroup_root: Path) -> Path | None:
    """The cgroup.procs of the service whose cgroup /proc/self/cgroup names.

    systemd's own hierarchy: the unified one (cgroup v2, or hybrid's
    ``unified``), or ``name=systemd`` under cgroup v1. Only a ``.service``
    directory counts: never the container's or the host's root.
    """
    candidates = []
    for line in cgroup_text.splitlines():
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controllers == "name=systemd":
            candidates.append(cgroup_root / "systemd" / relative)
        elif controllers == "":
            candidates += [cgroup_root / relative, cgroup_root / "unified" / relative]
    for directory in candidates:
        if directory.name.endswith(".service") and (directory / "cgroup.procs").exists():
            return directory / "cgroup.procs"
    return None


def unit_processes(
    cgroup_file: Path = Path("/proc/self/cgroup"), cgroup_root: Path = Path("/sys/fs/cgroup")
) -> list[int]:
    """The PIDs of this process's service cgroup, without this process."""
    procs = unit_procs_file(cgroup_file.read_text(), cgroup_root)
    if procs is None:
        raise ValueError(f"no service cgroup of this process under {cgroup_root}")
    return [int(line) for line in procs.read_text().split() if int(line) != os.getpid()]


def is_guard(pid: int) -> bool:
    try:
        return GUARD_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def main() -> int:
    result = os.environ.get("SERVICE_RESULT", "success")
    try:
        left = unit_processes()
    except (OSError, IndexError, ValueError) as error:
        print(f"cannot list the keeper unit's processes: {error}", file=sys.stderr)
        return 1
    processes = {pid: stat for pid in left if (stat := read_stat(pid)) is not None}
    guards = {pid for pid in processes if is_guard(pid)}
    doomed = to_kill(result, processes, guards)
    if doomed:
        print(
            f"the keeper ended with {result}: SIGKILL to {len(doomed)} of the {len(processes)}"
            " processes left in the unit"
            + (" (its fencing guard is stopped: PostgreSQL included)" if guards & doomed else ""),
            file=sys.stderr,
        )
        kill_unit(sorted(doomed))
    return 0


def kill_unit(doomed: list[int]) -> None:
    """Stop every doomed process first (no postmaster forks meanwhile), then SIGKILL them."""
    for signal_number in (signal.SIGSTOP, signal.SIGKILL):
        for pid in doomed:
            send(pid, signal_number)


if __name__ == "__main__":
    sys.exit(main())
