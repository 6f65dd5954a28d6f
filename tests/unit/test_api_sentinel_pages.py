"""The sentinel's checks and the cluster's metrics from a store view."""

from __future__ import annotations

from rhizome.api.exposition import render
from rhizome.api.requests import Request
from rhizome.api.sentinel_pages import SentinelSnapshot, checks, sentinel_routes, sentinel_samples
from rhizome.spec import ClusterSpec
from rhizome.store.documents import CommandResult, RoleChange
from tests.unit.test_cli_status import NOW, keeper, running_state, view_of

MIB = 1024 * 1024


def cluster(master_writable: bool = True):
    state = running_state(
        history=(
            RoleChange(at=NOW - 100, generation=2, kind="initialisation", old_master=None,
                       new_master="pg1", reason="first keeper"),
            RoleChange(at=NOW - 50, generation=5, kind="failover", old_master="pg2",
                       new_master="pg1", reason="pg2 lost its lease"),
        ),
        command_results=(
            CommandResult(command="s1", kind="switchover", outcome="done", reason="done",
                          finished_at=NOW - 20, write_pause=0.42),
        ),
    )  # fmt: skip
    return view_of(
        ClusterSpec(),
        state,
        keeper("pg1", role="primary", flush_lsn=100 * MIB, fenced=not master_writable),
        keeper("pg2", role="standby", replay_lsn=99 * MIB),  # 1 MiB behind the master
        keeper("pg3", role="standby", replay_lsn=80 * MIB),  # 20 MiB: over the 16 MiB bound
    )


def snapshot(**changes) -> SentinelSnapshot:
    base = {"sentinel_id": "s1", "view": cluster(), "leader": True, "lease_age": 0.3,
            "lease_ttl": 5.0, "loop_age": 0.1}  # fmt: skip
    return SentinelSnapshot(**(base | changes))


def test_the_cluster_metrics_tell_master_lag_and_role_changes():
    lines = render(sentinel_samples(snapshot())).splitlines()
    for line in ("rhizome_sentinel_leader 1", "rhizome_cluster_master_writable 1",
                 "rhizome_cluster_keepers 3", "rhizome_cluster_standbys_over_lag_bound 1",
                 'rhizome_cluster_role_changes{kind="failover"} 1',
                 'rhizome_cluster_role_changes{kind="switchover"} 0',
                 "rhizome_cluster_state_generation 7",
                 "rhizome_cluster_last_write_pause_seconds 0.42"):  # fmt: skip
        assert line in lines, line


def test_a_fenced_master_is_not_writable():
    lines = render(sentinel_samples(snapshot(view=cluster(master_writable=False)))).splitlines()
    assert "rhizome_cluster_master_writable 0" in lines
    assert "rhizome_cluster_master_fenced 1" in lines


def test_before_the_first_read_only_the_sentinel_itself_is_reported():
    text = render(sentinel_samples(snapshot(view=None, leader=False)))
    assert "rhizome_sentinel_store_synchronized 0" in text.splitlines()
    assert "rhizome_cluster_" not in text
    assert checks(snapshot(view=None)) == {"health": False, "liveness": True,
                                          "readiness": False, "leader": True}  # fmt: skip


def test_a_sentinel_whose_lease_is_older_than_its_ttl_is_unhealthy():
    assert checks(snapshot(lease_age=4.9))["health"]
    assert not checks(snapshot(lease_age=5.0))["health"], "etcd unreachable for a whole TTL"


def test_leader_and_liveness_pages():
    routes = sentinel_routes(lambda: snapshot(leader=False, loop_age=9.0))
    assert routes["/leader"](Request("GET", "/leader"))[0] == 503
    assert routes["/liveness"](Request("GET", "/liveness"))[0] == 503
    assert routes["/health"](Request("GET", "/health"))[0] == 200
