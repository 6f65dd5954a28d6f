"""The restore's plan: the target, the backup set, pgBackRest's options, the cleanup (pure)."""

from __future__ import annotations

import json

import pytest

from rhizome.backup.drill import DrillReport
from rhizome.backup.restore_plan import (
    Backup,
    RestoreRefused,
    backup_on_history,
    backups_of,
    choose_backup,
    parse_target,
    restore_options,
    without_recovery_settings,
)
from rhizome.keeper.timelines import TimelineSwitch

FIRST = Backup("20261204-100000F", 1_800_000_000.0, 0x3000100, 1)
SECOND = Backup("20261204-110000F_20261204-120000D", 1_800_003_600.0, 0x5000100, 2)
NOW = 1_800_010_000.0


def test_the_target_is_one_of_time_lsn_name_or_latest() -> None:
    assert parse_target(None, None, None).kind == "latest"
    at = parse_target("2027-01-15T08:00:00+00:00", None, None)
    assert at.kind == "time" and at.at == 1_800_000_000.0
    assert parse_target(None, "0/5000100", None).lsn == 0x5000100
    assert parse_target(None, None, "before-migration").value == "before-migration"


@pytest.mark.parametrize(
    ("time", "lsn", "name", "message"),
    [
        ("2027-01-15T08:00:00", None, None, "has no time zone: add one"),
        ("yesterday", None, None, "is not a time such as"),
        (None, "5000100", None, "is not an LSN such as"),
        ("2027-01-15T08:00:00+00:00", "0/1", None, "name one recovery target, not time and lsn"),
    ],
)
def test_a_bad_target_is_refused_naming_the_option(time, lsn, name, message) -> None:
    with pytest.raises(RestoreRefused, match=message):
        parse_target(time, lsn, name)


def test_the_newest_backup_that_ended_before_the_target_is_chosen() -> None:
    backups = [FIRST, SECOND]
    between = parse_target("2027-01-15T08:30:00+00:00", None, None)
    assert choose_backup(backups, between, None, NOW) == FIRST
    assert choose_backup(backups, parse_target(None, "0/6000000", None), None, NOW) == SECOND
    assert choose_backup(backups, parse_target(None, None, None), None, NOW) == SECOND
    assert choose_backup(backups, between, FIRST.label, NOW) == FIRST


@pytest.mark.parametrize(
    ("time", "lsn", "label", "message"),
    [
        ("2027-01-15T07:00:00+00:00", None, None, "before the end of the oldest backup"),
        (None, "0/2000000", None, "before the end of the oldest backup 20261204-100000F"),
        ("2027-01-15T08:30:00+00:00", None, SECOND.label, "ended after time"),
        (None, None, "20200101-000000F", "unknown backup set '20200101-000000F'"),
        ("2027-02-15T08:00:00+00:00", None, None, "is in the future"),
    ],
)
def test_a_target_no_backup_can_reach_is_refused(time, lsn, label, message) -> None:
    with pytest.raises(RestoreRefused, match=message):
        choose_backup([FIRST, SECOND], parse_target(time, lsn, None), label, NOW)
    with pytest.raises(RestoreRefused, match="the repository has no backup"):
        choose_backup([], parse_target(None, None, None), None, NOW)


def test_pgbackrest_recovers_to_the_target_and_promotes() -> None:
    at = parse_target("2027-01-15T09:00:00+01:00", None, None)
    assert restore_options(FIRST, at) == [
        "--delta", f"--set={FIRST.label}", "--type=time",
        "--target=2027-01-15 08:00:00+00:00", "--target-action=promote",
    ]  # fmt: skip
    latest = restore_options(SECOND, parse_target(None, None, None))
    assert latest == ["--delta", f"--set={SECOND.label}", "--type=default"]


def test_backups_are_read_from_pgbackrest_info_and_garbage_is_skipped() -> None:
    info = json.loads(json.dumps({"name": "main", "backup": [
        {"label": SECOND.label, "timestamp": {"stop": SECOND.stopped_at},
         "lsn": {"stop": "0/5000100"}, "archive": {"stop": "000000020000000000000005"}},
        {"label": "broken", "timestamp": {}},
        {"label": "no archive", "timestamp": {"stop": 1}, "lsn": {"stop": "0/1000100"}},
        {"label": FIRST.label, "timestamp": {"stop": FIRST.stopped_at},
         "lsn": {"stop": "0/3000100"}, "archive": {"stop": "000000010000000000000003"}},
    ]}))  # fmt: skip
    assert backups_of(info) == [FIRST, SECOND]
    assert backups_of(None) == []


def test_a_standby_starts_from_the_newest_backup_on_its_upstreams_history() -> None:
    # timeline 1 ended at 0/4000000 (FIRST lies before), 2 at 0/6000000 (SECOND before)
    history = (TimelineSwitch(1, 0x4000000), TimelineSwitch(2, 0x6000000))
    assert backup_on_history([FIRST, SECOND], 3, history) == SECOND
    assert backup_on_history([FIRST, SECOND], 2, history[:1]) == SECOND
    assert backup_on_history([FIRST, SECOND], 1, ()) == FIRST


def test_a_backup_of_an_abandoned_timeline_is_not_chosen_for_a_standby() -> None:
    # a restore to a point before SECOND's end branched timeline 3 off timeline 2
    branched = (TimelineSwitch(1, 0x4000000), TimelineSwitch(2, 0x4800000))
    assert backup_on_history([FIRST, SECOND], 3, branched) == FIRST
    # timeline 1 abandoned before FIRST ended: nothing to start from
    early = (TimelineSwitch(1, 0x2000000),)
    assert backup_on_history([FIRST], 2, early) is None
    assert backup_on_history([], 1, ()) is None


def test_the_recovery_settings_are_removed_and_the_rest_is_kept() -> None:
    text = (
        "# Do not edit this file manually!\n"
        "work_mem = '8MB'\n"
        "# Recovery settings generated by pgBackRest restore on 2026-12-04 15:00:00\n"
        "restore_command = 'pgbackrest --stanza=main archive-get %f \"%p\"'\n"
        "recovery_target_time = '2026-12-04 14:03:00+00'\n"
        "recovery_target_action = 'promote'\n"
    )
    assert (
        without_recovery_settings(text) == "# Do not edit this file manually!\nwork_mem = '8MB'\n"
    )


def test_the_drill_report_says_how_long_how_old_and_how_much() -> None:
    report = DrillReport("20261204-100000F", restore_seconds=2.04, recovery_seconds=0.96,
                         data_as_of=NOW - 30, rows={"postgres": {"public.events": 40},
                                                    "app": {"a.t": 2, "a.u": 0}})  # fmt: skip
    text = report.describe(NOW)
    assert "restored in 2.0 s, recovered in 1.0 s; data 30 s old" in text, text
    assert "3 user tables, 42 rows in 2 databases" in text
    assert "  app: 2 rows in 2 tables" in text
    quiet = DrillReport("x", query_rows=[(40, "off")]).describe(NOW)
    assert "no transaction replayed after the backup" in quiet and "query: [(40, 'off')]" in quiet
