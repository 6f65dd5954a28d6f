"""rhizomectl against a real etcd: status, init, spec show/apply/patch, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from rhizome.cli.main import main
from rhizome.etcd import EtcdClient, EtcdSettings
from rhizome.spec import ClusterSpec, parse_spec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import (
    ClusterState,
    KeeperAssignment,
    KeeperInfo,
    ProxyTarget,
    RoleChange,
    SynchronousStandbys,
)
from tests.harness.ports import free_ports

pytestmark = pytest.mark.integration

RHIZOMECTL = Path(sys.executable).parent / "rhizomectl"
SPEC_KEY = "/rhizome/main/spec"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def store(etcd) -> ClusterStore:
    return ClusterStore(EtcdClient(EtcdSettings(endpoints=(etcd.client_url,))), "main")


def rhizomectl_in_process(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Outcome]:
    """A function running rhizomectl's main() against cluster "main" at `endpoint`."""

    def run(*argv: str) -> Outcome:
        code = main(["--endpoints", endpoint, "--cluster", "main", *argv])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run


@pytest.fixture
def ctl(etcd, capsys) -> Callable[..., Outcome]:
    return rhizomectl_in_process(etcd.client_url, capsys)


def observation(name: str, **fields: object) -> KeeperInfo:
    base: dict[str, object] = dict(
        name=name, host="127.0.0.1", port=5432, observed_at=time.time(), running=True,
        healthy=True, timeline=2, acknowledged_state_generation=3,
    )  # fmt: skip
    return KeeperInfo.model_validate(base | fields)


def seed_running_cluster(store: ClusterStore, spec: ClusterSpec | None = None) -> None:
    """A spec, three keepers' observations and a state, as keepers and a sentinel would write."""
    store.write_spec(spec or ClusterSpec(), 0)
    lease = store.client.grant_lease(30)
    store.publish_keeper(observation("pg1", role="primary", flush_lsn=5000), lease.id)
    store.publish_keeper(
        observation("pg2", role="standby", lag_bytes=2048, pending_restart=("shared_buffers",)),
        lease.id,
    )
    store.publish_keeper(observation("pg3", role="standby", lag_bytes=0), lease.id)
    state = ClusterState(
        generation=3,
        initialized=True,
        master="pg1",
        master_timeline=2,
        assignments={
            "pg1": KeeperAssignment(role="master"),
            "pg2": KeeperAssignment(role="standby", follow="pg1"),
            "pg3": KeeperAssignment(role="standby", follow="pg1"),
        },
        synchronous_standbys=SynchronousStandbys(requested=("pg3",), confirmed=("pg3",)),
        proxy_target=ProxyTarget(proxy_generation=2, master="pg1", host="127.0.0.1", port=5432),
        history=(
            RoleChange(at=time.time() - 60, generation=1, kind="initialisation",
                       old_master=None, new_master="pg1", reason="first keeper to report"),
        ),
    )  # fmt: skip
    assert store.write_state(state, 0) is not None


def row_of(text: str, name: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return [cell.strip() for cell in line.split("  ") if cell.strip()]


def test_init_then_status_of_an_empty_cluster(ctl, store):
    before = ctl("status")
    assert before.code == 0 and "run `rhizomectl init`" in before.out
    created = ctl("init")
    assert created.code == 0, created.err
    assert "created the spec of cluster main from the defaults" in created.out
    stored = store.read_spec()
    assert stored is not None and stored.document == ClusterSpec()
    after = ctl("status")
    assert after.code == 0 and after.err == ""
    assert "master:      none (no sentinel has published a state yet)" in after.out
    assert "paused:      no" in after.out and "no keeper has reported yet" in after.out
    again = ctl("init")
    assert again.code == 1
    assert again.err.strip() == (
        "rhizomectl: error: cluster main already has a spec; change it with "
        "`rhizomectl spec apply FILE` or `rhizomectl spec patch`"
    )


def test_init_from_a_toml_file(ctl, store, tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text("[timing]\nfailover_delay = 1.5\n[keepers.pg1]\npriority = 3\n")
    assert ctl("init", str(spec_file)).code == 0
    stored = store.read_spec()
    assert stored is not None
    assert stored.document.timing.failover_delay == 1.5
    assert stored.document.keeper_settings("pg1").priority == 3


def test_status_shows_seeded_keepers_and_json_parses(ctl, store):
    seed_running_cluster(store)
    table = ctl("status")
    assert table.code == 0, table.err
    assert "master:      pg1 (timeline 2, state generation 3)" in table.out
    assert row_of(table.out, "pg1") == ["pg1", "master", "primary, healthy", "2", "-", "-", "-"]
    assert row_of(table.out, "pg2") == [
        "pg2", "standby of pg1", "standby, healthy", "2", "2.0 KiB", "async", "shared_buffers",
    ]  # fmt: skip
    assert row_of(table.out, "pg3")[5] == "sync"
    report = json.loads(ctl("status", "--json").out)
    assert report["state"]["master"] == "pg1"
    assert [keeper["name"] for keeper in report["keepers"]] == ["pg1", "pg2", "pg3"]
    assert report["keepers"][1]["observation"]["lag_bytes"] == 2048
    history = ctl("history")
    assert "initialisation" in history.out and "- -> pg1" in history.out
    assert json.loads(ctl("history", "--json").out)[0]["type"] == "role_change"


def test_spec_show_prints_the_spec_with_defaults(ctl, store):
    store.write_spec(parse_spec({"paused": True}), 0)
    shown = ctl("spec", "show")
    assert shown.code == 0
    assert parse_spec(json.loads(shown.out)) == parse_spec({"paused": True})
    assert "keeper_lease_ttl" in shown.out
    assert json.loads(ctl("spec", "show", "--non-defaults").out) == {"paused": True}


def test_invalid_spec_apply_exits_2_and_changes_nothing(ctl, store, tmp_path):
    store.write_spec(ClusterSpec(), 0)
    before = store.read_spec()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"timing": {"fence_deadline": 9.0}, "keepers": {"PG1": {}}}))
    outcome = ctl("spec", "apply", str(bad))
    assert outcome.code == 2
    lines = outcome.err.splitlines()
    assert lines[0] == "rhizomectl: error: invalid cluster spec (2 problems):"
    assert any("timing.fence_deadline" in line for line in lines[1:])
    assert any("PG1" in line for line in lines[1:])
    assert outcome.out == ""
    assert store.read_spec() == before


def test_valid_spec_apply_shows_the_diff_and_writes(ctl, store, tmp_path):
    store.write_spec(ClusterSpec(), 0)
    wanted = {"timing": {"failover_delay": 2.0}, "pg_parameters": {"work_mem": "64MB"}}
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(wanted))
    dry = ctl("spec", "apply", str(spec_file), "--dry-run")
    assert dry.code == 0 and "dry run: nothing written" in dry.out
    assert '+    "work_mem": "64MB"' in dry.out
    assert store.read_spec().document == ClusterSpec()
    applied = ctl("spec", "apply", str(spec_file))
    assert applied.code == 0, applied.err
    assert applied.out.startswith("--- stored spec (revision ")
    assert f"+++ {spec_file}" in applied.out
    assert '-    "failover_delay": 0.0,' in applied.out
    assert "wrote the spec of cluster main" in applied.out
    assert store.read_spec().document == parse_spec(wanted)
    assert "no change" in ctl("spec", "apply", str(spec_file)).out


def test_spec_patch_with_assignments_and_merge(ctl, store):
    store.write_spec(parse_spec({"pg_parameters": {"work_mem": "4MB"}}), 0)
    patched = ctl(
        "spec", "patch", "timing.failover_delay=2", "keepers.pg1.priority=5",
        "--merge", '{"pg_parameters": {"work_mem": null, "max_connections": 200}}',
    )  # fmt: skip
    assert patched.code == 0, patched.err
    assert "+++ patched spec" in patched.out
    spec = store.read_spec().document
    assert spec.timing.failover_delay == 2.0
    assert spec.keeper_settings("pg1").priority == 5
    assert spec.pg_parameters == {"max_connections": 200}
    invalid = ctl("spec", "patch", "keepers.pg1.priority=5000")
    assert invalid.code == 2 and "keepers.pg1.priority" in invalid.err
    assert ctl("spec", "patch").code == 2
    assert store.read_spec().document == spec


def test_a_concurrent_spec_write_is_diffed_again_and_kept(ctl, store, monkeypatch):
    store.write_spec(ClusterSpec(), 0)
    original = ClusterStore.write_spec
    interfered: list[int] = []

    def write_after_somebody_else(self, spec, expected_revision):
        if not interfered:
            other = parse_spec({"pg_parameters": {"work_mem": "8MB"}})
            interfered.append(original(store, other, expected_revision) or 0)
        return original(self, spec, expected_revision)

    monkeypatch.setattr(ClusterStore, "write_spec", write_after_somebody_else)
    outcome = ctl("spec", "patch", "paused=true")
    assert outcome.code == 0, outcome.err
    assert f"changed by somebody else (now revision {interfered[0]})" in outcome.out
    assert outcome.out.count('+  "paused": true') == 2
    spec = store.read_spec().document
    assert spec.paused and spec.pg_parameters == {"work_mem": "8MB"}


def test_a_corrupt_spec_is_reported_naming_its_key(ctl, store):
    store.client.put(SPEC_KEY, b'{"format_version": 1, "paused": "yes"}')
    for argv in (("spec", "show"), ("pause",), ("switchover",), ("keeper", "remove", "pg1")):
        outcome = ctl(*argv)
        assert outcome.code == 1, argv
        assert len(outcome.err.splitlines()) == 1
        assert outcome.err.startswith(f"rhizomectl: error: store document '{SPEC_KEY}'")
        assert "paused" in outcome.err
    status = ctl("status")
    assert status.code == 0 and f"store problem: store document '{SPEC_KEY}'" in status.out
    assert store.client.get(SPEC_KEY).value == b'{"format_version": 1, "paused": "yes"}'


def run_rhizomectl(
    *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RHIZOMECTL), *argv], capture_output=True, text=True, timeout=30, env=env, check=False
    )


def test_the_installed_program_reads_its_configuration_file(etcd, tmp_path):
    config = tmp_path / "rhizomectl.toml"
    config.write_text(f'cluster = "main"\n[etcd]\nendpoints = ["{etcd.client_url}"]\n')
    created = run_rhizomectl("--config", str(config), "init")
    assert created.returncode == 0, created.stderr
    status = run_rhizomectl("status", env={"RHIZOME_CONFIG": str(config), "PATH": "/usr/bin"})
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("cluster:     main (store revision ")


def test_an_unreachable_store_exits_3_with_one_line_quickly():
    (port,) = free_ports(1)
    started = time.monotonic()
    outcome = run_rhizomectl(
        "--endpoints", f"http://127.0.0.1:{port}", "--cluster", "main", "status"
    )
    elapsed = time.monotonic() - started
    assert outcome.returncode == 3
    assert outcome.stdout == ""
    assert len(outcome.stderr.splitlines()) == 1
    assert outcome.stderr.startswith("rhizomectl: error: the store is unreachable: ")
    assert elapsed < 2.0


def test_a_wrong_password_is_one_clear_line_and_exit_2(etcd_factory, tmp_path, capsys):
    server = etcd_factory(auth=True)
    password_file = tmp_path / "etcd.pass"
    password_file.write_text("not-the-password\n")
    password_file.chmod(0o600)
    config = tmp_path / "rhizomectl.toml"
    config.write_text(
        f'cluster = "main"\n[etcd]\nendpoints = ["{server.client_url}"]\n'
        f'username = "{server.auth.user.username}"\npassword_file = "{password_file}"\n'
    )
    assert main(["--config", str(config), "status"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith("rhizomectl: error: etcd at ")
    assert "wrong user name or password" in captured.err
    assert "not-the-password" not in captured.err
