"""Where lost writes come from, and whether they stay within the lag bound (pure).

In asynchronous mode a failover may lose writes the old master acknowledged
but had not yet streamed; the sentinel promotes only a standby at most
`max_standby_lag_bytes` behind the old master's last known position. So every
lost write must belong to a fault (acknowledged shortly before it started or
while it lasted), and the writes lost in one fault must fit within the bound
(their count times the WAL one insert writes, measured on the cluster).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaos.campaign import FaultRecord

LEAD_SECONDS = 5.0
"""How long before a fault starts a write it loses may have been acknowledged: the
replication delay of the last acknowledged writes plus the probe's own delay."""


@dataclass(frozen=True)
class LossGroup:
    """The lost writes one fault explains (record None: no fault explains them)."""

    record: FaultRecord | None
    numbers: tuple[int, ...]
    earliest_lead: float
    """Seconds between the earliest lost acknowledgement and the fault's start
    (positive: before the fault started)."""

    def lost_bytes(self, wal_bytes_per_insert: float) -> float:
        return len(self.numbers) * wal_bytes_per_insert

    def within_bound(self, wal_bytes_per_insert: float, bound_bytes: int) -> bool:
        return self.record is not None and self.lost_bytes(wal_bytes_per_insert) <= bound_bytes


def explaining_record(moment: float, records: Sequence[FaultRecord]) -> FaultRecord | None:
    """The latest fault whose window, opened LEAD_SECONDS early, contains the
    acknowledgement `moment`."""
    for record in sorted(records, key=lambda record: record.started, reverse=True):
        start, end = record.window
        if start - LEAD_SECONDS <= moment <= end:
            return record
    return None


def group_losses(lost: Sequence[int], acknowledged: Mapping[int, float],
                 records: Sequence[FaultRecord]) -> list[LossGroup]:  # fmt: skip
    """Lost writes grouped by the fault that explains them, in the order of the faults;
    writes no fault explains form a group of their own (record None), listed last."""
    numbers_by_record: dict[int | None, list[int]] = {}
    for number in sorted(lost):
        record = explaining_record(acknowledged[number], records)
        key = None if record is None else record.fault.number
        numbers_by_record.setdefault(key, []).append(number)
    by_number = {record.fault.number: record for record in records}
    groups = []
    for key in sorted(numbers_by_record, key=lambda key: (key is None, key or 0)):
        numbers = numbers_by_record[key]
        record = None if key is None else by_number[key]
        earliest = min(acknowledged[number] for number in numbers)
        lead = 0.0 if record is None else record.started - earliest
        groups.append(LossGroup(record, tuple(numbers), lead))
    return groups


def describe(group: LossGroup, wal_bytes_per_insert: float, bound_bytes: int) -> str:
    """One report line for a group of lost writes."""
    count = len(group.numbers)
    if group.record is None:
        return f"{count} lost writes no fault explains (numbers {list(group.numbers[:10])})"
    lost = group.lost_bytes(wal_bytes_per_insert)
    verdict = "within" if lost <= bound_bytes else "BEYOND"
    when = "before" if group.earliest_lead >= 0 else "after"
    return (
        f"{count} lost in fault {group.record.fault.describe()} on {group.record.node}: "
        f"the earliest acknowledged {abs(group.earliest_lead):.2f} s {when} the fault started; "
        f"about {lost / 1024:.1f} KiB of WAL, {verdict} the lag bound of "
        f"{bound_bytes / 1024 / 1024:.0f} MiB"
    )
