"""docs/reliability.md as a pure function of the campaigns' results (chaos/report.py)."""

from __future__ import annotations

from pathlib import Path

from chaos.campaign import CampaignResult, FaultRecord
from chaos.plan import Fault
from chaos.probe import ProbeSample
from chaos.report import EXPECTED_TOTAL, Section, render
from chaos.results import dump, load
from chaos.workload import WorkloadRecord


def result(mode: str, lost: list[int], samples: list[ProbeSample]) -> CampaignResult:
    inserts = WorkloadRecord([9.0, 9.5, 30.0], [], [], {1: 9.0, 2: 9.5, 3: 30.0})
    records = [FaultRecord(Fault(1, "node-kill", "master", 5.0), "n2", 10.0, 15.0, 18.0)]
    return CampaignResult(1, mode, records, samples, inserts, WorkloadRecord([], [], []),
                          lost, EXPECTED_TOTAL, 150.0, 16 * 1024 * 1024, 0.0, 60.0, 0.0,
                          Path("/nonexistent"))  # fmt: skip


def probe(target: str, at: float, server: str) -> ProbeSample:
    return ProbeSample(target, "direct", at - 0.01, at, server, True, True)


def test_each_mode_gets_its_section_with_its_losses_and_the_method_once() -> None:
    sections = [Section(result("sync", [], []), "sync command"),
                Section(result("async", [1, 2], []), "async command", ("plot.svg",))]  # fmt: skip
    text = render(sections)
    assert text.count("## Method") == 1
    assert "## Synchronous mode" in text and "## Asynchronous mode" in text
    assert "**lost: 0**" in text and "**lost: 2**" in text
    assert "2 lost in fault #1 node-kill on master for 5.0 s on n2" in text
    assert "1.00 s before the fault started" in text and "within the lag bound" in text
    assert "![plot](plot.svg)" in text


def test_a_dual_writable_interval_is_reported_with_the_fault_it_happened_in() -> None:
    samples = [probe("direct n1", 11.0, "A"), probe("direct n1", 13.0, "A"),
               probe("direct n2", 12.0, "B"), probe("direct n2", 14.0, "B")]  # fmt: skip
    text = render([Section(result("sync", [], samples), "command")])
    assert "dual-writable intervals direct (not via a proxy): **1**" in text
    assert "(1.000 s, during #1 node-kill on master for 5.0 s)" in text


def test_a_result_saved_as_json_loads_back_equal(tmp_path: Path) -> None:
    samples = [probe("direct n1", 11.0, "A")]
    original = result("async", [1], samples)
    dump(original, tmp_path / "result.json")
    assert load(tmp_path / "result.json") == original
