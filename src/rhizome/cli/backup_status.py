"""The last backup in `rhizomectl status`: what, when, how it went (pure, but for the read).

A failed backup must be visible where operators look first, with its age: a
cluster whose backups stopped working a week ago looks healthy otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rhizome.cli.formatting import format_bytes, format_duration
from rhizome.store.backups import BackupRecord
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.errors import StoreDocumentError


@dataclass(frozen=True)
class LastBackup:
    """The record of `backups/last`, or why it cannot be read."""

    record: BackupRecord | None = None
    problem: str | None = None


def read_last_backup(store: ClusterStore) -> LastBackup:
    """The stored record; a corrupt one is reported, not fatal (status must still show)."""
    try:
        stored = store.read_last_backup()
    except StoreDocumentError as error:
        return LastBackup(problem=str(error))
    return LastBackup(record=stored.document if stored is not None else None)


def backup_line(last: LastBackup, enabled: bool, now: float) -> tuple[str, str] | None:
    """The status header's `last backup` line; None when backups were never in use."""
    record = last.record
    if last.problem is not None:
        return ("last backup", f"unreadable: {last.problem}")
    if record is None:
        return ("last backup", "none yet: run `rhizomectl backup run`") if enabled else None
    age = f"{format_duration(now - record.finished_at)} ago"
    source = "a standby" if record.from_standby else "the master"
    if not record.ok:
        took = format_duration(record.duration)
        return ("last backup", f"FAILED {age} ({record.type}, after {took}): {record.error}")
    size = format_bytes(record.size_bytes)
    text = f"ok, {age}: {record.label} ({record.type}) from {source}, "
    return ("last backup", text + f"{format_duration(record.duration)}, {size}")


def backup_report(last: LastBackup, now: float) -> dict[str, Any] | None:
    """`status --json`'s last_backup: the record plus its age and duration."""
    if last.problem is not None:
        return {"problem": last.problem}
    if last.record is None:
        return None
    return {
        **last.record.model_dump(mode="json"),
        "age_seconds": round(now - last.record.finished_at, 3),
        "duration_seconds": round(last.record.duration, 3),
    }
