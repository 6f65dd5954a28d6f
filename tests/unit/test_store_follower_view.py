"""StoreFollower.view(): decoded once per change, never stale (updates applied directly)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from rhizome.etcd import EventKind, KeyValue, WatchEvent, WatchUpdate
from rhizome.store.codec import encode_document
from rhizome.store.documents import ClusterState, KeeperInfo
from rhizome.store.follower import StoreFollower
from rhizome.store.keys import ClusterKeys, KeyKind

KEYS = ClusterKeys("main")


def follower() -> Any:
    store = SimpleNamespace(keys=KEYS, watcher=lambda idle_timeout: None)
    return StoreFollower(store)  # type: ignore[arg-type]


def keeper_item(name: str, observed_at: float, revision: int) -> KeyValue:
    info = KeeperInfo(
        name=name, host="127.0.0.1", port=5432, observed_at=observed_at, running=True, healthy=True
    )
    return KeyValue(KEYS.member(KeyKind.KEEPER, name), encode_document(info), 2, revision, 1, 0)


def test_the_view_is_reused_until_the_keys_change():
    watched = follower()
    watched._apply(
        WatchUpdate(revision=5, events=(WatchEvent(EventKind.PUT, keeper_item("pg1", 1.0, 5)),))
    )
    first = watched.view()
    assert watched.view() is first
    assert first.keepers["pg1"].document.observed_at == 1.0

    watched._apply(
        WatchUpdate(revision=6, events=(WatchEvent(EventKind.PUT, keeper_item("pg1", 2.0, 6)),))
    )
    second = watched.view()
    assert second is not first and second.keepers["pg1"].document.observed_at == 2.0

    state = ClusterState(generation=3)
    watched.record_own_write(KEYS.single(KeyKind.STATE), encode_document(state), 7)
    third = watched.view()
    assert third.state is not None and third.state.document.generation == 3
    assert third.revision == 7 and "pg1" in third.keepers


def test_a_progress_notification_keeps_the_view_and_wakes_nobody():
    watched = follower()
    watched._apply(
        WatchUpdate(revision=5, events=(WatchEvent(EventKind.PUT, keeper_item("pg1", 1.0, 5)),))
    )
    first = watched.view()
    watched._apply(WatchUpdate(revision=9))  # etcd's progress notification: no events
    assert watched.view() is first
    assert watched.wait_for_change(5, 0.05) == 9  # the revision moved on, without a wake-up
    watched._apply(WatchUpdate(revision=9))
    assert watched.view() is first
