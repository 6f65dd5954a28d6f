"""Where a blue/green preparation stands, per database (pure, from replication.py's facts).

A database is ready for the cutover when its subscription exists, is
enabled, its apply worker runs, every table is in state r (copied and
streaming) and its slot exists on the source. The lag is what the slot still
has to confirm of the source's WAL; the sequence values arrive only once the
sealed master recorded them, so they are shown and not required.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rhizome.upgrade.replication import ReplicationFacts, subscription_name


@dataclass(frozen=True)
class DatabaseStatus:
    database: str
    subscription: str
    subscribed: bool
    enabled: bool
    worker_running: bool
    tables_not_ready: tuple[str, ...]
    slot_exists: bool
    slot_active: bool
    confirmed_lsn: int | None
    lag_bytes: int | None
    sequence_values_arrived: bool

    @property
    def ready(self) -> bool:
        return (
            self.subscribed and self.enabled and self.worker_running and self.slot_exists
            and not self.tables_not_ready
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "tables_not_ready": list(self.tables_not_ready),
                "ready": self.ready}  # fmt: skip


def statuses(facts: ReplicationFacts) -> list[DatabaseStatus]:
    """One status per connectable database of the source."""
    found = []
    for database in facts.source_databases:
        name = subscription_name(database.name)
        target = facts.target_databases.get(database.name)
        slot = facts.slots.get(name)
        found.append(DatabaseStatus(
            database=database.name, subscription=name,
            subscribed=target is not None and target.subscription_enabled is not None,
            enabled=bool(target and target.subscription_enabled),
            worker_running=bool(target and target.worker_running),
            tables_not_ready=target.tables_not_ready if target is not None else (),
            slot_exists=slot is not None, slot_active=bool(slot and slot.active),
            confirmed_lsn=slot.confirmed_lsn if slot is not None else None,
            lag_bytes=slot.lag_bytes if slot is not None else None,
            sequence_values_arrived=bool(target and target.sequence_rows),
        ))  # fmt: skip
    return found


def describe(status: DatabaseStatus) -> str:
    """One line for the terminal."""
    if not status.subscribed:
        return f"{status.database}: not subscribed (run rhizomectl upgrade prepare)"
    parts = [
        "enabled" if status.enabled else "DISABLED",
        "streaming" if status.worker_running else "apply worker NOT running",
        f"{len(status.tables_not_ready)} tables not ready" if status.tables_not_ready
        else "all tables ready",
    ]  # fmt: skip
    if not status.slot_exists:
        parts.append(f"slot {status.subscription} MISSING on the source")
    elif status.lag_bytes is not None:
        parts.append(f"lag {status.lag_bytes} bytes")
    parts.append("sequence values arrived" if status.sequence_values_arrived
                 else "no sequence values yet")  # fmt: skip
    return f"{status.database} ({status.subscription}): " + ", ".join(parts)
