"""The leader decides when the store changed or a timer of its last decision ran out,
not on every pass its lease renewal wakes (rhizome.sentinel.runner)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, cast

import pytest

from rhizome.sentinel import runner
from rhizome.sentinel.decision import ClusterObservation
from rhizome.sentinel.decision.model import Decision
from rhizome.sentinel.runner import Sentinel
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import ClusterState, LeaderInfo
from rhizome.store.keys import ClusterKeys
from rhizome.store.view import ClusterView, Stored

LEASE = 7


class HeldLease:
    """A lease that renews at once and never runs out."""

    lease_id = LEASE
    granted_new = False
    ttl = 5

    def renew(self, within: float | None = None) -> bool:
        return True

    def seconds_since_renewal(self) -> float:
        return 0.0


class NoStore:
    client = object()
    keys = ClusterKeys("main")

    def watcher(self, idle_timeout: float = 5.0) -> None:
        return None


def leading_view(revision: int = 1) -> ClusterView:
    return ClusterView(
        revision=revision,
        spec=Stored(ClusterSpec(), 1),
        state=Stored(ClusterState(generation=3), 2),
        leader=Stored(LeaderInfo(sentinel_id="s1", elected_at=0.0), 3, LEASE),
    )


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Records each decision's time; every decision keeps the state, with a 0.2 s timer."""
    made: list[float] = []

    def decide(observation: ClusterObservation) -> Decision:
        made.append(observation.now)
        assert observation.state is not None
        return Decision(observation.state, (), (), recheck_at=observation.now + 0.2)

    monkeypatch.setattr(runner, "decide", decide)
    return made


def leader() -> Sentinel:
    sentinel = Sentinel(cast(ClusterStore, NoStore()), "s1")
    sentinel.lease = cast(Any, HeldLease())
    return sentinel


def test_a_pass_on_the_same_view_decides_nothing_until_a_timer_runs_out(
    decisions: list[float],
) -> None:
    sentinel = leader()
    view = leading_view()
    sentinel.step(view)
    sentinel.step(view)
    sentinel.step(view)
    assert len(decisions) == 1
    assert 0 < sentinel._wait() <= 0.2  # the loop still wakes for the timer
    time.sleep(0.25)
    sentinel.step(view)
    assert len(decisions) == 2


def test_a_changed_view_is_decided_at_once(decisions: list[float]) -> None:
    sentinel = leader()
    view = leading_view()
    sentinel.step(view)
    sentinel.step(replace(view, revision=2))  # what the follower builds after a change
    assert len(decisions) == 2


def test_after_a_lost_lease_the_same_view_is_decided_again(decisions: list[float]) -> None:
    sentinel = leader()
    view = leading_view()
    sentinel.step(view)
    sentinel.lease.seconds_since_renewal = lambda: 60.0  # type: ignore[method-assign]
    sentinel.step(view)  # cannot count on its lease: no decision
    sentinel.lease.seconds_since_renewal = lambda: 0.0  # type: ignore[method-assign]
    sentinel.step(view)
    assert len(decisions) == 2
