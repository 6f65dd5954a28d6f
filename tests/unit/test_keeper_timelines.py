"""WAL positions, history files, divergence, pg_controldata and SCRAM verifiers."""

from __future__ import annotations

import pytest

from rhizome.keeper.controldata import parse_control_data
from rhizome.keeper.observe import parse_synchronous_names
from rhizome.keeper.passwords import passfile_line, scram_verifier, verifier_matches
from rhizome.keeper.timelines import (
    LocalHistory,
    TimelineSwitch,
    diverged,
    format_lsn,
    parse_history,
    parse_lsn,
    timeline_reached,
)

HISTORY = "1\t0/3000100\tno recovery target specified\n\n2\t0/5000000\tno recovery target\n"
CONTROLDATA = """pg_control version number:            1300
Database system identifier:           7311111111111111111
Database cluster state:               shut down
Latest checkpoint location:           0/3000028
Latest checkpoint's TimeLineID:       2
Minimum recovery ending location:     0/0
Min recovery ending loc's timeline:   0
Data page checksum version:           1
"""


def test_lsn_round_trip():
    assert parse_lsn("16/B374D848") == 0x16B374D848
    assert format_lsn(0x16B374D848) == "16/B374D848"
    with pytest.raises(ValueError):
        parse_lsn("B374D848")


def test_history_parsing():
    assert parse_history(HISTORY) == (TimelineSwitch(1, 0x3000100), TimelineSwitch(2, 0x5000000))


@pytest.mark.parametrize(
    ("local", "upstream_timeline", "expected"),
    [
        (LocalHistory(3, 0x9000000), 3, False),  # same timeline
        (LocalHistory(1, 0x3000000), 3, False),  # before timeline 1 ended
        (LocalHistory(1, 0x3000100), 3, True),  # at the switchpoint: wrote past it
        (LocalHistory(2, 0x4000000), 3, False),
        (LocalHistory(2, 0x6000000), 3, True),
        (LocalHistory(1, None), 3, True),  # unknown end
        (LocalHistory(4, 0x1000000), 3, True),  # ahead of the upstream
        (LocalHistory(5, 0x1000000), 6, True),  # not in the upstream's history
    ],
)
def test_divergence(local, upstream_timeline, expected):
    assert diverged(local, upstream_timeline, parse_history(HISTORY)) is expected


def test_control_data_parsing():
    control = parse_control_data(CONTROLDATA)
    assert control.system_identifier == "7311111111111111111"
    assert control.timeline == 2 and control.checkpoint_lsn == 0x3000028
    assert control.was_primary and control.clean_shutdown and control.checksums
    assert control.known_end == 0x3000028
    with pytest.raises(RuntimeError, match="unexpected pg_controldata output"):
        parse_control_data("nothing useful")


@pytest.mark.parametrize(
    ("setting", "names"),
    [("", ()), ('FIRST 2 ("a-1", "b")', ("a-1", "b")), ("ANY 1 (a, b)", ("a", "b")),
     ("a, b", ("a", "b")), ("*", ())],
)  # fmt: skip
def test_synchronous_names_in_effect(setting, names):
    assert parse_synchronous_names(setting) == names


def test_scram_verifier_round_trip():
    verifier = scram_verifier("pa:ss'word", salt=b"0123456789abcdef")
    assert verifier.startswith("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$")
    assert verifier_matches(verifier, "pa:ss'word")
    assert not verifier_matches(verifier, "other")
    assert not verifier_matches("md5abcdef", "pa:ss'word") and not verifier_matches(None, "x")


def test_passfile_escapes_colons_and_backslashes():
    assert passfile_line("repl", "a:b\\c") == "*:*:*:repl:a\\:b\\\\c\n"


def test_a_standby_is_on_a_new_timeline_once_it_holds_wal_past_the_switch():
    history = parse_history(HISTORY)  # timeline 3: timeline 2 ended at 0/5000000
    assert timeline_reached(3, history, parse_lsn("0/5000000"), holds_its_wal=True)
    assert timeline_reached(3, history, parse_lsn("0/6000000"), holds_its_wal=True)
    assert not timeline_reached(3, history, parse_lsn("0/4FFFFFF"), holds_its_wal=True)


def test_wal_past_the_switch_without_wal_of_the_new_timeline_is_the_parents_a_divergence():
    # Seen in the fault campaign (seed 31203, fault #14): a standby had received more
    # of timeline 7 than the standby promoted to timeline 8; its WAL receiver fetched
    # 00000008.history, and reporting timeline 8 hid the divergence for 100 s.
    history = parse_history(HISTORY)
    assert not timeline_reached(3, history, parse_lsn("0/6000000"), holds_its_wal=False)
    local = LocalHistory(timeline=2, end=parse_lsn("0/6000000"))
    assert diverged(local, 3, history)


def test_timeline_one_needs_no_history_and_a_later_one_does():
    assert timeline_reached(1, (), 0, holds_its_wal=False)
    assert not timeline_reached(2, (), parse_lsn("1/0"), holds_its_wal=True)
