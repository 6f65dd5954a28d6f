"""The pure helpers behind bench/side_by_side.py's figures."""

from __future__ import annotations

import pytest

from bench.probes import (
    Attempt,
    error_counts,
    error_kind,
    failures,
    longest_pause,
    percentile,
    ratio,
    recovery_seconds,
    summarize,
)


def acknowledged(finished: float, connected_at: float = 0.0) -> Attempt:
    return Attempt(finished - 0.005, finished, True, False, connected_at, "")


def failed(started: float, connect: bool, error: str = "server closed the connection") -> Attempt:
    return Attempt(started, started + 0.01, False, connect, None if connect else 0.0, error)


def test_recovery_counts_only_writes_on_connections_opened_after_the_fault():
    attempts = [
        acknowledged(9.9),
        acknowledged(10.2, connected_at=0.0),  # an old session: not a recovery
        failed(10.3, connect=True),
        acknowledged(14.5, connected_at=14.49),
    ]
    assert recovery_seconds(attempts, fault_at=10.0) == pytest.approx(4.5)
    assert recovery_seconds(attempts[:3], fault_at=10.0) is None


def test_longest_pause_includes_the_window_edges():
    attempts = [acknowledged(1.0), acknowledged(1.01), acknowledged(2.5), failed(1.5, True)]
    assert longest_pause(attempts, since=1.0, until=3.0) == pytest.approx(1.49)
    assert longest_pause([], since=1.0, until=3.0) == pytest.approx(2.0)


def test_failures_split_connects_from_transactions_and_name_them():
    attempts = [failed(1.0, connect=True), failed(2.0, connect=False), failed(0.5, True)]
    assert failures(attempts, since=0.9) == (1, 1)
    assert error_counts(attempts) == {
        "connect: server closed the connection": 2,
        "transaction: server closed the connection": 1,
    }


def test_error_kind_is_countable():
    first = error_kind(RuntimeError("FATAL:  port 5432 failed\nDETAIL: more"))
    assert first == error_kind(RuntimeError("FATAL:  port 6543 failed"))
    assert error_kind(TimeoutError()) == "timed out (1 s deadline)"


def test_percentile_summary_and_ratio():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.9) == pytest.approx(7.6)
    summary = summarize(values)
    assert summary is not None
    assert (summary.count, summary.median, summary.maximum) == (5, 3.0, 10.0)
    assert summarize([]) is None
    assert ratio(5.0, 25.0) == "0.20"
    assert ratio(None, 25.0) == "-" and ratio(5.0, 0.0) == "-"
