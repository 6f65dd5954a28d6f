"""The cluster spec: defaults, and every kind of bad input rejected with its field named."""

from typing import Any

import pytest

from rhizome.spec import MANAGED_PARAMETERS, ClusterSpec, SpecError, TimingSettings, parse_spec
from rhizome.store.codec import decode_document, encode_document


def _problems(data: object) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    assert isinstance(caught.value, ValueError)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("invalid cluster spec")
    assert list(caught.value.problems) == lines[1:]
    return lines[1:]


def _single_problem(data: object) -> str:
    problems = _problems(data)
    assert len(problems) == 1, problems
    return problems[0]


def _hba(**changes: object) -> dict[str, Any]:
    return {"pg_hba": [{"type": "host", "database": "all", "user": "all", "address": "10.0.0.0/8",
                        "method": "scram-sha-256", **changes}]}  # fmt: skip


def test_defaults_are_valid_and_documented() -> None:
    spec = parse_spec({})
    assert spec == ClusterSpec()
    assert spec.timing.keeper_publish_interval < spec.timing.fence_deadline
    assert spec.timing.fence_deadline < spec.timing.keeper_lease_ttl
    assert spec.max_standby_lag_bytes == 16 * 1024 * 1024
    assert not spec.synchronous_replication.enabled
    assert spec.use_pg_rewind and not spec.paused and spec.init_mode == "new"
    for model in (ClusterSpec, TimingSettings):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_defaults_fail_over_a_dead_host_within_six_seconds() -> None:
    timing = ClusterSpec().timing
    assert timing.keeper_lease_ttl + timing.failover_delay <= 5.0


def test_spec_round_trips_through_the_codec() -> None:
    spec = parse_spec(
        {
            "synchronous_replication": {"enabled": True, "min_standbys": 1, "max_standbys": 2},
            "pg_parameters": {"work_mem": "64MB", "max_connections": 200, "jit": False},
            "keepers": {"pg1": {"priority": 10}, "pg-2_b": {"no_failover": True}},
            **_hba(options={"clientcert": "verify-full"}, type="hostssl"),
        }
    )
    raw = encode_document(spec)
    assert b'"format_version":1' in raw
    assert decode_document("/rhizome/main/spec", raw, ClusterSpec) == spec


def test_valid_variants_are_accepted() -> None:
    parse_spec({"init_mode": "existing", "initial_master": "pg1", "dead_keeper_removal_after": 0})
    parse_spec({"pg_parameters": {"pg_stat_statements.max": 5000, "wal_level": "logical"}})
    parse_spec({"pg_hba": [{"type": "local", "database": "all", "user": "postgres",
                            "method": "peer"}]})  # fmt: skip
    for address in ("all", "samenet", "fd00::/8", "192.168.1.0/24", ".example.com", "db1"):
        parse_spec(_hba(address=address))


REJECTIONS: list[tuple[dict[str, Any], str]] = [
    ({"timing": {"fence_deadline": 6.0}}, "timing.fence_deadline"),
    ({"timing": {"keeper_lease_ttl": 3.8}}, "timing.fence_deadline"),
    ({"timing": {"keeper_publish_interval": 3.5}}, "timing.keeper_publish_interval"),
    ({"timing": {"keeper_lease_ttl": 0}}, "timing.keeper_lease_ttl"),
    ({"timing": {"failover_delay": -1.0}}, "timing.failover_delay"),
    ({"timing": {"proxy_close_deadline": 4.8}}, "timing.proxy_close_deadline"),
    ({"timing": {"renew_interval": 3.5}}, "timing.renew_interval"),
    ({"timing": {"sentinel_lease_ttl": 1.0, "renew_interval": 1.0}}, "timing.renew_interval"),
    ({"timing": {"proxy_hold_timeout": 5000.0}}, "timing.proxy_hold_timeout"),
    ({"timing": {"keeper_lease_ttl": "5"}}, "timing.keeper_lease_ttl"),
    ({"timing": {"fence_deadline": float("nan")}}, "timing.fence_deadline"),
    ({"timing": {"lease": 5}}, "timing.lease"),
    (
        {"synchronous_replication": {"enabled": True, "min_standbys": 0}},
        "synchronous_replication.min_standbys",
    ),
    (
        {"synchronous_replication": {"min_standbys": 2, "max_standbys": 1}},
        "synchronous_replication.max_standbys",
    ),
    ({"synchronous_replication": {"enabled": "yes"}}, "synchronous_replication.enabled"),
    ({"max_standby_lag_bytes": -1}, "max_standby_lag_bytes"),
    ({"max_standby_lag_bytes": 1.5}, "max_standby_lag_bytes"),
    ({"init_mode": "restore"}, "init_mode"),
    ({"init_mode": "existing"}, "initial_master"),
    ({"initial_master": "Bad Name"}, "initial_master"),
    ({"initial_master": "pg1", "keepers": {"pg1": {"maintenance": True}}}, "initial_master"),
    ({"paused": "no"}, "paused"),
    ({"use_pg_rewind": 1}, "use_pg_rewind"),
    ({"dead_keeper_removal_after": 10}, "dead_keeper_removal_after"),
    ({"keepers": {"PG1": {}}}, "keepers.PG1"),
    ({"keepers": {"x" * 64: {}}}, "keepers.xxx"),
    ({"keepers": {"pg1": {"priority": 1001}}}, "keepers.pg1.priority"),
    ({"keepers": {"pg1": {"no_failover": "true"}}}, "keepers.pg1.no_failover"),
    ({"keepers": {"pg1": {"weight": 1}}}, "keepers.pg1.weight"),
    ({"pg_parameters": {"work mem": "1MB"}}, "pg_parameters.work mem"),
    ({"pg_parameters": {"work_mem": ["1MB"]}}, "pg_parameters.work_mem"),
    ({"pg_parameters": {"work_mem": "1MB\nport = 1"}}, "pg_parameters.work_mem"),
    ({"pg_parameters": {"wal_level": "minimal"}}, "pg_parameters.wal_level"),
    ({"pg_parameters": "work_mem=1MB"}, "pg_parameters"),
    ({"format_version": 2}, "format_version"),
    ({"replicas": 3}, "replicas"),
]


@pytest.mark.parametrize(("data", "field"), REJECTIONS, ids=[field for _, field in REJECTIONS])
def test_rejections_name_the_field(data: dict[str, Any], field: str) -> None:
    problem = _single_problem(data)
    assert problem.startswith(field), problem
    assert "; " in problem


def test_timing_error_explains_the_rule_and_the_fix() -> None:
    problem = _single_problem({"timing": {"fence_deadline": 6.0}})
    assert problem == (
        "timing.fence_deadline: 6.0 must be smaller than timing.keeper_lease_ttl (5.0) by at "
        "least 0.5 s: a master that cannot renew its lease must fence itself before the lease "
        "expires, because the sentinel promotes another keeper as soon as it has expired; "
        "lower timing.fence_deadline or raise timing.keeper_lease_ttl"
    )


def test_every_problem_is_listed_one_per_line() -> None:
    problems = _problems(
        {
            "timing": {"keeper_publish_interval": 7.0, "fence_deadline": 6.0},
            "pg_parameters": {"port": 5433, "listen_addresses": "*"},
            "keepers": {"pg1": {"priority": -1}},
            "colour": "blue",
        }
    )
    fields = [problem.split(":")[0] for problem in problems]
    assert fields == [
        "timing.keeper_publish_interval",
        "timing.fence_deadline",
        "pg_parameters.port",
        "pg_parameters.listen_addresses",
        "keepers.pg1.priority",
        "colour",
    ]


def test_not_a_mapping() -> None:
    assert "input should be a valid dictionary" in _single_problem(["timing"])


@pytest.mark.parametrize("name", sorted(MANAGED_PARAMETERS))
def test_managed_parameters_are_refused(name: str) -> None:
    problem = _single_problem({"pg_parameters": {name: "x"}})
    assert problem.startswith(f"pg_parameters.{name}: is managed by rhizome")
    assert problem.endswith("; remove it")


def test_managed_parameter_list_covers_the_safety_critical_ones() -> None:
    for name in ("port", "primary_conninfo", "synchronous_standby_names", "hot_standby",
                 "recovery_target_action", "include_dir", "data_directory"):  # fmt: skip
        assert name in MANAGED_PARAMETERS


def test_parameter_names_must_be_lowercase() -> None:
    problem = _single_problem({"pg_parameters": {"Port": 5433}})
    assert problem == "pg_parameters.Port: is not a valid parameter name; write it in lowercase"


def test_synchronous_commit_cannot_weaken_synchronous_replication() -> None:
    spec: dict[str, Any] = {"synchronous_replication": {"enabled": True}}
    for value in ("local", "off", False):
        spec["pg_parameters"] = {"synchronous_commit": value}
        assert _single_problem(spec).startswith("pg_parameters.synchronous_commit:")
    spec["pg_parameters"] = {"synchronous_commit": "remote_apply"}
    parse_spec(spec)
    parse_spec({"pg_parameters": {"synchronous_commit": "off"}})


HBA_REJECTIONS: list[tuple[dict[str, object], str]] = [
    ({"type": "hostx"}, "pg_hba[0].type"),
    ({"method": "magic"}, "pg_hba[0].method"),
    ({"address": "10.0.0.1/8"}, "pg_hba[0].address"),
    ({"address": "10.0.0.300/8"}, "pg_hba[0].address"),
    ({"address": "10.0.0.1"}, "pg_hba[0].address"),
    ({"address": "not an address"}, "pg_hba[0].address"),
    ({"address": None}, "pg_hba[0].address"),
    ({"type": "local"}, "pg_hba[0].address"),
    ({"database": "app db"}, "pg_hba[0].database"),
    ({"user": "bob # all"}, "pg_hba[0].user"),
    ({"method": "peer"}, "pg_hba[0].method"),
    ({"method": "cert"}, "pg_hba[0].method"),
    ({"options": {"ldapserver": 'x" trust'}}, "pg_hba[0].options"),
    ({"options": {"Bad-Option": "x"}}, "pg_hba[0].options"),
    ({"extra": 1}, "pg_hba[0].extra"),
]


@pytest.mark.parametrize(
    ("changes", "field"), HBA_REJECTIONS, ids=[str(c) for c, _ in HBA_REJECTIONS]
)
def test_pg_hba_rejections(changes: dict[str, object], field: str) -> None:
    problem = _single_problem(_hba(**changes))
    assert problem.startswith(field + ":"), problem


def test_pg_hba_host_bits_error_shows_the_fix() -> None:
    problem = _single_problem(_hba(address="10.0.0.1/8"))
    assert "has host bits set" in problem
