"""decide(): the synchronous standby set changes in two phases (add before remove)."""

from __future__ import annotations

from typing import Any

import pytest

from rhizome.sentinel.decision import decide
from rhizome.spec import ClusterSpec
from rhizome.store.documents import KeeperInfo
from rhizome.store.state import ClusterState
from tests.unit.sentinel_builders import (
    GENERATION,
    MIB,
    NOW,
    observe,
    primary,
    spec,
    standby,
    state,
)

SYNC = spec(sync=True)


def master(
    in_effect: tuple[str, ...] = (),
    streaming: tuple[str, ...] = ("pg2", "pg3"),
    position: int = 100 * MIB,
    synchronous: tuple[str, ...] | None = None,
) -> KeeperInfo:
    """pg1; its WAL senders count as synchronous the streaming names in effect by default."""
    if synchronous is None:
        synchronous = tuple(name for name in in_effect if name in streaming)
    return primary(
        "pg1", position, synchronous_standby_names=in_effect, streaming_standbys=streaming,
        synchronous_streaming=synchronous,
    )  # fmt: skip


def sets(cluster_state: ClusterState) -> tuple[tuple[str, ...], tuple[str, ...]]:
    standbys = cluster_state.synchronous_standbys
    return standbys.requested, standbys.confirmed


CASES: dict[str, tuple[Any, ...]] = {
    # (spec, current (requested, confirmed), keepers, expected (requested, confirmed))
    "enabling adds the preferred streaming standby": (
        SYNC,
        ((), ()),
        [master(), standby("pg2"), standby("pg3")],
        (("pg2",), ()),
    ),
    "priority prefers another standby": (
        spec(sync=True, keepers={"pg3": {"priority": 9}}),
        ((), ()),
        [master(), standby("pg2"), standby("pg3")],
        (("pg3",), ()),
    ),
    "a standby that does not stream yet is not added": (
        SYNC,
        ((), ()),
        [master(streaming=("pg3",)), standby("pg2"), standby("pg3", healthy=False)],
        ((), ()),
    ),
    "confirmed once in effect and caught up": (
        SYNC,
        (("pg2",), ()),
        [master(("pg2",)), standby("pg2"), standby("pg3")],
        (("pg2",), ("pg2",)),
    ),
    "not confirmed before the master applies it": (
        SYNC,
        (("pg2",), ()),
        [master(()), standby("pg2"), standby("pg3")],
        (("pg2",), ()),
    ),
    "not confirmed before the master's WAL sender counts the addition as synchronous": (
        SYNC,
        (("pg2",), ()),
        [master(("pg2",), synchronous=()), standby("pg2"), standby("pg3")],
        (("pg2",), ()),
    ),
    "confirmed at the names in effect from a keeper that reports no sync_state": (
        SYNC,
        (("pg2",), ()),
        [
            primary("pg1", synchronous_standby_names=("pg2",), streaming_standbys=("pg2", "pg3")),
            standby("pg2"),
            standby("pg3"),
        ],
        (("pg2",), ("pg2",)),
    ),
    "not confirmed before the added standby caught up": (
        SYNC,
        (("pg2",), ()),
        [master(("pg2",), position=120 * MIB), standby("pg2", 119 * MIB), standby("pg3")],
        (("pg2",), ()),
    ),
    "a dead member is replaced: first the replacement is added": (
        SYNC,
        (("pg2",), ("pg2",)),
        [master(("pg2",), streaming=("pg3",)), standby("pg3")],
        (("pg2", "pg3"), ("pg2",)),
    ),
    "confirmed addition, then the dead member is removed": (
        SYNC,
        (("pg2", "pg3"), ("pg2",)),
        [master(("pg2", "pg3"), streaming=("pg3",)), standby("pg3")],
        (("pg3",), ("pg2", "pg3")),
    ),
    "removal confirmed": (
        SYNC,
        (("pg3",), ("pg2", "pg3")),
        [master(("pg3",), streaming=("pg3",)), standby("pg3")],
        (("pg3",), ("pg3",)),
    ),
    "a dead member stays while no replacement exists (min_standbys)": (
        SYNC,
        (("pg2",), ("pg2",)),
        [master(("pg2",), streaming=()), standby("pg3", healthy=False)],
        (("pg2",), ("pg2",)),
    ),
    "max_standbys 2 adds both": (
        spec(sync=True, max_standbys=2),
        ((), ()),
        [master(), standby("pg2"), standby("pg3")],
        (("pg2", "pg3"), ()),
    ),
    "lowering max_standbys removes one": (
        SYNC,
        (("pg2", "pg3"), ("pg2", "pg3")),
        [master(("pg2", "pg3")), standby("pg2"), standby("pg3")],
        (("pg2",), ("pg2", "pg3")),
    ),
    "disabling removes every member": (
        spec(),
        (("pg2",), ("pg2",)),
        [master(("pg2",)), standby("pg2"), standby("pg3")],
        ((), ("pg2",)),
    ),
    "an addition that went away is cancelled": (
        SYNC,
        (("pg2", "pg3"), ("pg2",)),
        [master(("pg2",), streaming=("pg2",)), standby("pg2")],
        (("pg2",), ("pg2",)),
    ),
}


@pytest.mark.parametrize(
    ("cluster_spec", "current", "keepers", "expected"), CASES.values(), ids=CASES.keys()
)
def test_synchronous_set_steps(
    cluster_spec: ClusterSpec,
    current: tuple[tuple[str, ...], tuple[str, ...]],
    keepers: list[KeeperInfo],
    expected: tuple[tuple[str, ...], tuple[str, ...]],
) -> None:
    cluster_state = state(synchronous=current)
    decision = decide(observe(cluster_spec, cluster_state, keepers))
    assert sets(decision.state) == expected
    changed = expected != current
    assert decision.state.generation == GENERATION + (1 if changed else 0)


def test_a_confirmed_synchronous_standby_exists_throughout_a_replacement() -> None:
    cluster_state = state(synchronous=(("pg2",), ("pg2",)))
    streams = ["pg2", "pg3"]
    seen: list[frozenset[str]] = []
    for _ in range(6):
        in_effect = cluster_state.synchronous_standbys.requested
        keepers = [master(in_effect, streaming=tuple(streams)), standby("pg3")]
        streams = ["pg3"]  # pg2 died
        cluster_state = decide(observe(SYNC, cluster_state, keepers, now=NOW)).state
        seen.append(cluster_state.synchronous_standbys.promotable)
    assert all(seen), seen
    assert sets(cluster_state) == (("pg3",), ("pg3",))


def test_a_dead_synchronous_standby_is_never_removed_from_the_cluster() -> None:
    cluster_state = state(
        synchronous=(("pg2",), ("pg2",)), missing_keepers_since={"pg2": NOW - 10 * 86400}
    )
    keepers = [master(("pg2",), streaming=()), standby("pg3", healthy=False)]
    result = decide(observe(SYNC, cluster_state, keepers)).state
    assert "pg2" in result.assignments and result is cluster_state
