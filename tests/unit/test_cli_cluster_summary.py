"""cluster_summary, what rhizome.pg.cluster_info returns, from ClusterViews of documents."""

from __future__ import annotations

import json
from typing import Any

from rhizome.cli.cluster_summary import cluster_summary
from rhizome.spec import ClusterSpec, parse_spec
from rhizome.store.documents import KeeperAssignment, KeeperInfo, LeaderInfo
from rhizome.store.view import ClusterView
from tests.unit.test_cli_status import NOW, keeper, proxy, running_state, view_of


def healthy_documents(**spec: Any) -> list[Any]:
    """Spec, state and keepers of a cluster whose two standbys stream from the master."""
    return [
        parse_spec({"synchronous_replication": {"enabled": True}} | spec),
        running_state(),
        keeper("pg1", role="primary", write_lsn=10_000, streaming_standbys=("pg2", "pg3")),
        keeper("pg2", role="standby", replay_lsn=9_000, pending_restart=("shared_buffers",)),
        keeper("pg3", role="standby", lag_bytes=0),
        proxy("proxy-a", acknowledged_generation=4),
        LeaderInfo(sentinel_id="s1", elected_at=NOW),
    ]


def summary_of(*documents: Any) -> dict[str, Any]:
    return cluster_summary(view_of(*documents), "main")


def replaced(documents: list[Any], *replacements: KeeperInfo) -> list[Any]:
    """The documents with the keepers of the same names replaced."""
    names = {replacement.name for replacement in replacements}
    kept = [d for d in documents if not (isinstance(d, KeeperInfo) and d.name in names)]
    return kept + list(replacements)


def test_a_healthy_cluster_reports_master_standbys_lag_and_sync_set():
    summary = summary_of(*healthy_documents())
    assert summary["healthy"] is True and summary["problems"] == []
    assert (summary["master"], summary["master_host"], summary["master_port"]) == (
        "pg1", "10.0.0.1", 5432,
    )  # fmt: skip
    pg2, pg3 = summary["standbys"]
    assert pg2 == {
        "name": "pg2", "role": "standby", "follow": "pg1", "host": "10.0.0.1", "port": 5432,
        "state": ["standby", "healthy"], "alive": True, "streaming": True, "lag_bytes": 1_000,
        "synchronous": True, "maintenance": False, "removed": False,
        "pending_restart": ["shared_buffers"],
    }  # fmt: skip
    assert pg3["lag_bytes"] == 0 and pg3["streaming"] and not pg3["synchronous"]  # only requested
    assert summary["synchronous"] == {
        "enabled": True, "requested": ["pg2", "pg3"], "confirmed": ["pg2"],
    }  # fmt: skip
    assert summary["pending_restart"] == ["pg2"]
    assert summary["proxies"] == {"proxy-a": 4} and summary["proxy_generation"] == 4
    assert summary["sentinel_leader"] == "s1" and summary["paused"] is False
    assert (summary["store_revision"], summary["spec_revision"], summary["state_generation"]) == (
        42, 5, 7,
    )  # fmt: skip
    json.dumps(summary)  # plain data, as Ansible returns it


def test_without_spec_or_state_the_cluster_is_not_healthy():
    empty = cluster_summary(ClusterView(revision=3), "main")
    assert empty["healthy"] is False and empty["master"] is None and empty["paused"] is None
    assert empty["problems"] == [
        "the cluster has no spec yet: apply one (rhizomectl init)",
        "no sentinel has published a state yet",
    ]
    spec_only = summary_of(ClusterSpec())
    assert spec_only["problems"] == ["no sentinel has published a state yet"]
    no_master = summary_of(
        ClusterSpec(), running_state(master=None, assignments={}, proxy_target={})
    )
    assert no_master["problems"] == ["the cluster has no master"]


def test_a_master_down_or_fenced_makes_the_cluster_unhealthy():
    documents = [d for d in healthy_documents() if getattr(d, "name", None) != "pg1"]
    down = summary_of(*documents)
    assert down["problems"][0] == "master pg1 is down: its keeper does not report"
    assert down["master_host"] is None
    # without the master's report no standby can be known to stream from it
    assert not any(standby["streaming"] for standby in down["standbys"])
    fenced = keeper("pg1", role="primary", fenced=True, streaming_standbys=("pg2", "pg3"))
    summary = summary_of(*replaced(healthy_documents(), fenced))
    assert summary["problems"] == ["master pg1 does not accept writes (primary, healthy, fenced)"]


def test_standbys_must_be_alive_and_streaming_unless_in_maintenance_or_removed():
    lagging = keeper("pg1", role="primary", write_lsn=10_000, streaming_standbys=("pg3",))
    documents = [
        d for d in replaced(healthy_documents(), lagging) if getattr(d, "name", "") != "pg3"
    ]
    summary = summary_of(*documents)
    assert summary["healthy"] is False
    assert summary["problems"] == [
        "standby pg2 is not streaming from pg1 (standby, healthy)",
        "standby pg3 is down: its keeper does not report",
    ]
    pg3 = summary["standbys"][1]
    assert (pg3["alive"], pg3["host"], pg3["state"], pg3["pending_restart"]) == (
        False, None, ["down"], [],
    )  # fmt: skip
    excused = {"keepers": {"pg2": {"maintenance": True}, "pg3": {"removed": True}}}
    documents[0] = parse_spec(excused)
    summary = summary_of(*documents)
    assert summary["healthy"] is True, summary["problems"]
    assert [(s["maintenance"], s["removed"]) for s in summary["standbys"]] == [
        (True, False), (False, True),
    ]  # fmt: skip


def test_a_second_writable_primary_is_a_problem_even_in_maintenance():
    rogue = keeper("pg2", role="primary", write_lsn=20_000)
    documents = replaced(healthy_documents(keepers={"pg2": {"maintenance": True}}), rogue)
    summary = summary_of(*documents)
    assert summary["problems"] == ["keeper pg2 accepts writes but is not the master"]


def test_unassigned_keepers_and_store_problems_are_reported():
    newcomer = keeper("pg4", role="unknown", running=False, healthy=False)
    summary = cluster_summary(
        view_of(*healthy_documents(), newcomer, raw={"/rhizome/main/proxies/bad": b"{"}), "main"
    )
    assert summary["problems"][0].startswith("store document '/rhizome/main/proxies/bad'")
    assert summary["problems"][1] == "standby pg4 is not streaming from pg1 (stopped)"
    assert summary["standbys"][-1]["role"] is None and summary["standbys"][-1]["follow"] is None


def test_a_removed_assignment_is_not_expected_to_stream():
    state = running_state(
        assignments={
            "pg1": KeeperAssignment(role="master"),
            "pg2": KeeperAssignment(role="standby", follow="pg1"),
            "pg3": KeeperAssignment(role="removed"),
        }
    )
    documents = [state if d.__class__ is type(state) else d for d in healthy_documents()]
    documents = [d for d in documents if getattr(d, "name", "") != "pg3"]
    summary = summary_of(*documents)
    assert summary["healthy"] is True
    assert summary["standbys"][1]["removed"] is True and summary["standbys"][1]["alive"] is False
