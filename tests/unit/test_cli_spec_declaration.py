"""declared_spec: a declared spec merged into, or replacing, the stored one (pure)."""

from __future__ import annotations

import pytest

from rhizome.cli.spec_declaration import declared_spec
from rhizome.spec import ClusterSpec, SpecError, parse_spec

STORED = parse_spec(
    {
        "paused": True,
        "keepers": {"pg2": {"maintenance": True}},
        "pg_parameters": {"work_mem": "64MB"},
        "pg_hba": [{"type": "local", "database": "all", "user": "all", "method": "peer"}],
        "timing": {"failover_delay": 1},
    }
)


def test_merge_keeps_what_the_declaration_does_not_name():
    declared = {"timing": {"proxy_hold_timeout": 20}, "pg_parameters": {"shared_buffers": "1GB"}}
    spec = declared_spec(STORED, declared, "merge")
    assert spec.paused and spec.keeper_settings("pg2").maintenance
    assert spec.pg_parameters == {"work_mem": "64MB", "shared_buffers": "1GB"}
    assert (spec.timing.failover_delay, spec.timing.proxy_hold_timeout) == (1.0, 20.0)
    assert spec.pg_hba == STORED.pg_hba


def test_merge_replaces_lists_and_null_resets_a_field_to_its_default():
    spec = declared_spec(STORED, {"pg_hba": [], "paused": None, "keepers": {"pg2": None}}, "merge")
    assert spec.pg_hba == () and spec.paused is False and spec.keepers == {}


def test_merge_of_what_is_stored_is_the_stored_spec():
    assert declared_spec(STORED, {"paused": True, "timing": {"failover_delay": 1}}, "merge") == (
        STORED
    )
    assert declared_spec(STORED, {}, "merge") == STORED


def test_replace_and_a_first_spec_take_the_defaults_for_the_rest():
    declared = {"timing": {"failover_delay": 2}}
    expected = parse_spec(declared)
    assert declared_spec(STORED, declared, "replace") == expected
    assert declared_spec(None, declared, "merge") == expected
    assert declared_spec(None, declared, "replace") == expected
    assert declared_spec(None, {}, "merge") == ClusterSpec()


def test_an_invalid_result_names_the_field():
    with pytest.raises(SpecError) as raised:
        declared_spec(STORED, {"synchronous_replication": {"enabled": "yes"}}, "merge")
    assert raised.value.problems[0].startswith("synchronous_replication.enabled:")
    with pytest.raises(SpecError, match=r"timing\.keeper_publish_interval"):
        declared_spec(None, {"timing": {"keeper_publish_interval": 4}}, "replace")


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown declaration mode 'update'"):
        declared_spec(STORED, {}, "update")  # type: ignore[arg-type]
