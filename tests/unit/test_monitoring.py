"""monitoring/ against the agents' metrics: promtool accepts the rules, the scrape
configuration and every agent's /metrics page, and the rules and the dashboard use
only metrics (and labels) that the agents serve, so that they cannot drift apart.

promtool comes from scripts/install-promtool.sh (`make deps`); without it these tests
skip, and fail in CI (CI=true), like the tests that need etcd 3.5.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rhizome import clock
from rhizome.api.agent_metrics import etcd_samples, uptime_sample
from rhizome.api.exposition import render
from rhizome.api.keeper_checks import KeeperSnapshot
from rhizome.api.keeper_metrics import keeper_samples
from rhizome.api.sentinel_pages import SentinelSnapshot, sentinel_samples
from rhizome.etcd import KeyValue
from rhizome.etcd.stats import RequestStats
from rhizome.proxy.config import ListenAddress, ProxyConfig
from rhizome.proxy.dispatcher import Dispatcher
from rhizome.proxy.fencing import StoreFence
from rhizome.proxy.metrics import StoreCounters
from rhizome.proxy.status import ProxyStatus
from rhizome.spec import parse_spec
from rhizome.store.backups import LAST_BACKUP, BackupRecord
from rhizome.store.codec import encode_document
from rhizome.store.documents import KeeperInfo, StoreDocument
from rhizome.store.keys import ClusterKeys, KeyKind
from rhizome.store.state import (
    ClusterState,
    KeeperAssignment,
    ProxyTarget,
    RoleChange,
    SynchronousStandbys,
)
from rhizome.store.view import ClusterView, build_view

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
PROMTOOL_VARIABLE = "RHIZOME_PROMTOOL"
PROMTOOL_INSTALLED = Path(
    os.environ.get("RHIZOME_PROMETHEUS_DIR", "/opt/rhizome/prometheus"), "usr", "bin", "promtool"
)
KEYS = ClusterKeys("main")
NOW = 1_700_000_000.0
MIB = 1024 * 1024
PROMETHEUS_LABELS = {"cluster", "instance", "job"}
"""Labels the scrape configuration adds to every series (monitoring/prometheus.yml)."""
PROMETHEUS_METRICS = {"up"}
"""Series Prometheus makes itself."""


@pytest.fixture(scope="module")
def promtool() -> str:
    """RHIZOME_PROMTOOL, else the one scripts/install-promtool.sh unpacked, else PATH's."""
    found = os.environ.get(PROMTOOL_VARIABLE)
    if not found and PROMTOOL_INSTALLED.exists():
        found = str(PROMTOOL_INSTALLED)
    found = shutil.which(found or "promtool")
    if not found:
        message = (
            f"promtool is missing ({PROMTOOL_INSTALLED}, PATH, {PROMTOOL_VARIABLE}):"
            " run scripts/install-promtool.sh as root (make deps)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_promtool(promtool: str, *arguments: str, stdin: str | None = None) -> str:
    """promtool's whole output; fails the test on a non-zero exit."""
    done = subprocess.run(
        [promtool, *arguments], input=stdin, capture_output=True, text=True, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(arguments)}:\n{output}"
    return output


# -- the agents' pages, from realistic snapshots ---------------------------------------


def keeper_info(name: str, role: str, **fields: object) -> KeeperInfo:
    """What a keeper publishes: a primary is unfenced, a standby reports fenced."""
    base: dict[str, object] = dict(
        name=name, host=f"10.0.0.{name[-1]}", port=5432, observed_at=NOW, running=True,
        healthy=True, role=role, timeline=3, system_identifier="7300000000000000001",
        acknowledged_state_generation=7, fenced=role != "primary",
    )  # fmt: skip
    if role == "primary":
        base |= dict(write_lsn=200 * MIB, flush_lsn=200 * MIB)
    else:
        base |= dict(receive_lsn=200 * MIB, replay_lsn=199 * MIB, lag_bytes=MIB)
    return KeeperInfo.model_validate(base | fields)


def keeper_page(info: KeeperInfo | None, master: bool, **fields: object) -> str:
    values: dict[str, object] = dict(
        name=info.name if info else "pg3", info=info, assigned_master=master, synchronous=False,
        may_accept_writes=master, lag_bytes=None if master else MIB, lease_age=0.4,
        lease_fresh=True, loop_age=0.2, watchdog_age=0.02, watchdog_interval=1.25,
    )  # fmt: skip
    snapshot = KeeperSnapshot(**(values | fields))  # type: ignore[arg-type]
    stats = RequestStats(succeeded=5120, failed=3, seconds=12.5)
    return render([*keeper_samples(snapshot), *etcd_samples("keeper", stats),
                   uptime_sample("keeper", 3600.5)])  # fmt: skip


def view_of(*documents: StoreDocument) -> ClusterView:
    """The documents as the sentinel's follower reads them from the store."""
    items = []
    for document in documents:
        if isinstance(document, KeeperInfo):
            key = KEYS.member(KeyKind.KEEPER, document.name)
        elif isinstance(document, BackupRecord):
            key = KEYS.member(KeyKind.BACKUPS, LAST_BACKUP)
        else:
            key = KEYS.single(KeyKind.STATE if isinstance(document, ClusterState) else KeyKind.SPEC)
        items.append(KeyValue(key, encode_document(document), 1, 5, 1, 0))
    return build_view(KEYS, 42, items)


def cluster_view() -> ClusterView:
    history = (
        RoleChange(at=NOW - 900, generation=2, kind="initialisation", old_master=None,
                   new_master="pg2", reason="first master"),
        RoleChange(at=NOW - 600, generation=4, kind="failover", old_master="pg2",
                   new_master="pg1", reason="pg2 lost its lease"),
        RoleChange(at=NOW - 60, generation=7, kind="switchover", old_master="pg2",
                   new_master="pg1", reason="requested by alice"),
    )  # fmt: skip
    state = ClusterState.model_validate(
        dict(
            generation=7, initialized=True, master="pg1", master_timeline=3,
            assignments={"pg1": KeeperAssignment(role="master"),
                         "pg2": KeeperAssignment(role="standby", follow="pg1"),
                         "pg3": KeeperAssignment(role="standby", follow="pg1")},
            synchronous_standbys=SynchronousStandbys(requested=("pg2",), confirmed=("pg2",)),
            proxy_target=ProxyTarget(proxy_generation=4, master="pg1", host="10.0.0.1",
                                     port=5432),
            history=history,
        )
    )  # fmt: skip
    spec = parse_spec({"synchronous_replication": {"enabled": True}})
    backup = BackupRecord(type="full", ok=True, started_at=NOW - 3600, finished_at=NOW - 3500,
                          node="db2", stanza="main", label="20261204-100000F",
                          size_bytes=120 * MIB)  # fmt: skip
    return view_of(
        spec, state, keeper_info("pg1", "primary"), keeper_info("pg2", "standby"),
        keeper_info("pg3", "standby", lag_bytes=64 * MIB, last_error="upstream gone"), backup,
    )  # fmt: skip


def sentinel_page(view: ClusterView | None, leader: bool) -> str:
    snapshot = SentinelSnapshot("db1", view, leader, lease_age=0.8, lease_ttl=5.0, loop_age=0.5)
    stats = RequestStats(succeeded=800, failed=0, seconds=1.25)
    return render([*sentinel_samples(snapshot), *etcd_samples("sentinel", stats),
                   uptime_sample("sentinel", 7200.0)])  # fmt: skip


def proxy_page() -> str:
    config = ProxyConfig(id="app1", read_write_listen=ListenAddress("0.0.0.0", 6432),
                         read_only_listen=ListenAddress("0.0.0.0", 6433))  # fmt: skip
    dispatcher = Dispatcher(config)
    dispatcher.applied_generation = 4
    fence = StoreFence(dispatcher, wake_publisher=lambda: None)
    fence.fenced = False
    for read_only, port in dispatcher.ports.items():
        counters = port.counters
        counters.accepted, counters.forwarded = 1200, 1190
        counters.refused.update({"hold_timeout": 2, "connect_failed": 1})
        counters.closed_by_retarget, counters.invalid_clients, counters.connect_errors = 7, 1, 3
        counters.bytes_from_clients, counters.bytes_from_servers = 52 * MIB, 900 * MIB
        if read_only:
            counters.refused.update({"limit": 4})
    store = StoreCounters(watch_errors=1, lease_errors=2, publish_errors=0, renewals=3600)
    stats = (RequestStats(succeeded=900, failed=2, seconds=1.5),)
    status = ProxyStatus(dispatcher, fence, store, clock.monotonic() - 3600, stats)
    return render(status.samples())


PAGES = {
    "keeper-primary": lambda: keeper_page(keeper_info("pg1", "primary"), master=True),
    "keeper-standby": lambda: keeper_page(
        keeper_info("pg2", "standby", pending_restart=("shared_buffers",)), master=False
    ),
    "keeper-starting": lambda: keeper_page(
        None, master=False, lease_age=float("inf"), lease_fresh=False
    ),
    "sentinel-leader": lambda: sentinel_page(cluster_view(), leader=True),
    "sentinel-unsynchronized": lambda: sentinel_page(None, leader=False),
    "proxy": proxy_page,
}


@pytest.mark.parametrize("page", PAGES)
def test_promtool_accepts_every_agents_metrics(promtool: str, page: str) -> None:
    output = run_promtool(promtool, "check", "metrics", stdin=PAGES[page]())
    assert output.strip() == "", f"promtool check metrics on the {page} page:\n{output}"


# -- the monitoring files ---------------------------------------------------------------


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    output = run_promtool(promtool, "check", "rules", str(MONITORING / "alerts.yml"))
    assert "SUCCESS" in output


def test_alerts_fire_when_they_should_and_only_then(promtool: str, tmp_path: Path) -> None:
    """tests/unit/alerts_test.yml, against the rules without their annotations."""
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    shutil.copy(Path(__file__).with_name("alerts_test.yml"), tmp_path / "alerts_test.yml")
    output = run_promtool(promtool, "test", "rules", str(tmp_path / "alerts_test.yml"))
    assert "SUCCESS" in output
    tested = {
        case["alertname"]
        for test in yaml.safe_load((tmp_path / "alerts_test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    assert tested == {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


def test_promtool_accepts_the_scrape_configuration(promtool: str) -> None:
    output = run_promtool(promtool, "check", "config", str(MONITORING / "prometheus.yml"))
    assert "SUCCESS" in output
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    ports = {job["job_name"]: job["static_configs"][0]["targets"][0].rsplit(":")[-1]
             for job in config["scrape_configs"]}  # fmt: skip
    assert ports == {"rhizome-keeper": "9643", "rhizome-sentinel": "9644", "rhizome-proxy": "9642"}


def served_metrics() -> dict[str, set[str]]:
    """Every metric name on the agents' pages, with the label names it carries."""
    served: dict[str, set[str]] = {}
    for render_page in PAGES.values():
        for line in render_page().splitlines():
            found = re.match(r"# TYPE (\w+) |(\w+)(?:\{(.*)\})? ", line)
            if found and (found.group(1) or not line.startswith("#")):
                labels = re.findall(r'(\w+)="', found.group(3) or "")
                served.setdefault(found.group(1) or found.group(2), set()).update(labels)
    return served


def expressions() -> dict[str, str]:
    """The PromQL of every alert rule and dashboard query, by where it is."""
    found: dict[str, str] = {}
    for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            found[f"alerts.yml {rule['alert']}"] = rule["expr"]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            found[f"dashboard {panel['title']!r} {target['refId']}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found[f"dashboard ${variable['name']}"] = (
                query.get("query", "") if isinstance(query, dict) else query
            )
    return found


def test_rules_and_dashboard_use_only_served_metrics_and_labels() -> None:
    served = served_metrics()
    problems = []
    for where, expression in expressions().items():
        for name, matchers in re.findall(r"\b([a-z_][a-z0-9_]*)\s*(\{[^}]*\})?", expression):
            if not (name.startswith("rhizome_") or name in PROMETHEUS_METRICS):
                continue  # a function, keyword, label or aggregation
            if name in PROMETHEUS_METRICS:
                continue
            if name not in served:
                problems.append(f"{where}: {name} is served by no agent")
                continue
            for label in re.findall(r"(\w+)\s*[=!]~?", matchers):
                if label not in served[name] | PROMETHEUS_LABELS:
                    problems.append(f"{where}: {name} has no label {label}")
    assert not problems, "\n".join(problems)


def test_every_rule_and_panel_is_checked() -> None:
    found = expressions()
    assert sum(where.startswith("alerts.yml") for where in found) >= 9
    assert sum(where.startswith("dashboard '") for where in found) >= 15


def test_the_dashboard_imports_with_a_datasource_input() -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    [source] = dashboard["__inputs"]
    assert (source["type"], source["pluginId"]) == ("datasource", "prometheus")
    variable = "${" + source["name"] + "}"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == variable, panel["title"]
        for target in panel.get("targets", ()):
            assert target.get("datasource", panel["datasource"])["uid"] == variable, panel["title"]
    for variable_item in dashboard["templating"]["list"]:
        assert variable_item["datasource"]["uid"] == variable, variable_item["name"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
