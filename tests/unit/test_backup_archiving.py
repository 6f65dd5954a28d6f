"""Archiving rendered by the keeper, the spec's backup section, the catch-up plan (pure)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rhizome.backup.archiving import ArchiveTarget, archive_command, archiving
from rhizome.backup.catch_up import files_to_push
from rhizome.keeper.conffiles import ConfigRequest, render_configuration
from rhizome.keeper.timelines import TimelineSwitch
from rhizome.spec import SpecError, parse_spec
from rhizome.spec.backup import BackupSettings
from tests.unit.test_keeper_conffiles import UPSTREAM, keeper, settings

SEGMENT = 16 * 1024 * 1024
CONFIG = Path("/etc/pgbackrest/pgbackrest.conf")


def backed_keeper(config: Path | None = CONFIG):
    return dataclasses.replace(keeper(), pgbackrest_config=config, cluster="main")


@pytest.mark.parametrize(
    "request_", [ConfigRequest(), ConfigRequest(upstream=UPSTREAM, standby=True)]
)
def test_every_node_renders_archiving_when_backups_are_enabled(request_):
    spec = parse_spec({"backup": {"enabled": True}})
    values = settings(render_configuration(backed_keeper(), spec, request_).postgresql_conf)
    assert values["archive_mode"] == "'on'"
    assert values["archive_command"] == (
        "'pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main "
        "--pg1-path=/srv/data archive-push %p'"
    )
    assert values["restore_command"] == (
        "'pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=main "
        '--pg1-path=/srv/data archive-get %f "%p"\''
    )


def test_nothing_is_rendered_with_backups_disabled_or_without_the_keeper_setting():
    for spec, node in [
        (parse_spec({}), backed_keeper()),
        (parse_spec({"backup": {"enabled": True}}), backed_keeper(None)),
    ]:
        text = render_configuration(node, spec, ConfigRequest()).postgresql_conf
        assert "archive_" not in text and "restore_command" not in text


def test_a_missing_pgbackrest_config_is_reported_naming_the_setting():
    found = archiving(BackupSettings(enabled=True), "main", None, Path("/srv/data"))
    assert found.parameters == {}
    assert found.problem is not None
    assert "[keeper] pgbackrest_config" in found.problem and "backup.enabled" in found.problem


def test_the_stanza_defaults_to_the_cluster_and_odd_paths_are_quoted():
    target = ArchiveTarget(Path("/etc/pg backrest/100%.conf"), "main", Path("/srv/data"))
    assert archive_command(target) == (
        "pgbackrest '--config=/etc/pg backrest/100%%.conf' --stanza=main "
        "--pg1-path=/srv/data archive-push %p"
    )
    assert BackupSettings().stanza_for("main") == "main"
    assert BackupSettings(stanza="other").stanza_for("main") == "other"


def test_the_spec_refuses_archiving_parameters_while_backups_are_enabled():
    with pytest.raises(SpecError) as caught:
        parse_spec({"backup": {"enabled": True}, "pg_parameters": {"archive_command": "cp"}})
    assert "pg_parameters.archive_command: is managed by rhizome" in str(caught.value)
    with pytest.raises(SpecError) as caught:
        parse_spec({"backup": {"enabled": True}, "pg_parameters": {"restore_command": "cp"}})
    assert "pg_parameters.restore_command: is managed by rhizome" in str(caught.value)
    parse_spec({"pg_parameters": {"archive_command": "cp %p /x/%f", "archive_mode": "on"}})


def test_the_spec_refuses_a_stanza_that_would_break_the_command_line():
    with pytest.raises(SpecError) as caught:
        parse_spec({"backup": {"enabled": True, "stanza": "main; rm -rf /"}})
    assert "backup.stanza" in str(caught.value)


def test_an_unused_backup_section_is_left_out_of_the_stored_spec():
    assert "backup" not in parse_spec({}).model_dump(mode="json")


HISTORY = (TimelineSwitch(1, 0x5_800_000),)  # timeline 1 ended in segment 5


def test_complete_segments_of_the_old_timeline_are_pushed_in_order():
    names = [
        "000000020000000000000005", "000000010000000000000004", "000000010000000000000003",
        "000000010000000000000005.partial", "00000002.history", "archive_status",
    ]  # fmt: skip
    assert files_to_push(names, 2, HISTORY, SEGMENT) == [
        "000000010000000000000003",
        "000000010000000000000004",
    ]


def test_the_segment_where_the_timeline_ended_and_diverged_ones_are_not_pushed():
    names = ["000000010000000000000005", "000000010000000000000007", "000000030000000000000001"]
    assert files_to_push(names, 2, HISTORY, SEGMENT) == []


def test_earlier_history_files_come_first_and_pushed_files_are_skipped():
    history = (TimelineSwitch(1, 0x3_000_000), TimelineSwitch(2, 0x5_800_000))
    names = ["00000002.history", "00000003.history", "000000020000000000000004",
             "000000010000000000000002"]  # fmt: skip
    assert files_to_push(names, 3, history, SEGMENT) == [
        "00000002.history",
        "000000010000000000000002",
        "000000020000000000000004",
    ]
    assert files_to_push(names, 3, history, SEGMENT, {"000000010000000000000002"}) == [
        "00000002.history",
        "000000020000000000000004",
    ]


def test_a_master_on_its_first_timeline_pushes_nothing():
    assert files_to_push(["000000010000000000000001"], 1, (), SEGMENT) == []


def test_segments_of_a_later_log_id_are_placed_by_their_position():
    history = (TimelineSwitch(1, (1 << 32) + 0x2_000_000),)
    names = ["0000000100000001000000FF", "000000010000000100000001", "000000010000000000000002"]
    assert files_to_push(names, 2, history, SEGMENT) == [
        "000000010000000000000002",
        "000000010000000100000001",
    ]
