"""rhizomectl's configuration, refusals, exit codes and formatting (pure, no etcd)."""

from __future__ import annotations

import pytest

from rhizome.cli.commands import command_name, command_refusal
from rhizome.cli.context import StoreOptions, resolve_store_config
from rhizome.cli.errors import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE, OperationRefused
from rhizome.cli.formatting import format_bytes, format_duration, render_table
from rhizome.cli.main import error_exit_code, main
from rhizome.config import ConfigError
from rhizome.etcd import EtcdAuthError, EtcdUnavailable
from rhizome.spec import ClusterSpec, SpecError, parse_spec
from rhizome.store.documents import ClusterState, Command, KeeperAssignment, Operation
from rhizome.store.errors import StoreDocumentError
from rhizome.store.keys import check_name
from tests.unit.test_cli_status import NOW, keeper, running_state, view_of

CONFIG = 'cluster = "main"\n[etcd]\nendpoints = ["http://10.0.0.1:2379"]\n'


def test_the_configuration_file_comes_from_the_option_then_the_environment(tmp_path):
    path = tmp_path / "ctl.toml"
    path.write_text(CONFIG)
    assert resolve_store_config(StoreOptions(config=str(path)), {}).cluster == "main"
    from_environment = resolve_store_config(StoreOptions(), {"RHIZOME_CONFIG": str(path)})
    assert from_environment.etcd.endpoints == ("http://10.0.0.1:2379",)


def test_endpoints_and_cluster_override_the_file_and_then_need_none(tmp_path):
    path = tmp_path / "ctl.toml"
    path.write_text(CONFIG + "request_timeout = 1.5\n")
    options = StoreOptions(config=str(path), endpoints="http://a:1, http://b:2", cluster="other")
    overridden = resolve_store_config(options, {})
    assert overridden.cluster == "other"
    assert overridden.etcd.endpoints == ("http://a:1", "http://b:2")
    assert overridden.etcd.request_timeout == 1.5, "the file's other settings stay"
    alone = resolve_store_config(StoreOptions(endpoints="http://a:1", cluster="main"), {})
    assert alone.etcd.endpoints == ("http://a:1",) and alone.api == "v3"
    on_v2 = StoreOptions(endpoints="http://a:1", cluster="main", etcd_api="v2")
    assert resolve_store_config(on_v2, {}).api == "v2"


def test_a_missing_default_configuration_says_how_to_give_one(monkeypatch, tmp_path):
    monkeypatch.setattr("rhizome.cli.context.DEFAULT_CONFIG_PATH", str(tmp_path / "none.toml"))
    with pytest.raises(ConfigError, match="pass --config FILE, set RHIZOME_CONFIG, or give"):
        resolve_store_config(StoreOptions(cluster="main"), {})
    with pytest.raises(ConfigError, match=r"does not exist$"):
        resolve_store_config(StoreOptions(config=str(tmp_path / "named.toml")), {})
    with pytest.raises(ConfigError, match="at least one URL"):
        resolve_store_config(StoreOptions(endpoints=" , ", cluster="main"), {})


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (OperationRefused("no"), EXIT_FAILED),
        (ConfigError("bad"), EXIT_USAGE),
        (SpecError(["x: bad; fix"]), EXIT_USAGE),
        (EtcdAuthError("denied"), EXIT_USAGE),
        (EtcdUnavailable("down"), EXIT_UNREACHABLE),
        (StoreDocumentError("/rhizome/main/spec", "corrupt"), EXIT_FAILED),
    ],
)
def test_operator_errors_map_to_exit_codes(error, code):
    assert error_exit_code(error) == code


def test_usage_errors_exit_2_without_a_traceback(capsys):
    assert main(["status", "--bogus"]) == EXIT_USAGE
    assert main([]) == EXIT_USAGE
    assert main(["switchover", "--timeout", "-1", "--endpoints", "http://a:1"]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert "is not a positive number of seconds" in error
    assert main(["--endpoints", "nonsense", "--cluster", "main", "status"]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("rhizomectl: error: the command line: etcd endpoint")


def command_view(spec: ClusterSpec | None = None, state: ClusterState | None = None):
    live = [keeper("pg1", role="primary"), keeper("pg2", role="standby"), keeper("pg3")]
    return view_of(spec or ClusterSpec(), state or running_state(), *live)


@pytest.mark.parametrize(
    ("kind", "target", "spec", "state", "reason"),
    [
        ("switchover", None, parse_spec({"paused": True}), None, "the cluster is paused"),
        ("switchover", "pg9", None, None, "keeper pg9 is unknown (keepers of the cluster: pg1"),
        ("switchover", "pg1", None, None, "keeper pg1 is already the master"),
        ("failover", "pg2", parse_spec({"keepers": {"pg2": {"maintenance": True}}}), None,
         "keeper pg2 is in maintenance"),
        ("failover", "pg2", parse_spec({"keepers": {"pg2": {"no_failover": True}}}), None,
         "keeper pg2 has no_failover set"),
        ("switchover", None, None, ClusterState(), "not initialised yet"),
        ("switchover", None, None, running_state(assignments={
            "pg1": KeeperAssignment(role="master")}, synchronous_standbys={}),
         "no standby to switch over to"),
    ],
)  # fmt: skip
def test_commands_are_refused_with_the_reason(kind, target, spec, state, reason):
    refusal = command_refusal(command_view(spec, state), spec or ClusterSpec(), kind, target)
    assert refusal is not None and reason in refusal


def test_a_down_or_fenced_target_and_busy_clusters_are_refused():
    state = running_state(
        assignments={
            "pg1": KeeperAssignment(role="master"),
            "pg2": KeeperAssignment(role="standby", follow="pg1"),
            "pg3": KeeperAssignment(role="fenced"),
            "pg4": KeeperAssignment(role="standby", follow="pg1"),
        },
        synchronous_standbys={},
    )
    spec = ClusterSpec()
    view = command_view(spec, state)
    assert "pg4 is down" in (command_refusal(view, spec, "switchover", "pg4") or "")
    assert "assigned fenced" in (command_refusal(view, spec, "switchover", "pg3") or "")
    assert command_refusal(view, spec, "switchover", "pg2") is None
    assert command_refusal(view, spec, "switchover", None) is None
    operation = Operation(kind="failover", phase="fencing", started_at=NOW, phase_started_at=NOW)
    busy = command_view(spec, state.with_changes(operation=operation))
    assert "a failover is in progress" in (command_refusal(busy, spec, "switchover", "pg2") or "")
    pending = Command(name="switchover-1", kind="switchover", requested_at=NOW, requested_by="x")
    queued = view_of(spec, state, pending, keeper("pg2"))
    assert "switchover-1 (switchover) is still pending" in (
        command_refusal(queued, spec, "failover", "pg2") or ""
    )


def test_command_names_are_valid_store_keys_and_unique():
    names = {command_name("switchover", NOW) for _ in range(20)}
    assert len(names) > 1
    for name in names:
        assert check_name("command", name) == name
        assert name.startswith("switchover-20231114-221320-")


def test_formatting_helpers():
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(5 * 1024**5) == "5120.0 TiB"
    assert format_bytes(None) == "-"
    assert format_duration(0.84) == "0.8 s"
    assert format_duration(42) == "42 s"
    assert format_duration(185) == "3 min 5 s"
    assert format_duration(7800) == "2 h 10 min"
    assert render_table(["A", "LONG"], [["xyz", "1"], ["q", ""]]) == "A    LONG\nxyz  1\nq"
