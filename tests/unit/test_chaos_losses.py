"""Lost writes attributed to faults and compared with the lag bound (chaos/losses.py)."""

from __future__ import annotations

from chaos.campaign import FaultRecord
from chaos.losses import LEAD_SECONDS, describe, explaining_record, group_losses
from chaos.plan import Fault

MIB = 1024 * 1024


def record(number: int, started: float, healed: float, converged: float | None) -> FaultRecord:
    return FaultRecord(Fault(number, "node-kill", "master", healed - started), "n1", started,
                       healed, converged)  # fmt: skip


RECORDS = [record(1, 100.0, 110.0, 115.0), record(2, 200.0, 210.0, None)]


def test_a_write_acknowledged_just_before_a_fault_or_during_it_is_explained_by_it() -> None:
    assert explaining_record(100.0 - LEAD_SECONDS, RECORDS) is RECORDS[0]
    assert explaining_record(114.9, RECORDS) is RECORDS[0]
    assert explaining_record(209.0, RECORDS) is RECORDS[1]


def test_a_write_acknowledged_between_faults_is_explained_by_none() -> None:
    assert explaining_record(150.0, RECORDS) is None
    assert explaining_record(100.0 - LEAD_SECONDS - 0.1, RECORDS) is None
    assert explaining_record(210.1, RECORDS) is None  # healed, never converged: window ends


def test_losses_are_grouped_per_fault_with_the_unexplained_ones_last() -> None:
    acknowledged = {1: 98.0, 2: 99.5, 3: 150.0, 4: 205.0}
    groups = group_losses([4, 3, 2, 1], acknowledged, RECORDS)
    assert [(g.record and g.record.fault.number, g.numbers) for g in groups] == [
        (1, (1, 2)), (2, (4,)), (None, (3,)),
    ]  # fmt: skip
    assert groups[0].earliest_lead == 2.0
    assert groups[1].earliest_lead == -5.0


def test_a_group_is_within_the_bound_only_when_a_fault_explains_it_and_its_wal_fits() -> None:
    groups = group_losses([1, 2, 3], {1: 98.0, 2: 99.0, 3: 150.0}, RECORDS)
    assert groups[0].within_bound(200.0, 16 * MIB)
    assert not groups[0].within_bound(10 * MIB, 16 * MIB)
    assert not groups[1].within_bound(1.0, 16 * MIB)


def test_the_report_line_says_when_and_how_much_against_the_bound() -> None:
    explained, unexplained = group_losses([1, 3], {1: 99.0, 3: 150.0}, RECORDS)
    line = describe(explained, 150.0, 16 * MIB)
    assert "1 lost in fault #1 node-kill" in line and "1.00 s before" in line
    assert "within the lag bound of 16 MiB" in line
    assert "BEYOND" in describe(explained, 17 * MIB, 16 * MIB)
    assert describe(unexplained, 150.0, 16 * MIB).startswith("1 lost writes no fault explains")
