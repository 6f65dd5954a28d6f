"""When an idle keeper passes, and how it keeps asking PostgreSQL between passes
(rhizome.keeper.pace)."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest

from rhizome.keeper import pace
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.database import DatabaseError, KeptSession
from rhizome.keeper.observe import SqlObservation
from rhizome.spec import TimingSettings

INTERVAL = 0.05
ERROR = ("an error",)
OBSERVATION = SqlObservation(role="primary", system_identifier="1", timeline=1, version=150000)


class Postgres:
    """What PostgreSQL answers to the probes in turn (None: no answer; the last one repeats)."""

    def __init__(self, *probes: tuple[Any, ...] | None) -> None:
        self.probes = list(probes)
        self.observed = 0
        self.probed = 0

    def observe_sql(self, keeper: Any, session: Any) -> SqlObservation:
        self.observed += 1
        return OBSERVATION

    def probe_sql(self, session: Any) -> tuple[Any, ...] | None:
        self.probed += 1
        answer = self.probes.pop(0) if len(self.probes) > 1 else self.probes[0]
        if answer == ERROR:
            raise DatabaseError("ERROR:  canceling statement due to statement timeout")
        return answer


def quiet_wait(monkeypatch: pytest.MonkeyPatch, postgres: Postgres) -> pace.QuietWait:
    monkeypatch.setattr(pace, "observe_sql", postgres.observe_sql)
    monkeypatch.setattr(pace, "probe_sql", postgres.probe_sql)
    return pace.QuietWait(cast(KeeperConfig, None), cast(KeptSession, None), pace.LoopWake())


def test_quiet_passes_stretch_the_wait_to_three_intervals() -> None:
    timing = TimingSettings()
    assert [pace.pass_pause(timing, quiet) for quiet in range(5)] == [1.0, 2.0, 3.0, 3.0, 3.0]
    assert pace.pass_pause(TimingSettings(keeper_publish_interval=0.5), 0) == 0.5


def test_an_unchanged_answer_is_asked_for_every_interval_until_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postgres = Postgres((False, "0/100"))
    wait = quiet_wait(monkeypatch, postgres)
    assert wait.observe(running=True) == OBSERVATION
    assert postgres.probed == 1  # the pass's own answer to compare with
    started = time.monotonic()
    wait.wait(3 * INTERVAL, INTERVAL, running=True)
    assert time.monotonic() - started >= 3 * INTERVAL - 0.005
    assert postgres.probed == 3  # then a probe after each of the first two intervals
    assert wait.observe(running=True) == OBSERVATION
    assert postgres.observed == 2


@pytest.mark.parametrize("answer", [(False, "0/200"), ERROR], ids=["new WAL", "an error"])
def test_a_changed_answer_ends_the_wait_and_the_pass_observes_anew(
    monkeypatch: pytest.MonkeyPatch, answer: tuple[Any, ...]
) -> None:
    postgres = Postgres((False, "0/100"), answer)
    wait = quiet_wait(monkeypatch, postgres)
    wait.observe(running=True)
    started = time.monotonic()
    wait.wait(100 * INTERVAL, INTERVAL, running=True)
    assert time.monotonic() - started < 3 * INTERVAL
    assert wait.observe(running=True) == OBSERVATION
    assert postgres.observed == 2


def test_no_answer_ends_the_wait_and_the_pass_does_not_wait_for_one_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postgres = Postgres((False, "0/100"), None)
    wait = quiet_wait(monkeypatch, postgres)
    wait.observe(running=True)
    started = time.monotonic()
    wait.wait(100 * INTERVAL, INTERVAL, running=True)
    assert time.monotonic() - started < 3 * INTERVAL
    assert wait.observe(running=True) is None
    assert postgres.observed == 1
    wait.wait(100 * INTERVAL, INTERVAL, running=True)  # still none: every interval again
    assert time.monotonic() - started < 5 * INTERVAL


def test_a_wake_ends_the_wait_and_a_stopped_postgres_is_not_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postgres = Postgres((False, "0/100"))
    wait = quiet_wait(monkeypatch, postgres)
    assert wait.observe(running=False) is None
    started = time.monotonic()
    wait.wait(3 * INTERVAL, INTERVAL, running=False)
    assert (postgres.observed, postgres.probed) == (0, 0)
    assert time.monotonic() - started >= 3 * INTERVAL - 0.005
    wait.wake.set()
    started = time.monotonic()
    wait.wait(100 * INTERVAL, INTERVAL, running=True)
    assert time.monotonic() - started < INTERVAL
    assert not wait.wake.is_set()


def test_the_probes_follow_the_lease_renewals_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    postgres = Postgres((False, "0/100"))
    wait = quiet_wait(monkeypatch, postgres)
    wait.observe(running=True)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(0.06):
            wait.wake.tick()

    renewer = threading.Thread(target=renew)
    renewer.start()
    try:
        wait.wait(0.6, 0.2, running=True)
    finally:
        stop.set()
        renewer.join()
    assert postgres.probed - 1 >= 5, "probed by the 0.2 s timer instead of at each tick"


def test_a_tick_that_came_during_the_pass_does_not_probe_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    postgres = Postgres((False, "0/100"))
    wait = quiet_wait(monkeypatch, postgres)
    wait.observe(running=True)
    wait.wake.tick()
    wait.wait(3 * INTERVAL, INTERVAL, running=True)
    assert postgres.probed == 3  # the baseline, then one after each of two intervals
