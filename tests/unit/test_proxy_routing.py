"""Routing decisions of the proxy: a pure function of the cluster view."""

from __future__ import annotations

from typing import Any

import pytest

from rhizome.proxy.routing import (
    Backend,
    Routes,
    RoutingSettings,
    choose_backend,
    compute_routes,
)
from rhizome.spec import ClusterSpec, KeeperSettings, TimingSettings
from rhizome.store.documents import ClusterState, KeeperAssignment, KeeperInfo, ProxyTarget
from rhizome.store.view import ClusterView, Stored

SETTINGS = RoutingSettings(max_standby_lag_bytes=1000, fallback_to_master=False)
PG1 = Backend("pg1", "10.0.0.1", 5432)
PG2 = Backend("pg2", "10.0.0.2", 5432)
PG3 = Backend("pg3", "10.0.0.3", 5432)


def keeper(name: str, **observations: Any) -> Stored[KeeperInfo]:
    values: dict[str, Any] = {"running": True, "healthy": True, "role": "standby", "lag_bytes": 0}
    values.update(observations)
    number = name[-1]
    info = KeeperInfo(name=name, host=f"10.0.0.{number}", port=5432, observed_at=1.0, **values)
    return Stored(document=info, mod_revision=5)


def state(master: str | None = "pg1", generation: int = 4) -> ClusterState:
    names = ("pg1", "pg2", "pg3")
    anchor = master or "pg1"
    assignments = {
        name: KeeperAssignment(role="standby", follow=anchor) for name in names if name != anchor
    }
    assignments[anchor] = KeeperAssignment(role="master" if master else "fenced")
    target = (
        ProxyTarget(proxy_generation=generation, master=master, host="10.0.0.1", port=5432)
        if master
        else ProxyTarget(proxy_generation=generation)
    )
    return ClusterState(
        generation=9, initialized=True, master=master, assignments=assignments, proxy_target=target
    )


def view(
    cluster_state: ClusterState | None = None,
    keepers: dict[str, Stored[KeeperInfo]] | None = None,
    spec: ClusterSpec | None = None,
) -> ClusterView:
    return ClusterView(
        revision=42,
        spec=None if spec is None else Stored(document=spec, mod_revision=2),
        state=None if cluster_state is None else Stored(document=cluster_state, mod_revision=3),
        keepers=keepers
        if keepers is not None
        else {
            "pg1": keeper("pg1", role="primary", lag_bytes=None),
            "pg2": keeper("pg2"),
            "pg3": keeper("pg3"),
        },
    )


def test_no_state_routes_nowhere():
    routes = compute_routes(view(None), SETTINGS)
    assert routes.master is None and routes.read_only_targets == ()
    assert routes.proxy_generation == 0 and routes.revision == 42


def test_the_published_target_is_the_read_write_backend():
    routes = compute_routes(view(state("pg1", generation=4)), SETTINGS)
    assert routes.master == PG1 and routes.proxy_generation == 4
    assert routes.read_only_targets == (PG2, PG3)
    assert routes.read_only_allowed == {PG2, PG3}
    assert dict(routes.standby_exclusions) == {"pg1": "is the master"}


def test_a_target_of_none_routes_nowhere_and_keeps_the_generation():
    routes = compute_routes(view(state(None, generation=5)), SETTINGS)
    assert routes.master is None and routes.proxy_generation == 5
    assert not routes.permits(False, PG1)


@pytest.mark.parametrize(
    ("observations", "reason"),
    [
        ({"running": False, "role": "unknown"}, "is not running"),
        ({"healthy": False}, "is unhealthy"),
        ({"role": "primary"}, "reports role primary"),
        ({"lag_bytes": None}, "has no known WAL position"),
        ({"lag_bytes": 1001}, "lags 1001 bytes (bound 1000)"),
    ],
)
def test_standbys_that_cannot_serve_reads_are_left_out(observations, reason):
    keepers = {"pg2": keeper("pg2", **observations), "pg3": keeper("pg3")}
    routes = compute_routes(view(state(), keepers), SETTINGS)
    assert routes.read_only_targets == (PG3,)
    assert dict(routes.standby_exclusions)["pg2"] == reason


def test_lag_is_computed_from_positions_when_the_keeper_reports_none():
    keepers = {
        "pg1": keeper("pg1", role="primary", lag_bytes=None, write_lsn=10_000, flush_lsn=9_990),
        "pg2": keeper("pg2", lag_bytes=None, replay_lsn=9_500, receive_lsn=9_990),
        "pg3": keeper("pg3", lag_bytes=None, receive_lsn=8_000),
    }
    routes = compute_routes(view(state(), keepers), SETTINGS)
    assert routes.read_only_targets == (PG2,), "replay position counts, receive as fallback"
    assert dict(routes.standby_exclusions)["pg3"] == "lags 2000 bytes (bound 1000)"


def test_without_a_master_standbys_are_measured_against_the_best_known_position():
    keepers = {
        "pg1": keeper("pg1", role="unknown", running=False, lag_bytes=None),
        "pg2": keeper("pg2", lag_bytes=None, replay_lsn=50_000),
        "pg3": keeper("pg3", lag_bytes=None, replay_lsn=45_000),
    }
    routes = compute_routes(view(state(None), keepers), SETTINGS)
    assert routes.read_only_targets == (PG2,)


def test_lag_at_the_bound_qualifies():
    keepers = {"pg2": keeper("pg2", lag_bytes=1000)}
    assert compute_routes(view(state(), keepers), SETTINGS).read_only_targets == (PG2,)


def test_maintenance_excludes_a_standby_and_closes_its_connections():
    spec = ClusterSpec(keepers={"pg2": KeeperSettings(maintenance=True)})
    routes = compute_routes(view(state(), spec=spec), SETTINGS)
    assert routes.read_only_targets == (PG3,)
    assert dict(routes.standby_exclusions)["pg2"] == "is in maintenance"
    assert not routes.permits(True, PG2) and routes.permits(True, PG3)


def test_lag_and_health_steer_new_connections_but_keep_existing_ones():
    keepers = {"pg2": keeper("pg2", lag_bytes=10**9, healthy=False), "pg3": keeper("pg3")}
    routes = compute_routes(view(state(), keepers), SETTINGS)
    assert routes.read_only_targets == (PG3,)
    assert routes.permits(True, PG2)


def test_a_keeper_not_assigned_standby_is_not_read_from():
    cluster_state = state().with_changes(
        assignments={
            "pg1": KeeperAssignment(role="master"),
            "pg3": KeeperAssignment(role="removed"),
        }
    )
    routes = compute_routes(view(cluster_state), SETTINGS)
    assert routes.read_only_targets == ()
    assert dict(routes.standby_exclusions)["pg2"] == "is not assigned standby"
    assert not routes.permits(True, PG2) and not routes.permits(True, PG3)


def test_fallback_to_master_only_when_no_standby_qualifies():
    fallback = RoutingSettings(max_standby_lag_bytes=1000, fallback_to_master=True)
    with_standbys = compute_routes(view(state()), fallback)
    assert with_standbys.read_only_targets == (PG2, PG3)
    assert with_standbys.permits(True, PG1), "fallback connections to the master may stay"
    without = compute_routes(view(state(), {"pg1": keeper("pg1", role="primary")}), fallback)
    assert without.read_only_targets == (PG1,)
    only_master = {"pg1": keeper("pg1", role="primary")}
    assert compute_routes(view(state(None), only_master), fallback).read_only_targets == ()
    during_failover = compute_routes(view(state(None)), fallback)
    assert during_failover.read_only_targets == (PG2, PG3), "standbys still serve reads"


def test_the_keeper_being_promoted_stops_serving_reads_at_once():
    promoting = state(None).with_changes(
        master="pg2",
        assignments={
            "pg1": KeeperAssignment(role="fenced"),
            "pg2": KeeperAssignment(role="master"),
            "pg3": KeeperAssignment(role="standby", follow="pg2"),
        },
    )
    routes = compute_routes(view(promoting), SETTINGS)
    assert routes.master is None, "the proxy target is still none"
    assert routes.read_only_targets == (PG3,) and not routes.permits(True, PG2)


def test_a_promoted_standby_loses_its_read_only_connections_without_fallback():
    routes = compute_routes(view(state("pg2")), SETTINGS)
    assert not routes.permits(True, PG2)
    assert routes.permits(True, PG3)


def test_timing_comes_from_the_spec():
    timing = TimingSettings(proxy_hold_timeout=3.0)
    routes = compute_routes(view(state(), spec=ClusterSpec(timing=timing)), SETTINGS)
    assert routes.timing.proxy_hold_timeout == 3.0
    assert compute_routes(view(state()), SETTINGS).timing == TimingSettings()


def test_nowhere_and_same_targets():
    routes = compute_routes(view(state()), SETTINGS)
    nowhere = routes.nowhere()
    assert nowhere.master is None and not nowhere.read_only_allowed
    assert nowhere.proxy_generation == routes.proxy_generation
    relabelled = Routes(**{**routes.__dict__, "revision": 99})
    assert routes.same_targets(relabelled) and not routes.same_targets(nowhere)


def test_choose_backend_prefers_the_least_loaded_and_rotates_among_equals():
    candidates = (PG2, PG3)
    assert choose_backend((), {}, 0) is None
    assert choose_backend(candidates, {PG2: 3, PG3: 1}, 0) == PG3
    assert {choose_backend(candidates, {}, turn) for turn in range(2)} == {PG2, PG3}
    assert choose_backend(candidates, {PG1: 9}, 1) == PG3
