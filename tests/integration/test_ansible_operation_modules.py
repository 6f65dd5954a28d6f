"""rhizome.pg.switchover, maintenance and keeper run by ansible-playbook against a real etcd.

As in test_ansible_modules.py, each test runs one play of several tasks on
localhost and reads every task's registered result. maintenance and keeper
act on documents the test writes; switchover's checks too, and one test
switches over for real on a LocalCluster (three keepers with PostgreSQL and a
sentinel), which carries the command out.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from rhizome.spec import parse_spec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import (
    ClusterState,
    KeeperAssignment,
    KeeperInfo,
    LeaderInfo,
    ProxyTarget,
)
from tests.harness.cluster import LocalCluster
from tests.integration.test_ansible_modules import run_play, store_of

pytestmark = pytest.mark.integration

SYSTEM_IDENTIFIER = "7301234567890123456"
MEBIBYTE = 1024 * 1024
MASTER_POSITION = 100 * MEBIBYTE


@pytest.fixture
def store(etcd) -> ClusterStore:
    return store_of(etcd.client_url)


def task(module: str, url: str, **keywords: Any) -> dict[str, Any]:
    """A rhizome.pg.<module> task on cluster "main" (keywords: options, or task keywords)."""
    options = {"endpoints": [url], "cluster": "main"}
    task_keywords = {key: keywords.pop(key) for key in ("check_mode", "diff") if key in keywords}
    return {f"rhizome.pg.{module}": options | keywords, **task_keywords}


def keeper(name: str, **fields: Any) -> KeeperInfo:
    base: dict[str, Any] = dict(
        name=name, host="127.0.0.1", port=5432, observed_at=time.time(), running=True,
        healthy=True, timeline=2, system_identifier=SYSTEM_IDENTIFIER,
        acknowledged_state_generation=3,
    )  # fmt: skip
    return KeeperInfo.model_validate(base | fields)


def seed_cluster(store: ClusterStore) -> None:
    """Documents of a running cluster: pg1 master, pg2 close behind, pg3 40 MiB behind."""
    store.write_spec(parse_spec({}), 0)
    lease = store.client.grant_lease(300).id
    store.publish_keeper(
        keeper("pg1", role="primary", flush_lsn=MASTER_POSITION, streaming_standbys=("pg2", "pg3")),
        lease,
    )
    behind = MASTER_POSITION - 1024
    store.publish_keeper(
        keeper("pg2", role="standby", receive_lsn=behind, replay_lsn=behind), lease
    )
    lagging = MASTER_POSITION - 40 * MEBIBYTE
    store.publish_keeper(
        keeper("pg3", role="standby", receive_lsn=lagging, replay_lsn=lagging), lease
    )
    store.campaign(LeaderInfo(sentinel_id="sentinel-a", elected_at=time.time()), lease)
    state = ClusterState(
        generation=3, initialized=True, master="pg1", master_timeline=2,
        system_identifier=SYSTEM_IDENTIFIER,
        assignments={
            "pg1": KeeperAssignment(role="master"),
            "pg2": KeeperAssignment(role="standby", follow="pg1"),
            "pg3": KeeperAssignment(role="standby", follow="pg1"),
        },
        proxy_target=ProxyTarget(proxy_generation=2, master="pg1", host="127.0.0.1", port=5432),
    )  # fmt: skip
    assert store.write_state(state, 0) is not None


def test_maintenance_pauses_and_sets_keeper_maintenance_idempotently(etcd, store, tmp_path):
    seed_cluster(store)
    url = etcd.client_url
    spec_revision = store.read_spec().mod_revision
    before = store.client.revision("/")
    results = run_play(
        tmp_path,
        {
            "pause_preview": task(
                "maintenance", url, cluster_state="paused", check_mode=True, diff=True
            ),
            "pause": task("maintenance", url, cluster_state="paused", diff=True),
            "pause_again": task("maintenance", url, cluster_state="paused", diff=True),
            "on": task("maintenance", url, keeper="pg2", state="on"),
            "on_again": task("maintenance", url, keeper="pg2", state="on"),
            "off_and_resume": task(
                "maintenance", url, keeper="pg2", state="off", cluster_state="running"
            ),
            "never_on": task("maintenance", url, keeper="pg3", state="off"),
            "master_preview": task("maintenance", url, keeper="pg1", state="on", check_mode=True),
            "unknown": task("maintenance", url, keeper="pg7", state="on"),
            "nothing": task("maintenance", url),
        },
    )
    preview = results["pause_preview"]
    assert preview["changed"] and preview["paused"] is True, preview
    assert preview["revision"] == spec_revision
    assert '"paused": false' in preview["diff"]["before"]
    assert '"paused": true' in preview["diff"]["after"]
    assert "check mode" in preview["diff"]["after_header"]
    pause = results["pause"]
    assert pause["changed"] and pause["paused"] is True and pause["spec"]["paused"] is True
    assert pause["diff"]["before_header"] == f"stored spec (revision {spec_revision})"
    assert pause["revision"] > spec_revision
    again = results["pause_again"]
    assert again["changed"] is False and "diff" not in again
    assert again["revision"] == pause["revision"]
    on = results["on"]
    assert on["changed"] and on["maintenance"] is True and on["paused"] is True, on
    assert on["spec"]["keepers"]["pg2"]["maintenance"] is True
    assert results["on_again"]["changed"] is False
    off = results["off_and_resume"]
    assert off["changed"] and off["maintenance"] is False and off["paused"] is False, off
    never = results["never_on"]
    assert never["changed"] is False and never["maintenance"] is False, never
    master = results["master_preview"]
    assert master["changed"] and master["maintenance"] is True, master
    assert any("pg1 is the master" in warning for warning in master["warnings"])
    unknown = results["unknown"]
    assert unknown["failed"] and unknown.get("changed") is not True
    assert unknown["msg"] == (
        "keeper pg7 is unknown in cluster main (known keepers: pg1, pg2, pg3)"
    )
    assert results["nothing"]["failed"]
    assert "one of the following is required: cluster_state, keeper" in results["nothing"]["msg"]
    spec = store.read_spec()
    assert spec is not None and not spec.document.paused
    assert not spec.document.keeper_settings("pg1").maintenance  # check mode wrote nothing
    assert not spec.document.keeper_settings("pg2").maintenance
    assert "pg3" not in spec.document.keepers
    assert store.client.revision("/") == before + 3  # pause, on, off and resume: nothing else


def test_keeper_removal_refuses_the_master_and_undoes(etcd, store, tmp_path):
    seed_cluster(store)
    url = etcd.client_url
    before = store.client.revision("/")
    results = run_play(
        tmp_path,
        {
            "preview": task("keeper", url, name="pg3", state="absent", check_mode=True, diff=True),
            "remove": task("keeper", url, name="pg3", state="absent"),
            "remove_again": task("keeper", url, name="pg3", state="absent"),
            "master": task("keeper", url, name="pg1", state="absent"),
            "unknown": task("keeper", url, name="pg8", state="absent"),
            "undo_preview": task("keeper", url, name="pg3", state="present", check_mode=True),
            "undo": task("keeper", url, name="pg3", state="present", diff=True),
            "undo_again": task("keeper", url, name="pg3", state="present"),
            "never_removed": task("keeper", url, name="pg2", state="present"),
        },
    )
    preview = results["preview"]
    assert preview["changed"] and preview["removed"] is True, preview
    assert '"removed": true' in preview["diff"]["after"]
    assert '"removed": true' not in preview["diff"]["before"]
    remove = results["remove"]
    assert remove["changed"] and remove["removed"] is True, remove
    assert remove["revision"] > preview["revision"]
    assert results["remove_again"]["changed"] is False
    assert results["remove_again"]["revision"] == remove["revision"]
    master = results["master"]
    assert master["failed"] and master.get("changed") is not True
    assert master["msg"].startswith(
        "keeper pg1 is the master of cluster main; move the master first"
    )
    unknown = results["unknown"]
    assert unknown["failed"] and "keeper pg8 is unknown in cluster main" in unknown["msg"]
    undo_preview = results["undo_preview"]
    assert undo_preview["changed"] and undo_preview["removed"] is False
    assert undo_preview["revision"] == remove["revision"]
    undo = results["undo"]
    assert undo["changed"] and undo["removed"] is False, undo
    assert '"removed": true' in undo["diff"]["before"]
    assert '"removed": true' not in undo["diff"]["after"]
    assert results["undo_again"]["changed"] is False
    assert results["never_removed"]["changed"] is False
    spec = store.read_spec()
    assert spec is not None and not spec.document.keeper_settings("pg3").removed
    assert store.client.revision("/") == before + 2  # remove and undo: nothing else


def test_switchover_check_mode_and_refusals_submit_nothing(etcd, store, tmp_path):
    seed_cluster(store)
    url = etcd.client_url
    before = store.client.revision("/")
    results = run_play(
        tmp_path,
        {
            "preview_named": task("switchover", url, target="pg2", check_mode=True),
            "preview_best": task("switchover", url, check_mode=True),
            "already": task("switchover", url, target="pg1"),
            "lagging": task("switchover", url, target="pg3"),
            "unknown": task("switchover", url, target="pg9"),
            "pause": task("maintenance", url, cluster_state="paused"),
            "paused": task("switchover", url, target="pg2"),
            "paused_preview": task("switchover", url, check_mode=True),
        },
    )
    named = results["preview_named"]
    assert named["changed"] and not named.get("failed"), named
    assert (named["old_master"], named["new_master"], named["write_pause"]) == ("pg1", "pg2", None)
    assert named["msg"] == "would switch over from pg1 to pg2"
    best = results["preview_best"]
    assert best["changed"] and best["new_master"] == "pg2", best  # pg3 lags 40 MiB
    already = results["already"]
    assert already["changed"] is False and not already.get("failed"), already
    assert already["old_master"] == already["new_master"] == "pg1"
    lagging = results["lagging"]
    assert lagging["failed"] and lagging.get("changed") is not True
    assert lagging["msg"].startswith("switchover refused: pg3 is 40.0 MiB behind the master")
    unknown = results["unknown"]
    assert unknown["failed"] and unknown.get("changed") is not True
    assert unknown["msg"].startswith("switchover refused: keeper pg9 is unknown")
    assert results["pause"]["changed"]
    for name in ("paused", "paused_preview"):
        paused = results[name]
        assert paused["failed"] and paused.get("changed") is not True, paused
        assert paused["msg"] == (
            "switchover refused: the cluster is paused; resume it first with `rhizomectl resume`"
        )
    assert store.read_view().commands == {}
    assert store.client.revision("/") == before + 1  # the pause; no command was ever created


@pytest.fixture
def local_cluster(tmp_path: Path, etcd):
    cluster = LocalCluster(tmp_path / "cluster", etcd)
    yield cluster
    cluster.stop()


def test_switchover_on_a_real_cluster_reports_the_write_pause(local_cluster, tmp_path):
    try:
        master = local_cluster.start()
    except AssertionError as error:
        raise AssertionError(f"{error}\n{local_cluster.diagnostics()}") from error
    target = sorted(set(local_cluster.keepers) - {master})[0]
    url = local_cluster.etcd.client_url
    results = run_play(
        tmp_path / "play",
        {
            "preview": task("switchover", url, target=target, check_mode=True),
            "switch": task("switchover", url, target=target, timeout=30),
            "again": task("switchover", url, target=target),
        },
    )
    preview = results["preview"]
    assert preview["changed"] and preview["new_master"] == target, preview
    switch = results["switch"]
    assert not switch.get("failed"), f"{switch}\n{local_cluster.diagnostics()}"
    assert switch["changed"] and switch["outcome"] == "done"
    assert (switch["old_master"], switch["new_master"]) == (master, target)
    assert isinstance(switch["write_pause"], float) and 0 < switch["write_pause"] < 30
    assert switch["command"].startswith("switchover-")
    assert switch["stdout_lines"][0] == (
        f"submitted switchover command {switch['command']} (to {target})"
    )
    assert switch["msg"].startswith(f"switchover {switch['command']} done {master} -> {target}")
    again = results["again"]
    assert again["changed"] is False and again["old_master"] == again["new_master"] == target
    state = local_cluster.state()
    assert state is not None and state.master == target
    (result,) = [r for r in state.command_results if r.command == switch["command"]]
    assert result.write_pause == switch["write_pause"]
