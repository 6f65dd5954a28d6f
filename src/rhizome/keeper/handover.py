"""A restarted keeper takes over the PostgreSQL its predecessor left running.

The keeper keeps ``<state_dir>/handoff.json`` (0600) current: its lease, its
instance id, its guard's and its postmaster's PIDs and the timings of its
lease. A keeper that starts and finds a fencing guard on
``<state_dir>/guard.sock`` checks the guard's status against that file
(`handoff_problem`), adopts the postmaster and then tries to keep the same
lease (keeper/loop.py). Anything inconsistent falls back to the path of a
keeper that finds a stray postmaster: it is stopped (docs/fencing.md,
"Restarts and pause").
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.guard_link import GuardLink, GuardStatus
from rhizome.keeper.lease import LeaseGuard, fencing_point
from rhizome.keeper.postmaster import Postmaster, stop_stray_postmaster
from rhizome.keeper.process_tree import postmaster_of
from rhizome.lease import LeaseHolder

log = logging.getLogger(__name__)

HANDOFF_FILE = "handoff.json"
GUARD_SOCKET = "guard.sock"


@dataclass(frozen=True)
class Handoff:
    """What a keeper leaves for the next one (all of it checked before use)."""

    lease_id: int
    lease_ttl: float
    renew_interval: float
    fence_deadline: float
    instance_id: str
    data_dir: str
    guard_pid: int
    postmaster_pid: int | None


def parse_handoff(text: str) -> Handoff:
    """The handoff file's content; ValueError naming what is wrong."""
    try:
        fields = json.loads(text)
        handoff = Handoff(**fields)
    except (ValueError, TypeError) as error:
        raise ValueError(f"unreadable handoff file: {error}") from None
    numbers = (handoff.lease_ttl, handoff.renew_interval, handoff.fence_deadline)
    if not all(isinstance(value, int | float) and value > 0 for value in numbers):
        raise ValueError("unreadable handoff file: the lease timings must be positive numbers")
    if not isinstance(handoff.lease_id, int) or not isinstance(handoff.guard_pid, int):
        raise ValueError("unreadable handoff file: lease_id and guard_pid must be integers")
    if handoff.postmaster_pid is not None and not isinstance(handoff.postmaster_pid, int):
        raise ValueError("unreadable handoff file: postmaster_pid must be an integer or null")
    return handoff


def handoff_problem(
    handoff: Handoff,
    status: GuardStatus | None,
    *,
    data_dir: Path,
    instance_id: str,
    live_postmaster: int | None,
) -> str | None:
    """Why the running PostgreSQL cannot be taken over (None: it can); pure."""
    if status is None:
        return f"no fencing guard answers (the previous keeper's was pid {handoff.guard_pid})"
    if status.peer_pid != status.guard_pid or status.guard_pid != handoff.guard_pid:
        return (
            f"the guard on the socket is pid {status.peer_pid} (says {status.guard_pid}),"
            f" the handoff names pid {handoff.guard_pid}"
        )
    if handoff.instance_id != instance_id:
        return f"the handoff is of instance {handoff.instance_id}, this keeper is {instance_id}"
    if Path(handoff.data_dir) != data_dir:
        return f"the handoff is for data directory {handoff.data_dir}, not {data_dir}"
    if status.postmaster_pid != live_postmaster:
        return (
            f"the guard's postmaster is pid {status.postmaster_pid}, the data directory's"
            f" postmaster.pid names {live_postmaster}"
        )
    return None


def handoff_of(
    lease: LeaseGuard, instance_id: str, data_dir: Path, guard_pid: int | None,
    postmaster_pid: int | None,
) -> Handoff:  # fmt: skip
    return Handoff(
        lease_id=lease.lease_id or 0, lease_ttl=lease.holder.ttl,
        renew_interval=lease.renew_interval, fence_deadline=lease.fence_deadline,
        instance_id=instance_id, data_dir=str(data_dir), guard_pid=guard_pid or 0,
        postmaster_pid=postmaster_pid,
    )  # fmt: skip


def write_handoff(path: Path, handoff: Handoff) -> None:
    """Replace the handoff file atomically (0600)."""
    temporary = path.with_name(path.name + ".new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(asdict(handoff), file)
    os.replace(temporary, path)


@dataclass(frozen=True)
class TakenOver:
    handoff: Handoff
    status: GuardStatus


def take_over(
    keeper: KeeperConfig, guard: GuardLink, postmaster: Postmaster, instance_id: str
) -> TakenOver | None:
    """Attach to the guard and adopt its postmaster, or start afresh (None)."""
    path = keeper.state_dir / HANDOFF_FILE
    if not guard.socket_path.exists():  # no guard left running (it removes its socket)
        start_afresh(keeper, guard)
        return None
    try:
        handoff = parse_handoff(path.read_text())
    except (OSError, ValueError) as error:
        log.warning("not taking over a running PostgreSQL: %s; starting afresh", error)
        start_afresh(keeper, guard)
        return None
    status = guard.attach()
    problem = handoff_problem(
        handoff, status, data_dir=keeper.data_dir, instance_id=instance_id,
        live_postmaster=postmaster_of(keeper.data_dir),
    )  # fmt: skip
    if problem is not None or status is None:
        log.warning(
            "not taking over a running PostgreSQL: %s; a running postmaster is stopped", problem
        )
        guard.abandon()
        start_afresh(keeper, guard)
        return None
    if status.postmaster_pid is not None:
        standby = (keeper.data_dir / "standby.signal").exists()
        postmaster.adopt(status.postmaster_pid, may_accept_writes=status.armed or not standby)
    log.info(
        "took over from the previous keeper: guard pid %d (mode %s, %s), PostgreSQL pid %s",
        status.guard_pid, status.mode, "armed" if status.armed else "disarmed",
        status.postmaster_pid or "none",
    )  # fmt: skip
    return TakenOver(handoff, status)


def start_afresh(keeper: KeeperConfig, guard: GuardLink) -> None:
    """Today's path: stop any postmaster left running, start a guard of our own."""
    stop_stray_postmaster(keeper.data_dir)
    guard.start()


def adopt_lease(
    handoff: Handoff, holder: LeaseHolder, guard: GuardLink, postmaster: Postmaster
) -> Literal["kept", "held", "crashed"]:
    """Keep the previous keeper's lease (kept). Without it, a writable PostgreSQL is a
    crashed master, killed and held back (crashed), unless the guard holds it under
    pause rules (held: it runs on, a new lease is granted)."""
    if holder.adopt(handoff.lease_id, fencing_point(handoff.fence_deadline)):
        log.info("kept lease %x of the previous keeper", handoff.lease_id)
        if postmaster.may_accept_writes:
            guard.arm(holder.renewed_at + handoff.fence_deadline)
        guard.set_mode("hold" if guard.mode == "hold" else "normal")
        return "kept"
    if guard.mode == "hold":
        log.warning("the previous keeper's lease is gone; PostgreSQL runs on (paused)")
        return "held"
    if postmaster.running and postmaster.may_accept_writes:
        log.error("the previous keeper's lease is gone: killing its writable PostgreSQL")
        postmaster.kill()
    guard.set_mode("normal")
    return "crashed"
