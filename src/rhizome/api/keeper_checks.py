"""The keeper's health checks, in the convention load balancers of this field expect (pure).

Each check answers 200 or 503 with the same JSON body (what the keeper knows
now), so that HAProxy, a cloud load balancer or a service registry can route
by the status alone:

- `/primary` (also `/master`, `/read-write`): the master of the store's state,
  holding a fresh lease, whose PostgreSQL is a primary that may accept writes;
- `/replica` (`/standby`): a running, healthy standby; `?lag=16MB` (or bytes)
  also asks that it is at most that far behind its upstream;
- `/read-only`: either of the above (with `?lag=` for standbys);
- `/synchronous` (`/sync`), `/asynchronous` (`/async`): a replica that is, or is
  not, a synchronous standby every commit waits for;
- `/health`: PostgreSQL runs; `/liveness`: the keeper's fencing watchdog
  ticked within the last second (its loop may be busy for long, e.g. during
  a base backup: see rhizome_keeper_loop_age_seconds);
  `/readiness`: a primary as above, or a healthy standby.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from rhizome.api.requests import Handler, Page, Request, json_page, text_page
from rhizome.store.documents import KeeperInfo

LIVENESS_SLACK = 0.75
"""Seconds a tick of the fencing watchdog may come later than its longest sleep
(`watchdog_interval`) before the keeper is not alive."""
LAG_PATTERN = re.compile(r"(\d+)\s*(B|kB|KB|MB|GB|TB)?")
LAG_UNITS = {None: 1, "B": 1, "kB": 1024, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
LAG_UNITS["TB"] = 1024**4


@dataclass(frozen=True)
class FailsafeCounts:
    """The keeper's failsafe figures (rhizome.failsafe)."""

    active: bool = False
    """PostgreSQL stays writable on confirmations, not on a lease renewal."""
    complete_rounds: int = 0
    refused_rounds: int = 0
    confirmations_given: int = 0


@dataclass(frozen=True)
class KeeperSnapshot:
    """What the keeper knows at one moment, gathered by its adapter (keeper/api.py)."""

    name: str
    info: KeeperInfo | None
    """The last observation of PostgreSQL (None before the first)."""
    assigned_master: bool
    """The store's state names this keeper master."""
    synchronous: bool
    """This keeper is a synchronous standby of the state (requested and confirmed)."""
    may_accept_writes: bool
    """The keeper's own flag: its PostgreSQL may accept writes now."""
    lag_bytes: int | None
    """A standby's distance to the master's last published position (None: unknown)."""
    lease_age: float
    """Seconds since the lease was last renewed (inf: no lease)."""
    lease_fresh: bool
    loop_age: float
    """Seconds since the keeper's loop last ran a pass (long during a base backup)."""
    watchdog_age: float
    """Seconds since the fencing watchdog last ticked (after every lease renewal)."""
    watchdog_interval: float
    """The fencing watchdog's longest sleep (keeper.lease.heartbeat_interval_of)."""
    failsafe: FailsafeCounts = FailsafeCounts()


def parse_lag(text: str) -> int | None:
    """Bytes from "16777216", "16MB", "512kB"; None when it is neither."""
    found = LAG_PATTERN.fullmatch(text.strip())
    if found is None:
        return None
    return int(found.group(1)) * LAG_UNITS[found.group(2)]


def is_primary(snapshot: KeeperSnapshot) -> bool:
    info = snapshot.info
    return (
        info is not None
        and info.running
        and info.role == "primary"
        and snapshot.assigned_master
        and snapshot.may_accept_writes
        and snapshot.lease_fresh
    )


def is_replica(snapshot: KeeperSnapshot, max_lag: int | None = None) -> bool:
    info = snapshot.info
    if info is None or not (info.running and info.healthy and info.role == "standby"):
        return False
    if snapshot.assigned_master or snapshot.may_accept_writes:
        return False
    lag = snapshot.lag_bytes
    return max_lag is None or (lag is not None and lag <= max_lag)


def body(snapshot: KeeperSnapshot, check: str, passed: bool) -> dict[str, object]:
    info = snapshot.info
    return {
        "check": check,
        "passed": passed,
        "keeper": snapshot.name,
        "state_role": "master" if snapshot.assigned_master else "standby",
        "postgres_running": bool(info and info.running),
        "postgres_role": info.role if info else "unknown",
        "accepts_writes": snapshot.may_accept_writes,
        "timeline": info.timeline if info else None,
        "lag_bytes": snapshot.lag_bytes,
        "synchronous": snapshot.synchronous,
        "fenced": bool(info and info.fenced),
        "lease_age_seconds": round(snapshot.lease_age, 3) if snapshot.lease_age < 1e9 else None,
        "last_error": info.last_error if info else None,
    }


def checks(snapshot: KeeperSnapshot, max_lag: int | None) -> dict[str, bool]:
    """Every check's verdict for one snapshot and one lag bound."""
    primary = is_primary(snapshot)
    replica = is_replica(snapshot, max_lag)
    info = snapshot.info
    return {
        "primary": primary,
        "replica": replica,
        "read-only": primary or replica,
        "synchronous": replica and snapshot.synchronous,
        "asynchronous": replica and not snapshot.synchronous,
        "health": bool(info and info.running),
        "liveness": snapshot.watchdog_age <= snapshot.watchdog_interval + LIVENESS_SLACK,
        "readiness": primary or is_replica(snapshot),
    }


ALIASES = {
    "primary": ("/primary", "/master", "/read-write"),
    "replica": ("/replica", "/standby"),
    "read-only": ("/read-only",),
    "synchronous": ("/synchronous", "/sync"),
    "asynchronous": ("/asynchronous", "/async"),
    "health": ("/health",),
    "liveness": ("/liveness",),
    "readiness": ("/readiness",),
}


def check_page(snapshot: KeeperSnapshot, check: str, request: Request) -> Page:
    """200 when `check` passes, else 503; 400 for a malformed ?lag=."""
    max_lag = None
    if "lag" in request.query:
        max_lag = parse_lag(request.query["lag"])
        if max_lag is None:
            return text_page(400, f"lag={request.query['lag']!r}: write bytes, or e.g. 16MB")
    passed = checks(snapshot, max_lag)[check]
    return json_page(200 if passed else 503, body(snapshot, check, passed))


def answer_check(snapshot_of: Callable[[], KeeperSnapshot], check: str, request: Request) -> Page:
    return check_page(snapshot_of(), check, request)


def keeper_routes(snapshot_of: Callable[[], KeeperSnapshot]) -> dict[str, Handler]:
    """Every health-check path, answered from a fresh snapshot."""
    return {
        path: functools.partial(answer_check, snapshot_of, check)
        for check, paths in ALIASES.items()
        for path in paths
    }
