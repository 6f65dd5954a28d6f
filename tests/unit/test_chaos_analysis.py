"""The campaign's analysis: dual-writable intervals and unavailability (chaos/analysis.py)."""

from __future__ import annotations

from chaos.analysis import dual_writable, longest_gap, percentile, writable_runs
from chaos.probe import ProbeSample


def sample(target: str, at: float, server: str | None, wrote: bool) -> ProbeSample:
    return ProbeSample(target, "proxy", at - 0.01, at, server, wrote, wrote)


def test_a_clean_handover_between_proxies_is_not_dual_writable() -> None:
    samples = [
        sample("proxy n1", 1.0, "A", True), sample("proxy n1", 2.0, "A", True),
        sample("proxy n1", 3.0, None, False), sample("proxy n2", 2.5, None, False),
        sample("proxy n2", 4.0, "B", True), sample("proxy n1", 4.5, "B", True),
    ]  # fmt: skip
    assert dual_writable(samples) == []
    assert [(run.server, run.first, run.last) for run in writable_runs(samples)] == [
        ("A", 1.0, 2.0), ("B", 4.5, 4.5), ("B", 4.0, 4.0),
    ]  # fmt: skip


def test_interleaved_acknowledgements_of_two_servers_are_reported_with_their_overlap() -> None:
    samples = [
        sample("proxy n1", 1.0, "A", True), sample("proxy n1", 3.0, "A", True),
        sample("proxy n2", 2.0, "B", True), sample("proxy n2", 4.0, "B", True),
    ]  # fmt: skip
    [interval] = dual_writable(samples)
    assert (interval.start, interval.end) == (2.0, 3.0)
    assert {interval.first.server, interval.second.server} == {"A", "B"}


def test_a_failed_sample_ends_a_run_so_a_fenced_server_does_not_count_as_writable() -> None:
    samples = [
        sample("direct n1", 1.0, "A", True), sample("direct n1", 2.0, None, False),
        sample("direct n1", 6.0, "A", True), sample("direct n2", 4.0, "B", True),
    ]  # fmt: skip
    assert dual_writable(samples) == []


def test_the_longest_gap_counts_from_the_last_success_before_the_window() -> None:
    successes = [0.0, 0.5, 1.0, 4.0, 4.5, 9.0]
    assert longest_gap(successes, 1.2, 5.0) == 4.5  # 4.5 -> 9.0 overlaps the window's end
    assert longest_gap(successes, 1.2, 3.9) == 3.0
    assert longest_gap([], 1.0, 3.0) == 2.0


def test_percentiles_are_nearest_rank() -> None:
    values = [float(value) for value in range(1, 101)]
    assert percentile(values, 0.99) == 99.0
    assert percentile([5.0], 0.99) == 5.0
