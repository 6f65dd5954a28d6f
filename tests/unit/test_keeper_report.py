"""Whether two keeper reports differ in anything but their observation time."""

from __future__ import annotations

from rhizome.keeper.report import same_report
from tests.unit.test_api_keeper_checks import info


def test_reports_equal_but_for_the_observation_time_are_the_same():
    assert same_report(info(observed_at=1.0), info(observed_at=2.5))


def test_any_other_field_makes_a_new_report():
    assert not same_report(info(), info(replay_lsn=4001))
    assert not same_report(info(), info(last_error="restart pending"))
    assert not same_report(info(), info(pending_restart=("shared_buffers",)))


def test_nothing_published_yet_is_never_the_same():
    assert not same_report(None, info())
