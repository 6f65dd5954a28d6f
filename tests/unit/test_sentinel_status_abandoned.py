"""rhizomectl status names the keepers whose promotion the sentinel abandoned."""

from __future__ import annotations

from rhizome.cli.status import operation_text
from rhizome.store.state import Operation
from tests.unit.sentinel_builders import NOW


def test_the_operation_line_names_abandoned_promotions() -> None:
    operation = Operation(
        kind="failover",
        phase="fencing",
        previous_master="pg1",
        started_at=NOW - 20,
        phase_started_at=NOW - 2,
        abandoned_targets=("pg2",),
    )
    assert operation_text(operation, NOW) == (
        "failover pg1 -> ?, phase fencing for 2.0 s, promotion abandoned: pg2"
    )
    plain = operation.with_changes(abandoned_targets=())
    assert operation_text(plain, NOW) == "failover pg1 -> ?, phase fencing for 2.0 s"
