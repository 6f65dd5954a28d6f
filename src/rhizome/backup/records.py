"""From a backup attempt to its store record, and where to take it from (pure).

`rhizomectl backup run` asks pgBackRest for a backup from a standby whenever a
standby streams from the master (pgBackRest then copies the files from the
standby and asks the master only for the start and stop of the backup), and
from the master otherwise, so that a backup is still taken when the cluster
runs without standbys. pgBackRest finds which configured node is the primary
by itself. After the run, `pgbackrest info` names the backup it made; its
label, sizes and WAL positions go into the record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rhizome.backup.pgbackrest import Outcome
from rhizome.keeper.timelines import parse_lsn
from rhizome.store.backups import BackupRecord, BackupType
from rhizome.store.view import ClusterView

CLOCK_SLACK = 5.0
"""Seconds a backup's own start time may precede the command's (pgBackRest's clock)."""


def streaming_standbys(view: ClusterView) -> list[str]:
    """Keepers assigned standby that run, are healthy and stream from the master now."""
    state = view.state.document if view.state is not None else None
    if state is None or state.master is None or state.master not in view.keepers:
        return []
    streaming = set(view.keepers[state.master].document.streaming_standbys)
    found = []
    for name, stored in sorted(view.keepers.items()):
        info = stored.document
        assignment = state.assignment_of(name)
        if assignment is None or assignment.role != "standby":
            continue
        if info.running and info.healthy and info.role == "standby" and name in streaming:
            found.append(name)
    return found


def parse_info(text: str, stanza: str) -> dict[str, Any] | None:
    """The stanza's entry of `pgbackrest info --output=json`; None when absent or garbled."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, list):
        return None
    for entry in data:
        if isinstance(entry, dict) and entry.get("name") == stanza:
            return entry
    return None


def newest_backup(stanza_info: dict[str, Any] | None, since: float) -> dict[str, Any] | None:
    """The newest backup started at or after `since` (minus the slack), of any type:
    pgBackRest turns a diff or incr without a prior full backup into a full one."""
    backups = stanza_info.get("backup", []) if stanza_info else []
    for backup in reversed(backups if isinstance(backups, list) else []):
        if not isinstance(backup, dict):
            continue
        started = _number(backup.get("timestamp", {}), "start")
        if started is not None and started >= since - CLOCK_SLACK:
            return backup
    return None


@dataclass(frozen=True)
class Attempt:
    """What `backup run` asked for and where."""

    backup_type: BackupType
    stanza: str
    node: str
    from_standby: bool


def backup_record(attempt: Attempt, outcome: Outcome, made: dict[str, Any] | None) -> BackupRecord:
    """The store record of one attempt; a run that reports success but no backup failed."""
    ok = outcome.ok and made is not None
    error = outcome.error
    if outcome.ok and made is None:
        error = "pgbackrest reported success but `pgbackrest info` lists no new backup"
    info = made.get("info", {}) if made else {}
    lsn = made.get("lsn", {}) if made else {}
    made_type = made.get("type") if made else None
    return BackupRecord(
        type=made_type if made_type in ("full", "diff", "incr") else attempt.backup_type,
        ok=ok,
        started_at=outcome.started_at,
        finished_at=max(outcome.finished_at, outcome.started_at),
        node=attempt.node,
        stanza=attempt.stanza,
        from_standby=attempt.from_standby,
        label=made.get("label") if made else None,
        size_bytes=_number(info, "size"),
        repository_bytes=_number(info.get("repository", {}), "delta"),
        start_lsn=_lsn(lsn, "start"),
        stop_lsn=_lsn(lsn, "stop"),
        error=None if ok else (error or "unknown failure"),
    )


def _number(data: object, key: str) -> int | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _lsn(data: object, key: str) -> int | None:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return parse_lsn(value)
    except ValueError:
        return None
