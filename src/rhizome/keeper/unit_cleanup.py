"""The keeper unit's ExecStopPost: ``python -m rhizome.keeper.unit_cleanup``.

The unit has ``KillMode=process`` so that PostgreSQL and its fencing guard
outlive a keeper restart (docs/fencing.md, "Restarts and pause"). systemd
then kills only the keeper, also when its watchdog fires. A guard that is
alive fences by itself once its keeper is gone; a guard that is frozen
together with the keeper (SIGSTOP of the process group, a stalled cgroup)
cannot. This runs after every stop of the keeper, in the unit's cgroup, and
SIGKILLs everything left there when the keeper did not end cleanly (systemd's
``$SERVICE_RESULT`` is not ``success``) and the guard is stopped.

A keeper that ended cleanly either stopped PostgreSQL or left it on purpose
(a restart, a paused cluster): its guard and PostgreSQL are left alone.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from rhizome.keeper.process_tree import read_stat, send

GUARD_MODULE = b"rhizome.keeper.guard_server"
STOPPED_STATES = ("T", "t")


def must_kill(service_result: str, guard_states: list[str]) -> bool:
    """Kill what is left of the unit: the keeper died uncleanly and a guard is stopped."""
    return service_result != "success" and any(state in STOPPED_STATES for state in guard_states)


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
    guard_states = [stat[0] for pid in left if is_guard(pid) and (stat := read_stat(pid))]
    if not must_kill(result, guard_states):
        return 0
    print(
        f"the keeper ended with {result} and its fencing guard is stopped:"
        f" SIGKILL to the {len(left)} processes left in the unit (PostgreSQL included)",
        file=sys.stderr,
    )
    kill_unit(left)
    return 0


def kill_unit(left: list[int], rounds: int = 3) -> None:
    """Stop every process first (no postmaster forks meanwhile), then SIGKILL them all."""
    for _ in range(rounds):
        for signal_number in (signal.SIGSTOP, signal.SIGKILL):
            for pid in left:
                send(pid, signal_number)
        left = unit_processes()
        if not left:
            return


if __name__ == "__main__":
    sys.exit(main())
