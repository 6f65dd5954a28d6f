"""How a keeper leaves: stop PostgreSQL, or leave it to the guard (pure, plus one probe).

- ``stop``: a plain stop (``systemctl stop``, SIGTERM, SIGINT): PostgreSQL is
  shut down and the lease revoked.
- ``detach``: a restart (SIGUSR2, or SIGTERM while systemd restarts the
  keeper's unit): PostgreSQL runs on under the guard, which still kills it at
  the fence deadline of the keeper's last lease renewal unless a new keeper
  attaches and re-arms it first; the lease is kept for the next keeper.
- ``hold``: the cluster is paused: PostgreSQL runs on without a fence until
  a keeper comes back (docs/fencing.md, "Restarts and pause").
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Departure = Literal["stop", "detach", "hold"]
PROBE_TIMEOUT = 2.0


def departure(*, restart_requested: bool, systemd_restarting: bool, paused: bool) -> Departure:
    """How the keeper leaves, from why it was told to and the cluster's pause."""
    if paused:
        return "hold"
    if restart_requested or systemd_restarting:
        return "detach"
    return "stop"


def unit_of_cgroup(text: str) -> str | None:
    """The systemd service whose cgroup /proc/self/cgroup names (None: not a service)."""
    for line in sorted(text.splitlines(), key=lambda entry: not entry.startswith("0::")):
        path = line.split(":", 2)[-1]
        for part in reversed(path.split("/")):
            if part.endswith(".service"):
                return part
    return None


def restart_job_pending(list_jobs: str, unit: str) -> bool:
    """`systemctl list-jobs --no-legend` shows a restart job of `unit`."""
    for line in list_jobs.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[1] == unit and fields[2] == "restart":
            return True
    return False


def systemd_restarting(environment: dict[str, str] | None = None) -> bool:
    """Whether systemd is restarting this keeper's unit now (False when unsure)."""
    env = os.environ if environment is None else environment
    if "INVOCATION_ID" not in env:
        return False  # not started by systemd
    try:
        unit = unit_of_cgroup(Path("/proc/self/cgroup").read_text())
        if unit is None:
            return False
        jobs = subprocess.run(
            ["systemctl", "list-jobs", "--no-legend", "--no-pager", "--no-ask-password"],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("cannot tell whether systemd restarts the keeper (%s): stopping", error)
        return False
    return restart_job_pending(jobs.stdout, unit)
