"""Failed starts back off (pure): the schedule, the plan holding a start back, the reason;
and PostgreSQL's log file kept to its size."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhizome.keeper import postgres_log
from rhizome.keeper.plan import ClusterFacts, LocalStatus, Start, plan
from rhizome.keeper.postgres_log import start_reason
from rhizome.keeper.start_backoff import StartFailures, StartRecord, start_backoff
from rhizome.store.documents import KeeperAssignment
from tests.unit.test_keeper_guard import keeper_config


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (8, 60.0), (10_000, 60.0)],
)
def test_failed_starts_back_off_exponentially_up_to_a_minute(failures: int, seconds: float) -> None:
    assert start_backoff(failures) == seconds


def test_the_next_start_waits_for_the_back_off_after_the_last_failure() -> None:
    failures = StartFailures().after_failure(100.0, "boom").after_failure(110.0, "FATAL: x")
    assert failures.count == 2
    assert failures.next_start_in(110.5) == pytest.approx(1.5)
    assert failures.next_start_in(112.0) == 0.0
    assert failures.waiting_text(111.0) == (
        "PostgreSQL failed to start 2 times in a row: FATAL: x; next start in 1.0 s"
    )
    assert StartFailures().next_start_in(0.0) == 0.0


def test_a_successful_start_forgets_the_failures() -> None:
    record = StartRecord()
    record.failed(1.0, "a")
    record.failed(2.0, "b")
    assert record.failures.count == 2
    record.started()
    assert record.failures == StartFailures()


def standby_to_start(failures: StartFailures) -> LocalStatus:
    return LocalStatus(data="present", start_failures=failures)


def test_the_plan_holds_a_start_back_during_the_back_off_and_says_why() -> None:
    facts = ClusterFacts(assignment=KeeperAssignment(role="standby", follow="pg1"), now=50.5)
    failed = StartFailures(
        count=3, last_at=48.0, reason='FATAL: configuration file "x" contains errors'
    )
    held = plan(standby_to_start(failed), facts)
    assert held.actions == ()
    assert held.waiting == (
        'PostgreSQL failed to start 3 times in a row: FATAL: configuration file "x" contains '
        "errors; next start in 1.5 s"
    )
    later = ClusterFacts(assignment=facts.assignment, now=52.0)
    assert plan(standby_to_start(failed), later).actions == (Start(standby=True),)
    assert plan(standby_to_start(StartFailures()), facts).actions == (Start(standby=True),)


def test_the_reason_is_postgresqls_last_messages_without_their_prefix() -> None:
    logged = (
        "2026-12-02 20:07:59.833 GMT [1164] LOG:  starting PostgreSQL 15.18\n"
        '2026-12-02 20:07:59.833 GMT [1164] LOG:  invalid value for parameter "shared_buffers": '
        '"banana"\n'
        '2026-12-02 20:07:59.833 GMT [1164] FATAL:  configuration file "/d/postgresql.conf" '
        "contains errors\n"
    )
    assert start_reason(logged) == (
        "LOG:  starting PostgreSQL 15.18 | "
        'LOG:  invalid value for parameter "shared_buffers": "banana" | '
        'FATAL:  configuration file "/d/postgresql.conf" contains errors'
    )
    assert start_reason("setpriv: cannot exec\n") == "setpriv: cannot exec"
    assert start_reason("") == "PostgreSQL logged nothing"


def test_the_log_is_copied_and_emptied_past_its_size_while_the_writer_appends_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_log, "ROTATE_SIZE", 100)
    keeper = keeper_config(tmp_path)
    keeper.state_dir.mkdir()
    writer, offset = postgres_log.open_for_start(keeper)
    assert offset == 0
    with writer:
        writer.write(b"old line\n" * 20)
        writer.flush()
        postgres_log.rotate_if_large(keeper)
        writer.write(b"new line\n")
        writer.flush()
    assert postgres_log.log_path(keeper).read_bytes() == b"new line\n"
    assert (keeper.state_dir / "postgresql.log.1").read_bytes() == b"old line\n" * 20
    postgres_log.rotate_if_large(keeper)  # small again: left alone
    assert postgres_log.log_path(keeper).read_bytes() == b"new line\n"
