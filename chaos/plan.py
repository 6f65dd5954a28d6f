"""The fault schedule: a pure function of a seed (no I/O, no clock).

`plan(seed, count, kinds)` returns the same faults for the same arguments.
Kinds are drawn in shuffled rounds (every kind once per round) so that a short
run still covers every kind; each fault gets a target (the master or one of the
standbys, resolved when it runs), a duration within its kind's bounds, and
sometimes an operator's operation run while it lasts (a switchover, a standby's
maintenance, or a PostgreSQL restart for a pending parameter).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

PROCESS_KINDS = (
    "node-kill",
    "node-freeze",
    "keeper-kill",
    "keeper-freeze",
    "postgres-kill",
    "postgres-freeze",
    "proxy-kill",
    "proxy-freeze",
    "etcd-kill",
    "etcd-freeze",
)
NETWORK_KINDS = (
    "node-isolate",
    "node-etcd-cut",
    "etcd-minority",
    "etcd-blackhole",
    "etcd-outage",
    "proxy-master-cut",
    "etcd-no-quorum",
    "node-inbound-drop",
)
OPERATION_KINDS = ("switchover",)
ALL_KINDS = PROCESS_KINDS + NETWORK_KINDS + OPERATION_KINDS
FAILSAFE_KINDS = ("etcd-freeze-all", "etcd-freeze-all-and-proxy")
"""Whole-etcd outages for a cluster with failsafe on (not in the standard campaign):
every member SIGSTOPped; with -and-proxy, a standby's proxy frozen first (it
cannot confirm, so the master must fence)."""
KNOWN_KINDS = ALL_KINDS + FAILSAFE_KINDS
CLUSTER_WIDE_KINDS = ("etcd-outage", "etcd-no-quorum", "etcd-freeze-all")
"""Faults on the whole cluster (their target is "master" by convention)."""
STANDBY_ONLY_KINDS = ("proxy-master-cut", "etcd-freeze-all-and-proxy")
"""Faults whose node is always a standby (the proxy of a node other than the master)."""
OPERATIONS_DURING = ("switchover", "maintenance", "pending-restart")
"""Operations that can run during a fault: never during a switchover or a cluster-wide
loss of etcd (every operation goes through the store and would only fail)."""
NO_OPERATION_KINDS = ("switchover", *CLUSTER_WIDE_KINDS, *FAILSAFE_KINDS)

DURATION_BOUNDS: dict[str, tuple[float, float]] = {kind: (3.0, 15.0) for kind in ALL_KINDS}
for _kind in ("etcd-outage", "etcd-no-quorum", *FAILSAFE_KINDS):
    DURATION_BOUNDS[_kind] = (5.0, 60.0)
DURATION_BOUNDS["switchover"] = (0.0, 0.0)
OPERATION_DURING_PROBABILITY = 0.2
MASTER_PROBABILITY = 0.6
STANDBY_COUNT = 2


@dataclass(frozen=True)
class Fault:
    """One fault: what, on whom, for how long, and which operation (if any) runs meanwhile."""

    number: int
    kind: str
    target: str
    """"master", or "standby1" / "standby2" (the standbys in name order)."""
    duration: float
    operation_during: str | None = None
    """One of OPERATIONS_DURING, started 1 s into the fault, or None."""

    def describe(self) -> str:
        extra = f" + {self.operation_during}" if self.operation_during else ""
        return f"#{self.number} {self.kind} on {self.target} for {self.duration:.1f} s{extra}"


def plan(
    seed: int,
    count: int,
    kinds: Sequence[str] = ALL_KINDS,
    duration_scale: float = 1.0,
) -> list[Fault]:
    """`count` faults drawn from `kinds`, reproducible from `seed`.

    `duration_scale` (0 < scale ≤ 1) shortens every duration toward its lower bound,
    for quick runs; the lower bounds stay.
    """
    unknown = sorted(set(kinds) - set(KNOWN_KINDS))
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {KNOWN_KINDS}; unknown: {unknown}")
    if count < 0 or not 0 < duration_scale <= 1:
        raise ValueError("count must be ≥ 0 and duration_scale in (0, 1]")
    generator = random.Random(seed)
    order: list[str] = []
    while len(order) < count:
        round_of_kinds = sorted(set(kinds))
        generator.shuffle(round_of_kinds)
        order += round_of_kinds
    return [_fault(generator, number, kind, duration_scale) for number, kind in
            enumerate(order[:count], start=1)]  # fmt: skip


def _fault(generator: random.Random, number: int, kind: str, scale: float) -> Fault:
    low, high = DURATION_BOUNDS[kind]
    duration = round(low + generator.random() * (high - low) * scale, 1)
    target = _target(generator, kind)
    operation = None
    if kind not in NO_OPERATION_KINDS and generator.random() < OPERATION_DURING_PROBABILITY:
        operation = generator.choice(OPERATIONS_DURING)
    return Fault(number, kind, target, duration, operation)


def _target(generator: random.Random, kind: str) -> str:
    if kind in CLUSTER_WIDE_KINDS or kind == "switchover":
        return "master"
    if kind not in STANDBY_ONLY_KINDS and generator.random() < MASTER_PROBABILITY:
        return "master"
    return f"standby{generator.randint(1, STANDBY_COUNT)}"
