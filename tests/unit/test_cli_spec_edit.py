"""rhizomectl's pure spec editing: assignments, merge patches, files and diffs."""

from __future__ import annotations

import io

import pytest

from rhizome.cli.errors import UsageError
from rhizome.cli.spec_edit import (
    assignments_patch,
    load_spec_file,
    merge_patch,
    parse_merge_patch,
    parse_value,
    patched_spec,
    spec_diff,
    spec_text,
    split_assignment,
)
from rhizome.spec import ClusterSpec, SpecError, parse_spec


def test_assignment_paths_split_on_dots_and_the_first_equals_sign():
    assert split_assignment("timing.failover_delay=2") == (["timing", "failover_delay"], "2")
    assert split_assignment("pg_parameters.search_path=a=b") == (
        ["pg_parameters", "search_path"],
        "a=b",
    )
    assert split_assignment('pg_parameters."pg_stat_statements.max"=5000') == (
        ["pg_parameters", "pg_stat_statements.max"],
        "5000",
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("timing.failover_delay", "has no '='"),
        ('pg_parameters."open=1', "unclosed quote"),
        ("timing..failover_delay=2", "empty field name"),
        ("=2", "empty field name"),
    ],
)
def test_malformed_assignments_are_usage_errors(text, problem):
    with pytest.raises(UsageError, match=problem):
        split_assignment(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2", 2),
        ("2.5", 2.5),
        ("true", True),
        ("null", None),
        ('"5"', "5"),
        ("64MB", "64MB"),
        ('["a", "b"]', ["a", "b"]),
        ("", ""),
    ],
)
def test_values_are_json_when_they_parse_as_json_else_strings(text, value):
    assert parse_value(text) == value


def test_assignments_build_one_merge_patch():
    patch = assignments_patch(
        ["timing.failover_delay=2", "keepers.pg1.priority=5", "keepers.pg1.no_failover=true"]
    )
    assert patch == {
        "timing": {"failover_delay": 2},
        "keepers": {"pg1": {"priority": 5, "no_failover": True}},
    }


@pytest.mark.parametrize(
    ("assignments", "problem"),
    [
        (["paused=true", "paused=false"], "a second time"),
        (["timing=5", "timing.failover_delay=2"], "inside timing"),
    ],
)
def test_conflicting_assignments_are_refused(assignments, problem):
    with pytest.raises(UsageError, match=problem):
        assignments_patch(assignments)


def test_merge_patch_follows_rfc_7386():
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "list": [3], "new": {"x": 1}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "list": [3], "new": {"x": 1}}
    assert target["c"] == {"d": "e", "f": "g"}, "the target is not changed"
    assert merge_patch({"a": 1}, ["replaced"]) == ["replaced"]


def test_merge_option_must_be_a_json_object():
    assert parse_merge_patch('{"paused": true}') == {"paused": True}
    with pytest.raises(UsageError, match="JSON object"):
        parse_merge_patch("[1]")
    with pytest.raises(UsageError, match="JSON object"):
        parse_merge_patch("{paused: true")


def test_patched_spec_is_validated_and_null_restores_the_default():
    spec = parse_spec({"initial_master": "pg1", "timing": {"failover_delay": 1.0}})
    patched = patched_spec(spec, {"initial_master": None, "timing": {"failover_delay": 2}})
    assert patched.initial_master is None
    assert patched.timing.failover_delay == 2.0
    assert patched.timing.keeper_lease_ttl == spec.timing.keeper_lease_ttl
    with pytest.raises(SpecError) as raised:
        patched_spec(spec, {"timing": {"fence_deadline": 9.0}}, {"keepers": {"pg1": {"x": 1}}})
    assert "timing.fence_deadline" in str(raised.value)
    assert "keepers.pg1.x: is not a known field" in str(raised.value)


def test_diff_is_empty_for_equal_specs_and_shows_changed_lines():
    spec = ClusterSpec()
    assert spec_diff(spec, ClusterSpec(), "old", "new") == ""
    changed = parse_spec({"paused": True})
    diff = spec_diff(spec, changed, "stored spec (revision 3)", "new.json")
    lines = diff.splitlines()
    assert lines[:2] == ["--- stored spec (revision 3)", "+++ new.json"]
    assert '-  "paused": false,' in lines
    assert '+  "paused": true,' in lines
    assert not [line for line in lines if line.startswith(("-", "+")) and "timing" in line]


def test_diff_ignores_the_order_of_mapping_keys():
    first = parse_spec({"pg_parameters": {"work_mem": "64MB", "max_connections": 200}})
    second = parse_spec({"pg_parameters": {"max_connections": 200, "work_mem": "64MB"}})
    assert spec_diff(first, second, "old", "new") == ""


def test_spec_text_round_trips_through_parse_spec():
    spec = parse_spec({"keepers": {"pg1": {"priority": 3}}, "pg_parameters": {"work_mem": "4MB"}})
    assert parse_spec(parse_value(spec_text(spec))) == spec


def test_spec_files_are_read_as_json_or_toml_by_extension(tmp_path):
    json_file = tmp_path / "spec.json"
    json_file.write_text('{"paused": true}')
    toml_file = tmp_path / "spec.TOML"
    toml_file.write_text("paused = true\n[keepers.pg1]\npriority = 5\n")
    assert load_spec_file(str(json_file)) == {"paused": True}
    assert load_spec_file(str(toml_file)) == {"paused": True, "keepers": {"pg1": {"priority": 5}}}
    assert load_spec_file("-", io.StringIO('{"paused": false}')) == {"paused": False}


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("spec.yaml", "paused: true", "name it \\*.json or \\*.toml"),
        ("spec.json", "{paused", "not valid JSON"),
        ("spec.toml", "paused = ", "not valid TOML"),
        ("spec.json", "[1, 2]", "must hold a JSON object"),
        ("missing.json", None, "cannot read the spec file"),
    ],
)
def test_unusable_spec_files_are_usage_errors(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=problem):
        load_spec_file(str(path))
