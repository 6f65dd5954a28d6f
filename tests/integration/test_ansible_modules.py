"""rhizome.pg.cluster_spec and cluster_info run by ansible-playbook against a real etcd.

Each test writes one playbook of several tasks against localhost (local
connection, this virtualenv's Python as the modules' interpreter), registers
every task's result and copies them all to a JSON file the test reads. The
collection is the repository itself, seen through a link like the one
scripts/link-collection.sh creates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rhizome.etcd import EtcdClient, EtcdSettings
from rhizome.spec import ClusterSpec, parse_spec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import (
    ClusterState,
    KeeperAssignment,
    KeeperInfo,
    LeaderInfo,
    ProxyInfo,
    ProxyTarget,
    SynchronousStandbys,
)
from tests.harness.ports import free_port

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
COLLECTIONS = REPOSITORY / ".ansible" / "collections"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
SYSTEM_PYTHON = "/usr/bin/python3"
HBA_ENTRY = {
    "type": "host", "database": "all", "user": "app", "address": "10.0.1.0/24",
    "method": "scram-sha-256",
}  # fmt: skip
Results = dict[str, dict[str, Any]]


def test_link_collection_script_links_the_repository_idempotently():
    for _ in range(2):
        subprocess.run(["sh", str(REPOSITORY / "scripts" / "link-collection.sh")], check=True)
        link = COLLECTIONS / "ansible_collections" / "rhizome" / "pg"
        assert link.is_symlink() and link.resolve() == REPOSITORY


def collections_path(directory: Path) -> Path:
    """A collections directory of this test alone where the repository is rhizome.pg.

    (The shared .ansible/collections link may be recreated at any moment by ansible-lint.)
    """
    path = directory / "collections"
    (path / "ansible_collections" / "rhizome").mkdir(parents=True)
    (path / "ansible_collections" / "rhizome" / "pg").symlink_to(REPOSITORY)
    return path


def ansible_environment(directory: Path) -> dict[str, str]:
    """The environment for ansible-playbook, its files and the collection under `directory`."""
    environment = {key: value for key, value in os.environ.items() if key != "ANSIBLE_CONFIG"}
    return environment | {
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path(directory)),
        "ANSIBLE_HOME": str(directory / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(directory / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_PIPELINING": "1",
    }


def store_of(url: str, cluster: str = "main") -> ClusterStore:
    return ClusterStore(EtcdClient(EtcdSettings(endpoints=(url,))), cluster)


@pytest.fixture
def store(etcd) -> ClusterStore:
    return store_of(etcd.client_url)


def run_play(directory: Path, tasks: dict[str, dict[str, Any]]) -> Results:
    """Run the tasks (by name, errors ignored) in one play; returns every registered result."""
    directory.mkdir(parents=True, exist_ok=True)
    results_file = directory / "results.json"
    collected = ", ".join(f"'{name}': {name}" for name in tasks)
    play_tasks = [
        {"name": name, **task, "register": name, "ignore_errors": True}
        for name, task in tasks.items()
    ]
    play_tasks.append(
        {
            "name": "collect",
            "ansible.builtin.copy": {
                "content": "{{ {" + collected + "} | to_json }}",
                "dest": str(results_file),
                "mode": "0600",
            },
        }
    )
    playbook = directory / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": play_tasks}]))
    inventory = directory / "inventory.ini"
    inventory.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    completed = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(playbook)],
        cwd=directory, env=ansible_environment(directory), capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results: Results = json.loads(results_file.read_text())
    return results


def cluster_spec(url: str, spec: dict[str, Any], **keywords: Any) -> dict[str, Any]:
    """A cluster_spec task on cluster "main" (keywords: module options, or task keywords)."""
    options = {"endpoints": [url], "cluster": "main", "spec": spec}
    task_keywords = {
        key: keywords.pop(key) for key in ("check_mode", "diff", "vars") if key in keywords
    }
    return {"rhizome.pg.cluster_spec": options | keywords, **task_keywords}


def test_spec_is_created_then_unchanged_and_check_mode_writes_nothing(etcd, store, tmp_path):
    declared = {
        "timing": {"failover_delay": 2},
        "synchronous_replication": {"enabled": True},
        "pg_parameters": {"work_mem": "64MB"},
        "pg_hba": [HBA_ENTRY],
    }
    url = etcd.client_url
    results = run_play(
        tmp_path,
        {
            "preview": cluster_spec(url, declared, check_mode=True, diff=True),
            "create": cluster_spec(url, declared, diff=True),
            "again": cluster_spec(url, declared, diff=True),
            "preview_change": cluster_spec(
                url, {"timing": {"failover_delay": 3}}, check_mode=True, diff=True
            ),
        },
    )
    preview, create, again, change = (results[name] for name in results)
    assert preview["changed"] and preview["created"] and preview["revision"] == 0
    assert preview["spec"] == parse_spec(declared).model_dump(mode="json")
    assert preview["diff"]["before"] == ""
    assert '"failover_delay": 2.0' in preview["diff"]["after"]
    assert create["changed"] and create["created"], create
    assert create["spec"] == preview["spec"]
    assert again["changed"] is False and again["created"] is False and "diff" not in again
    assert again["revision"] == create["revision"]
    assert change["changed"] and not change["created"]
    assert change["spec"]["timing"]["failover_delay"] == 3.0
    assert '"failover_delay": 2.0' in change["diff"]["before"]
    assert '"failover_delay": 3.0' in change["diff"]["after"]
    stored = store.read_spec()
    assert stored is not None and stored.document == parse_spec(declared)
    assert stored.mod_revision == create["revision"] == change["revision"]
    assert store.client.revision("/") == create["revision"]  # check mode wrote nothing at all


def test_merge_keeps_operational_flags_and_replace_resets_them(etcd, store, tmp_path):
    operational = {"paused": True, "keepers": {"pg2": {"maintenance": True}}}
    store.write_spec(parse_spec(operational | {"pg_parameters": {"work_mem": "64MB"}}), 0)
    declared = {"timing": {"failover_delay": 2}, "pg_parameters": {"shared_buffers": "256MB"}}
    url = etcd.client_url
    results = run_play(
        tmp_path,
        {
            "merge": cluster_spec(url, declared),
            "merge_again": cluster_spec(url, declared, mode="merge"),
            "replace": cluster_spec(url, declared, mode="replace", diff=True),
            "replace_again": cluster_spec(url, declared, mode="replace"),
        },
    )
    merged = results["merge"]
    assert merged["changed"] and not merged["created"], merged
    assert merged["spec"]["paused"] is True
    assert merged["spec"]["keepers"]["pg2"]["maintenance"] is True
    assert merged["spec"]["pg_parameters"] == {"work_mem": "64MB", "shared_buffers": "256MB"}
    assert merged["spec"]["timing"]["failover_delay"] == 2.0
    assert results["merge_again"]["changed"] is False
    replaced = results["replace"]
    assert replaced["changed"] and replaced["spec"] == parse_spec(declared).model_dump(mode="json")
    assert '"paused": true' in replaced["diff"]["before"]
    assert '"paused": false' in replaced["diff"]["after"]
    assert results["replace_again"]["changed"] is False
    stored = store.read_spec()
    assert stored is not None and stored.document == parse_spec(declared)
    assert stored.mod_revision == replaced["revision"]


def test_invalid_spec_unreachable_store_and_wrong_python_fail_clearly(etcd, store, tmp_path):
    store.write_spec(parse_spec({"timing": {"failover_delay": 1}}), 0)
    before = store.client.revision("/")
    url = etcd.client_url
    nowhere = f"http://127.0.0.1:{free_port()}"
    results = run_play(
        tmp_path,
        {
            "unknown_field": cluster_spec(url, {"timing": {"failover_dealy": 2}}),
            "bad_timing": cluster_spec(url, {"timing": {"keeper_publish_interval": 4}}),
            "bad_first_spec": cluster_spec(
                url, {"synchronous_replication": {"min_standbys": 0}}, cluster="empty"
            ),
            "unreachable": cluster_spec(nowhere, {}),
            "unreachable_info": {
                "rhizome.pg.cluster_info": {"endpoints": [nowhere], "cluster": "x"}
            },
            "no_config": {"rhizome.pg.cluster_info": {"config": str(tmp_path / "absent.toml")}},
            "wrong_python": cluster_spec(
                url, {}, vars={"ansible_python_interpreter": SYSTEM_PYTHON}
            ),
        },
    )
    assert all(result["failed"] for result in results.values()), results
    unknown = results["unknown_field"]
    assert "invalid cluster spec (1 problem)" in unknown["msg"]
    assert "timing.failover_dealy: is not a known field" in unknown["msg"]
    assert unknown["problems"][0].startswith("timing.failover_dealy:")
    assert "timing.keeper_publish_interval: 4.0 must be smaller" in results["bad_timing"]["msg"]
    assert "synchronous_replication.min_standbys" in results["bad_first_spec"]["msg"]
    for name in ("unreachable", "unreachable_info"):
        message = results[name]["msg"]
        assert message.startswith("the store is unreachable: no etcd endpoint answered"), message
        assert nowhere in message
    assert results["no_config"]["msg"].startswith(
        f"the configuration file {tmp_path / 'absent.toml'} does not exist"
    )
    wrong_python = results["wrong_python"]["msg"]
    assert "Failed to import the required Python library (rhizome)" in wrong_python
    assert "ansible_python_interpreter: /opt/rhizome/venv/bin/python" in wrong_python
    assert store.client.revision("/") == before  # nothing was written
    assert store_of(url, "empty").read_spec() is None


def keeper(name: str, **fields: Any) -> KeeperInfo:
    base: dict[str, Any] = dict(
        name=name, host="127.0.0.1", port=free_port(), observed_at=time.time(), running=True,
        healthy=True, timeline=2, acknowledged_state_generation=3,
    )  # fmt: skip
    return KeeperInfo.model_validate(base | fields)


def seed_running_cluster(store: ClusterStore) -> KeeperInfo:
    """Documents as three keepers, a leading sentinel and a proxy would publish them."""
    store.write_spec(parse_spec({"synchronous_replication": {"enabled": True}}), 0)
    lease = store.client.grant_lease(60).id
    master = keeper("pg1", role="primary", flush_lsn=90_000, streaming_standbys=("pg2", "pg3"))
    store.publish_keeper(master, lease)
    store.publish_keeper(
        keeper(
            "pg2", role="standby", replay_lsn=90_000 - 2048, pending_restart=("shared_buffers",)
        ),
        lease,
    )
    store.publish_keeper(keeper("pg3", role="standby", lag_bytes=0), lease)
    store.campaign(LeaderInfo(sentinel_id="sentinel-a", elected_at=time.time()), lease)
    store.publish_proxy(
        ProxyInfo(id="proxy-a", listen_addresses=("127.0.0.1:6432",),
                  acknowledged_proxy_generation=2, observed_at=time.time()),
        lease,
    )  # fmt: skip
    state = ClusterState(
        generation=3, initialized=True, master="pg1", master_timeline=2,
        assignments={
            "pg1": KeeperAssignment(role="master"),
            "pg2": KeeperAssignment(role="standby", follow="pg1"),
            "pg3": KeeperAssignment(role="standby", follow="pg1"),
        },
        synchronous_standbys=SynchronousStandbys(requested=("pg3",), confirmed=("pg3",)),
        proxy_target=ProxyTarget(
            proxy_generation=2, master="pg1", host=master.host, port=master.port
        ),
    )  # fmt: skip
    assert store.write_state(state, 0) is not None
    return master


def test_cluster_info_of_a_new_and_of_a_running_cluster(etcd, store, tmp_path):
    store_of(etcd.client_url, "fresh").write_spec(ClusterSpec(), 0)
    master = seed_running_cluster(store)
    config = tmp_path / "rhizomectl.toml"
    config.write_text(f'cluster = "main"\n[etcd]\nendpoints = ["{etcd.client_url}"]\n')
    before = store.client.revision("/")
    results = run_play(
        tmp_path / "play",
        {
            "fresh": {
                "rhizome.pg.cluster_info": {"endpoints": [etcd.client_url], "cluster": "fresh"}
            },
            "running": {"rhizome.pg.cluster_info": {"config": str(config)}, "check_mode": True},
        },
    )
    fresh = results["fresh"]
    assert fresh["changed"] is False
    info = fresh["cluster_info"]
    assert info["cluster"] == "fresh" and info["master"] is None and info["standbys"] == []
    assert info["healthy"] is False and info["paused"] is False
    assert info["problems"] == ["no sentinel has published a state yet"]
    running = results["running"]
    assert running["changed"] is False, running
    info = running["cluster_info"]
    assert info["healthy"] is True and info["problems"] == []
    assert (info["master"], info["master_host"], info["master_port"]) == (
        "pg1", master.host, master.port,
    )  # fmt: skip
    standbys = {standby["name"]: standby for standby in info["standbys"]}
    assert sorted(standbys) == ["pg2", "pg3"]
    assert standbys["pg2"]["lag_bytes"] == 2048 and standbys["pg3"]["lag_bytes"] == 0
    assert all(standby["streaming"] and standby["alive"] for standby in standbys.values())
    assert standbys["pg3"]["synchronous"] and not standbys["pg2"]["synchronous"]
    assert standbys["pg2"]["state"] == ["standby", "healthy"]
    assert standbys["pg2"]["pending_restart"] == ["shared_buffers"]
    assert info["synchronous"] == {"enabled": True, "requested": ["pg3"], "confirmed": ["pg3"]}
    assert info["pending_restart"] == ["pg2"]
    assert info["sentinel_leader"] == "sentinel-a"
    assert info["proxies"] == {"proxy-a": 2} and info["proxy_generation"] == 2
    assert info["paused"] is False and info["state_generation"] == 3
    assert store.client.revision("/") == before


def test_cluster_spec_refuses_a_value_postgresql_refuses_in_check_and_normal_mode(
    etcd, store, tmp_path
):
    store.write_spec(parse_spec({}), 0)
    store.publish_keeper(
        keeper("pg1", role="primary", postgres_version=150018), store.client.grant_lease(60).id
    )
    before = store.client.revision("/")
    url = etcd.client_url
    banana = {"pg_parameters": {"shared_buffers": "banana"}}
    bogus = {"pg_parameters": {"log_statement": "bogus"}}
    results = run_play(
        tmp_path,
        {
            "checked": cluster_spec(url, banana, check_mode=True),
            "written": cluster_spec(url, banana),
            "enum": cluster_spec(url, bogus),
            "good": cluster_spec(url, {"pg_parameters": {"work_mem": "8MB"}}, check_mode=True),
        },
    )
    for name in ("checked", "written"):
        assert results[name]["failed"], results[name]
        assert results[name]["problems"] == [
            "pg_parameters.shared_buffers: 'banana' is not an integer; give an integer from 16 "
            "to 1073741823 in its base unit (a memory or time parameter also takes a unit, such "
            "as 64MB or 5s)"
        ]
    assert "Available values: none, ddl, mod, all" in results["enum"]["msg"]
    assert results["good"]["changed"] and not results["good"].get("failed")
    assert store.client.revision("/") == before  # nothing was written
