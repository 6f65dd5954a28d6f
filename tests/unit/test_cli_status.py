"""rhizomectl status and history rendered from ClusterViews built from documents (pure)."""

from __future__ import annotations

import json

from rhizome.cli.history import history_events, history_report, render_history
from rhizome.cli.keeper_status import keeper_statuses
from rhizome.cli.status import render_status, status_report
from rhizome.etcd import KeyValue
from rhizome.spec import ClusterSpec, parse_spec
from rhizome.store.codec import StoreDocument, encode_document
from rhizome.store.documents import (
    ClusterState,
    Command,
    CommandResult,
    KeeperAssignment,
    KeeperInfo,
    LeaderInfo,
    Operation,
    ProxyInfo,
    ProxyTarget,
    RoleChange,
    SynchronousStandbys,
)
from rhizome.store.keys import ClusterKeys, KeyKind
from rhizome.store.view import ClusterView, build_view

KEYS = ClusterKeys("main")
NOW = 1_700_000_000.0


def view_of(*documents: StoreDocument, raw: dict[str, bytes] | None = None) -> ClusterView:
    """A view of the documents as if read from the store at revision 42."""
    items = [
        KeyValue(key_of(document), encode_document(document), 1, 5, 1, 0) for document in documents
    ]
    items += [KeyValue(key, value, 1, 5, 1, 0) for key, value in (raw or {}).items()]
    return build_view(KEYS, 42, items)


def key_of(document: StoreDocument) -> str:
    if isinstance(document, ClusterSpec):
        return KEYS.single(KeyKind.SPEC)
    if isinstance(document, ClusterState):
        return KEYS.single(KeyKind.STATE)
    if isinstance(document, LeaderInfo):
        return KEYS.single(KeyKind.LEADER)
    if isinstance(document, KeeperInfo):
        return KEYS.member(KeyKind.KEEPER, document.name)
    if isinstance(document, ProxyInfo):
        return KEYS.member(KeyKind.PROXY, document.id)
    assert isinstance(document, Command)
    return KEYS.member(KeyKind.COMMAND, document.name)


def keeper(name: str, **fields: object) -> KeeperInfo:
    base: dict[str, object] = dict(
        name=name, host="10.0.0.1", port=5432, observed_at=NOW, running=True, healthy=True,
        timeline=3, acknowledged_state_generation=7,
    )  # fmt: skip
    return KeeperInfo.model_validate(base | fields)


def running_state(**fields: object) -> ClusterState:
    base: dict[str, object] = dict(
        generation=7,
        initialized=True,
        master="pg1",
        master_timeline=3,
        assignments={
            "pg1": KeeperAssignment(role="master"),
            "pg2": KeeperAssignment(role="standby", follow="pg1"),
            "pg3": KeeperAssignment(role="standby", follow="pg1"),
        },
        synchronous_standbys=SynchronousStandbys(requested=("pg2", "pg3"), confirmed=("pg2",)),
        proxy_target=ProxyTarget(proxy_generation=4, master="pg1", host="10.0.0.1", port=5432),
    )
    return ClusterState.model_validate(base | fields)


def seeded_view(**state_fields: object) -> ClusterView:
    spec = {"synchronous_replication": {"enabled": True}, "keepers": {"pg3": {"maintenance": True}}}
    return view_of(
        parse_spec(spec),
        running_state(**state_fields),
        keeper("pg1", role="primary", flush_lsn=1000),
        keeper(
            "pg2", role="standby", lag_bytes=0,
            pending_restart=("shared_buffers", "max_connections"),
        ),
        keeper(
            "pg3", role="standby", healthy=False, lag_bytes=3 * 1024 * 1024,
            last_error="upstream gone", acknowledged_state_generation=6,
        ),
        proxy("proxy-a", acknowledged_generation=4),
        proxy("proxy-b", acknowledged_generation=3),
        LeaderInfo(sentinel_id="s1", elected_at=NOW),
    )  # fmt: skip


def proxy(name: str, acknowledged_generation: int) -> ProxyInfo:
    return ProxyInfo(
        id=name,
        listen_addresses=("0.0.0.0:5432",),
        acknowledged_proxy_generation=acknowledged_generation,
        observed_at=NOW,
    )


def table_row(text: str, name: str) -> list[str]:
    """The cells of one keeper's row (cells are separated by two or more spaces)."""
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return [cell.strip() for cell in line.split("  ") if cell.strip()]


def test_status_table_shows_roles_lag_sync_and_pending_restart():
    text = render_status(seeded_view(), "main", NOW)
    assert text.splitlines()[8].split() == [
        "KEEPER", "ROLE", "STATE", "TIMELINE", "LAG", "SYNC", "PENDING", "RESTART",
    ]  # fmt: skip
    assert table_row(text, "pg1") == ["pg1", "master", "primary, healthy", "3", "-", "-", "-"]
    assert table_row(text, "pg2") == [
        "pg2", "standby of pg1", "standby, healthy", "3", "0 B", "sync",
        "shared_buffers, max_connections",
    ]  # fmt: skip
    assert table_row(text, "pg3") == [
        "pg3", "standby of pg1", "standby, unhealthy, converging, error, maintenance", "3",
        "3.0 MiB", "joining", "-",
    ]  # fmt: skip
    assert "pg3: last error: upstream gone" in text


def test_status_header_names_master_proxies_sync_and_leader():
    header = dict(
        line.split(":", 1) for line in render_status(seeded_view(), "main", NOW).splitlines()[:7]
    )
    assert header["cluster"].strip() == "main (store revision 42)"
    assert header["master"].strip() == "pg1 (timeline 3, state generation 7)"
    assert header["proxies"].strip() == (
        "route to pg1, proxy generation 4; 1 of 2 running proxies acknowledged"
    )
    assert header["synchronous"].strip() == "on, requested pg2, pg3; confirmed pg2"
    assert header["paused"].strip() == "no"
    assert header["operation"].strip() == "-"
    assert header["sentinels"].strip() == "0 running, leader s1"


def test_status_header_shows_the_operation_no_promotion_reason_and_problems():
    operation = Operation(
        kind="failover", phase="fencing", target="pg2", previous_master="pg1",
        started_at=NOW - 5, phase_started_at=NOW - 2, command="failover-x",
    )  # fmt: skip
    state = running_state(
        master=None,
        assignments={
            "pg1": KeeperAssignment(role="fenced"),
            "pg2": KeeperAssignment(role="standby", follow="pg1"),
        },
        synchronous_standbys=SynchronousStandbys(),
        proxy_target=ProxyTarget(proxy_generation=5),
        operation=operation,
        no_promotion_reason="pg2 is 40 MiB behind",
    )
    pending = Command(
        name="failover-x", kind="failover", target="pg2", requested_at=NOW, requested_by="me"
    )
    view = view_of(ClusterSpec(), state, pending, raw={"/rhizome/main/keepers/pg9": b"garbage"})
    text = render_status(view, "main", NOW)
    assert (
        "operation:       failover pg1 -> pg2, phase fencing for 2.0 s, command failover-x" in text
    )
    assert "no promotion:    pg2 is 40 MiB behind" in text
    assert "proxies:         route nowhere (holding clients)" in text
    assert "pending command: failover-x (failover to pg2)" in text
    assert "store problem:   store document '/rhizome/main/keepers/pg9' is unusable" in text
    assert table_row(text, "pg1")[:3] == ["pg1", "fenced", "down"]


def test_status_of_an_empty_cluster_says_what_to_do():
    text = render_status(view_of(), "main", NOW)
    assert "spec:        none: run `rhizomectl init` to create it" in text
    assert "master:      none (no sentinel has published a state yet)" in text
    assert text.endswith("no keeper has reported yet")
    after_init = render_status(view_of(ClusterSpec()), "main", NOW)
    assert "spec:" not in after_init and "paused:      no" in after_init


def test_status_json_is_complete_and_serialisable():
    report = json.loads(json.dumps(status_report(seeded_view(), "main")))
    assert report["cluster"] == "main" and report["store_revision"] == 42
    assert report["state"]["master"] == "pg1" and "history" not in report["state"]
    assert report["sentinel_leader"] == "s1"
    assert sorted(report["proxies"]) == ["proxy-a", "proxy-b"]
    keepers = {entry["name"]: entry for entry in report["keepers"]}
    assert keepers["pg2"]["synchronous"] == "sync"
    assert keepers["pg2"]["observation"]["pending_restart"] == ["shared_buffers", "max_connections"]
    assert keepers["pg3"]["settings"]["maintenance"] is True
    assert keepers["pg3"]["state"] == ["standby", "unhealthy", "converging", "error", "maintenance"]
    assert report["problems"] == []


def test_keepers_known_only_from_the_spec_or_their_document_are_listed():
    view = view_of(parse_spec({"keepers": {"pg5": {"priority": 1}}}), keeper("pg4", role="standby"))
    statuses = {status.name: status for status in keeper_statuses(view)}
    assert statuses["pg4"].assigned_role is None and statuses["pg4"].alive
    assert statuses["pg5"].state_words() == ["down"]


def test_history_merges_role_changes_and_command_results_oldest_first():
    state = running_state(
        history=(
            RoleChange(at=NOW - 100, generation=2, kind="initialisation", old_master=None,
                       new_master="pg1", reason="first keeper to report"),
            RoleChange(at=NOW - 10, generation=9, kind="switchover", old_master="pg1",
                       new_master="pg2", reason="operator switchover"),
        ),
        command_results=(
            CommandResult(command="switchover-a", kind="switchover", outcome="done",
                          reason="pg2 promoted", finished_at=NOW - 9, old_master="pg1",
                          new_master="pg2", write_pause=0.8),
            CommandResult(command="switchover-b", kind="switchover", outcome="refused",
                          reason="cluster paused", finished_at=NOW - 50),
        ),
    )  # fmt: skip
    events = history_events(state)
    assert [type(event).__name__ for event in events] == [
        "RoleChange", "CommandResult", "RoleChange", "CommandResult",
    ]  # fmt: skip
    lines = render_history(events).splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "EVENT", "MASTER", "DETAILS"]
    assert lines[1].startswith("2023-11-14 22:11:40  initialisation")
    assert "switchover refused" in lines[2] and "switchover-b: cluster paused" in lines[2]
    assert "pg1 -> pg2" in lines[4] and "(writes paused 0.8 s)" in lines[4]
    report = history_report(events)
    assert [entry["type"] for entry in report][:2] == ["role_change", "command_result"]
    assert render_history([]) == "no role change and no finished command yet"


def test_lag_is_computed_from_positions_when_keepers_do_not_report_it():
    view = view_of(
        ClusterSpec(),
        running_state(),
        keeper("pg1", role="primary", write_lsn=5 * 1024 * 1024, flush_lsn=5 * 1024 * 1024),
        keeper("pg2", role="standby", replay_lsn=5 * 1024 * 1024),
        keeper("pg3", role="standby", receive_lsn=3 * 1024 * 1024),
    )
    lags = {status.name: status.lag_bytes for status in keeper_statuses(view)}
    assert lags == {"pg1": None, "pg2": 0, "pg3": 2 * 1024 * 1024}
    table = render_status(view, "main", now=NOW)
    assert "2.0 MiB" in table


MIB = 1024 * 1024


def master_down_view(master: KeeperInfo | None, **state_fields: object) -> ClusterView:
    """The master's PostgreSQL down; the standbys stopped receiving at 3 MiB and 1 MiB."""
    documents: list[StoreDocument] = [
        ClusterSpec(),
        running_state(master_flush_lsn=12 * MIB, **state_fields),
        keeper("pg2", role="standby", replay_lsn=3 * MIB, receive_lsn=3 * MIB, lag_bytes=0),
        keeper("pg3", role="standby", replay_lsn=1 * MIB),
        proxy("proxy-a", acknowledged_generation=4),
    ]
    if master is not None:
        documents.append(master)
    return view_of(*documents)


def test_with_the_master_down_lag_is_measured_from_its_last_known_position():
    stopped = keeper("pg1", running=False, role="unknown", flush_lsn=10 * MIB,
                     last_error="Start: PostgreSQL exited while starting")  # fmt: skip
    for master in (stopped, None):
        view = master_down_view(master)
        lags = {status.name: status.lag_bytes for status in keeper_statuses(view)}
        assert lags == {"pg1": None, "pg2": 9 * MIB, "pg3": 11 * MIB}
        text = render_status(view, "main", NOW)
        assert table_row(text, "pg2")[4] == "9.0 MiB"
        assert table_row(text, "pg3")[4] == "11.0 MiB"
        header = dict(line.split(": ", 1) for line in text.splitlines()[:10] if ": " in line)
        assert header["lag against"].strip() == "0/C00000, the last position known of master pg1"


def test_a_stopped_master_reports_its_final_position_when_it_is_newer():
    stopped = keeper("pg1", running=False, role="unknown", flush_lsn=14 * MIB)
    lags = {status.name: status.lag_bytes for status in keeper_statuses(master_down_view(stopped))}
    assert lags["pg2"] == 11 * MIB


def test_with_the_master_down_the_route_is_shown_held_with_the_reason():
    stopped = keeper("pg1", running=False, role="unknown", last_error="Start: no space left")
    text = render_status(master_down_view(stopped), "main", NOW)
    header = dict(line.split(": ", 1) for line in text.splitlines()[:10] if ": " in line)
    assert header["master down"].strip() == (
        "PostgreSQL of pg1 is not running: Start: no space left"
    )
    assert (
        header["proxies"]
        .strip()
        .startswith(
            "route held: its target pg1 is not running (PostgreSQL of pg1 is not running: "
            "Start: no space left); clients wait or time out, proxy generation 4"
        )
    )
    gone = render_status(master_down_view(None), "main", NOW)
    assert "route held: its target pg1 is not running (pg1's keeper does not report)" in gone
    assert status_report(master_down_view(None), "main")["master_down"] == (
        "pg1's keeper does not report"
    )


def test_with_the_master_running_nothing_is_said_about_it_being_down():
    text = render_status(seeded_view(), "main", NOW)
    assert "master down" not in text
    assert "lag against" not in text
    assert "route to pg1, proxy generation 4" in text
    assert status_report(seeded_view(), "main")["master_down"] is None


def test_a_handed_over_cluster_names_its_successor_and_its_sealed_master():
    sealed_master = KeeperAssignment(role="master", sealed=True)
    assignments = {"pg1": sealed_master, "pg2": KeeperAssignment(role="standby", follow="pg1")}
    view = view_of(
        parse_spec({}),
        running_state(successor="main-17", assignments=assignments),
        keeper("pg1", role="primary", flush_lsn=1000, sealed_lsn=1000),
    )
    text = render_status(view, "main", NOW)
    assert "handed over to cluster main-17: its proxies follow it" in text
    assert table_row(text, "pg1")[2] == "primary, healthy, sealed"
    assert status_report(view, "main")["state"]["successor"] == "main-17"
