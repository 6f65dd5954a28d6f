"""The pure plan of `rhizomectl store-move`: what is copied, what refuses, when it may finish."""

from __future__ import annotations

import pytest

from rhizome.etcd import KeyValue
from rhizome.spec import ClusterSpec, parse_spec
from rhizome.store.codec import encode_document
from rhizome.store.documents import KeeperInfo, LeaderInfo
from rhizome.store.keys import ClusterKeys, KeyKind
from rhizome.store.move import MoveRefused, copy_plan, finish_problems
from rhizome.store.state import ClusterState, KeeperAssignment

KEYS = ClusterKeys("main")
PAUSED = parse_spec({"paused": True})
STATE = ClusterState(
    generation=2,
    master="pg1",
    assignments={
        "pg1": KeeperAssignment(role="master"),
        "pg2": KeeperAssignment(role="standby", follow="pg1"),
    },
)


def item(key: str, document, lease: int = 0) -> KeyValue:
    return KeyValue(key, encode_document(document), 3, 5, 1, lease)


def keeper(name: str, holding: bool = True) -> KeyValue:
    info = KeeperInfo(
        name=name,
        host="10.0.0.1",
        port=5432,
        observed_at=1.0,
        running=True,
        healthy=True,
        holding=holding,
    )
    return item(KEYS.member(KeyKind.KEEPER, name), info, lease=9)


def source(spec: ClusterSpec = PAUSED) -> list[KeyValue]:
    return [
        item(KEYS.single(KeyKind.SPEC), spec),
        item(KEYS.single(KeyKind.STATE), STATE),
        item(KEYS.single(KeyKind.LEADER), LeaderInfo(sentinel_id="s1", elected_at=1.0), lease=9),
        keeper("pg1"),
        keeper("pg2"),
    ]


def test_only_the_operators_documents_are_copied():
    plan = copy_plan(KEYS, source(), [])
    assert [key for key, _ in plan] == [KEYS.single(KeyKind.SPEC), KEYS.single(KeyKind.STATE)]


def test_a_second_copy_copies_nothing_and_a_different_target_refuses():
    spec, state = source()[:2]
    assert copy_plan(KEYS, source(), [spec, state]) == []
    other = item(KEYS.single(KeyKind.STATE), ClusterState(generation=9))
    with pytest.raises(MoveRefused, match="already holds another document"):
        copy_plan(KEYS, source(), [other])


@pytest.mark.parametrize(
    ("items", "problem"),
    [
        (source(ClusterSpec()), "pause cluster main first"),
        (source()[1:], "no spec"),
        ([*source(), KeyValue(KEYS.single(KeyKind.STATE), b"{", 3, 5, 1, 0)], "corrupt"),
        ([*source()[:4], keeper("pg2", holding=False)], "not in force yet on keepers pg2"),
    ],
)
def test_a_move_that_cannot_be_done_safely_is_refused(items, problem):
    with pytest.raises(MoveRefused, match=problem):
        copy_plan(KEYS, items, [])


def test_finishing_waits_for_every_agent_to_leave_and_every_keeper_to_arrive():
    copied = [item(KEYS.single(KeyKind.SPEC), PAUSED), item(KEYS.single(KeyKind.STATE), STATE)]
    problems = finish_problems(KEYS, source(), [*copied, keeper("pg1")])
    assert "keepers/pg1, keepers/pg2, sentinel-leader" in problems[0]
    assert problems[1] == "keepers not yet running on the target API: pg2"
    assert finish_problems(KEYS, source()[:2], [*copied, keeper("pg1"), keeper("pg2")]) == []
    resumed = [
        item(KEYS.single(KeyKind.SPEC), ClusterSpec()),
        copied[1],
        keeper("pg1"),
        keeper("pg2"),
    ]
    assert finish_problems(KEYS, [], resumed) == [
        "the target's spec is not paused: keep the cluster paused until finished"
    ]
    assert "run the copy first" in finish_problems(KEYS, [], [])[0]
