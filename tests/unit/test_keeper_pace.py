"""When an idle keeper passes, and how it keeps asking PostgreSQL between passes
(rhizome.keeper.pace)."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest

from rhizome.keeper import pace
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.database import KeptSession
from rhizome.keeper.observe import SqlObservation
from rhizome.spec import TimingSettings

INTERVAL = 0.05


def observation(flush_lsn: int) -> SqlObservation:
    return SqlObservation(
        role="primary", system_identifier="1", timeline=1, version=150000, flush_lsn=flush_lsn
    )


class Answers:
    """What PostgreSQL answers to each observation in turn (None: no answer)."""

    def __init__(self, *answers: SqlObservation | None) -> None:
        self.answers = list(answers)
        self.asked = 0

    def __call__(self, keeper: Any, session: Any) -> SqlObservation | None:
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def quiet_wait(monkeypatch: pytest.MonkeyPatch, answers: Answers) -> pace.QuietWait:
    monkeypatch.setattr(pace, "observe_sql", answers)
    return pace.QuietWait(cast(KeeperConfig, None), cast(KeptSession, None), threading.Event())


def test_quiet_passes_stretch_the_wait_to_three_intervals() -> None:
    timing = TimingSettings()
    assert [pace.pass_pause(timing, quiet) for quiet in range(5)] == [1.0, 2.0, 3.0, 3.0, 3.0]
    assert pace.pass_pause(TimingSettings(keeper_publish_interval=0.5), 0) == 0.5


def test_an_unchanged_answer_is_asked_for_every_interval_until_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = Answers(observation(100))
    wait = quiet_wait(monkeypatch, answers)
    assert wait.observe(running=True) == observation(100)
    started = time.monotonic()
    wait.wait(3 * INTERVAL, INTERVAL, running=True)
    assert time.monotonic() - started >= 3 * INTERVAL - 0.005
    assert answers.asked == 3  # the pass, then a probe after each of the first two intervals
    wait.observe(running=True)
    assert answers.asked == 4  # the pass asks anew


@pytest.mark.parametrize("answer", [observation(200), None], ids=["new WAL", "no answer"])
def test_a_changed_or_missing_answer_ends_the_wait_and_is_the_next_passs(
    monkeypatch: pytest.MonkeyPatch, answer: SqlObservation | None
) -> None:
    answers = Answers(observation(100), answer)
    wait = quiet_wait(monkeypatch, answers)
    wait.observe(running=True)
    started = time.monotonic()
    wait.wait(100 * INTERVAL, INTERVAL, running=True)
    assert time.monotonic() - started < 3 * INTERVAL
    assert wait.observe(running=True) == answer
    assert answers.asked == 2  # the probe's answer is not asked for again


def test_a_wake_ends_the_wait_and_a_stopped_postgres_is_not_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = Answers(observation(100))
    wait = quiet_wait(monkeypatch, answers)
    assert wait.observe(running=False) is None
    started = time.monotonic()
    wait.wait(3 * INTERVAL, INTERVAL, running=False)
    assert answers.asked == 0
    assert time.monotonic() - started >= 3 * INTERVAL - 0.005
    wait.wake.set()
    started = time.monotonic()
    wait.wait(100 * INTERVAL, INTERVAL, running=True)
    assert time.monotonic() - started < INTERVAL
    assert not wait.wake.is_set()
