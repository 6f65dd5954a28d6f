"""The backup record: from pgBackRest's outcome and info, into the store and status (pure)."""

from __future__ import annotations

import json

import pytest

from rhizome.backup.pgbackrest import Outcome, command_line, masked, trimmed_error
from rhizome.backup.records import (
    Attempt,
    backup_record,
    newest_backup,
    parse_info,
    streaming_standbys,
)
from rhizome.cli.backup_status import LastBackup, backup_line, backup_report
from rhizome.store.backups import BackupRecord
from rhizome.store.codec import decode_document, encode_document
from rhizome.store.errors import StoreDocumentError
from tests.unit.test_cli_status import NOW, keeper, running_state, view_of

INFO = [{
    "name": "main",
    "backup": [
        {"label": "20240101-000000F", "type": "full", "timestamp": {"start": 10, "stop": 20}},
        {"label": "20240102-000000F", "type": "full",
         "timestamp": {"start": int(NOW) + 1, "stop": int(NOW) + 9},
         "info": {"size": 125829120, "delta": 125829120,
                  "repository": {"size": 9000000, "delta": 9000000}},
         "lsn": {"start": "0/9000028", "stop": "0/9000138"}},
    ],
}]  # fmt: skip
ATTEMPT = Attempt("incr", "main", "db2", from_standby=True)


def test_a_successful_backup_is_recorded_from_pgbackrest_info():
    made = newest_backup(parse_info(json.dumps(INFO), "main"), NOW)
    record = backup_record(ATTEMPT, Outcome(True, "", None, NOW, NOW + 9.5), made)
    assert record.ok and record.label == "20240102-000000F"
    assert record.type == "full"  # pgBackRest made a full one: no full backup before
    assert record.size_bytes == 125829120 and record.repository_bytes == 9000000
    assert (record.start_lsn, record.stop_lsn) == (0x9000028, 0x9000138)
    assert record.duration == pytest.approx(9.5) and record.from_standby
    assert decode_document("k", encode_document(record), BackupRecord) == record


def test_a_failed_backup_keeps_pgbackrest_error_and_no_label():
    outcome = Outcome(False, "", "ERROR: [056]: unable to find primary cluster", NOW, NOW + 1)
    record = backup_record(ATTEMPT, outcome, None)
    assert not record.ok and record.label is None and record.type == "incr"
    assert record.error == "ERROR: [056]: unable to find primary cluster"


def test_success_without_a_new_backup_in_info_counts_as_a_failure():
    only_old = [{**INFO[0], "backup": INFO[0]["backup"][:1]}]
    old_only = newest_backup(parse_info(json.dumps(only_old), "main"), NOW)
    record = backup_record(ATTEMPT, Outcome(True, "", None, NOW, NOW + 1), old_only)
    assert not record.ok and "lists no new backup" in (record.error or "")


def test_garbled_info_names_no_backup():
    assert parse_info("not json", "main") is None
    assert parse_info(json.dumps(INFO), "other") is None
    assert newest_backup(None, NOW) is None


def test_an_incoherent_record_is_refused():
    with pytest.raises(StoreDocumentError, match="error"):
        decode_document("/rhizome/main/backups/last", json.dumps({
            "format_version": 1, "type": "full", "ok": True, "started_at": 1.0,
            "finished_at": 2.0, "node": "db1", "stanza": "main", "error": "boom",
        }).encode(), BackupRecord)  # fmt: skip


def test_errors_are_trimmed_and_credentials_masked():
    text = trimmed_error("WARN: x\nERROR: [037]: repo1-s3-key-secret=abc123 refused\n", "", 37)
    assert text == "ERROR: [037]: repo1-s3-key-secret=*** refused"
    assert masked("password=hunter2 cipher-pass: x") == "password=*** cipher-pass: ***"
    assert len(trimmed_error("ERROR: " + "x" * 5000, "", 1)) == 600


def test_the_command_line_carries_no_secret_and_drops_root():
    argv = command_line(["--config=/etc/p.conf", "--stanza=main"], "backup", ["--type=full"])
    assert argv[:1] in (["pgbackrest"], ["setpriv"])
    assert not any("pass" in word for word in argv)


def test_a_backup_goes_to_a_standby_only_when_one_streams():
    streaming = keeper("pg1", role="primary", flush_lsn=1, streaming_standbys=("pg2",))
    view = view_of(
        running_state(), streaming, keeper("pg2", role="standby"), keeper("pg3", role="standby")
    )
    assert streaming_standbys(view) == ["pg2"]
    alone = keeper("pg1", role="primary", flush_lsn=1)
    assert streaming_standbys(view_of(running_state(), alone, keeper("pg2", role="standby"))) == []


def test_status_shows_the_last_backup_its_age_and_result():
    ok = backup_record(
        ATTEMPT, Outcome(True, "", None, NOW - 70, NOW - 60),
        newest_backup(parse_info(json.dumps(INFO), "main"), NOW - 70),
    )  # fmt: skip
    assert backup_line(LastBackup(ok), True, NOW) == (
        "last backup", "ok, 1 min 0 s ago: 20240102-000000F (full) from a standby, 10 s, 120.0 MiB"
    )  # fmt: skip
    failed = backup_record(ATTEMPT, Outcome(False, "", "ERROR: stop file", NOW - 5, NOW - 4), None)
    line = backup_line(LastBackup(failed), True, NOW)
    assert line is not None and line[1].startswith("FAILED 4.0 s ago (incr")
    assert backup_line(LastBackup(), False, NOW) is None
    assert backup_line(LastBackup(), True, NOW) is not None
    report = backup_report(LastBackup(failed), NOW)
    assert report is not None and report["ok"] is False and report["age_seconds"] == 4.0
