"""The outcome of the last backup, in `backups/last` (written by `rhizomectl backup run`).

One kind of writer: the `rhizomectl backup run` command (a systemd timer runs
it on a database node), with a plain put after each attempt, successful or
not; nothing else writes the key and no agent decides anything from it (it is
for operators: `rhizomectl status`, alerts). It lives outside the lease of any
agent, so a dead node's last backup stays visible. An older agent's view
ignores the whole `backups/` prefix, so adding it changes nothing for them.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, Strict, StrictBool, model_validator

from rhizome.store.codec import StoreDocument
from rhizome.store.fields import HostAddress, Lsn, Text, UnixTime
from rhizome.store.validation import FieldProblem, raise_problems

LAST_BACKUP = "last"
"""The member name of the last attempt's record under backups/."""

BackupType = Literal["full", "diff", "incr"]
SizeBytes = Annotated[int, Strict(), Field(ge=0)]


class BackupRecord(StoreDocument):
    """One backup attempt and its outcome (no secret: pgBackRest's error text is masked)."""

    type: BackupType
    """The type asked for: full, diff (since the last full) or incr (since the last backup)."""
    ok: StrictBool
    """Whether pgBackRest finished the backup."""
    started_at: UnixTime
    """When `pgbackrest backup` started (unix time, clock of the node that ran it)."""
    finished_at: UnixTime
    """When it ended, successfully or not."""
    node: HostAddress
    """The host that ran the command."""
    stanza: Text
    """The pgBackRest stanza."""
    from_standby: StrictBool = False
    """Asked with --backup-standby: files copied from a standby, not the master."""
    label: Text | None = None
    """pgBackRest's backup label (e.g. 20240101-120000F); None when it failed."""
    size_bytes: SizeBytes | None = None
    """The database size the backup covers (pgBackRest's info.size)."""
    repository_bytes: SizeBytes | None = None
    """What this backup added to the repository (info.repository.delta)."""
    start_lsn: Lsn | None = None
    """Where the backup starts in the WAL."""
    stop_lsn: Lsn | None = None
    """Where it is consistent (restores need the WAL up to here)."""
    error: Text | None = None
    """Failed: pgBackRest's error text, trimmed and with credentials masked."""

    @property
    def duration(self) -> float:
        return self.finished_at - self.started_at

    @model_validator(mode="after")
    def _outcome_is_coherent(self) -> Self:
        problems = []
        if self.finished_at < self.started_at:
            fix = "record when the backup ended, after it started"
            problems.append(FieldProblem("finished_at", "is before started_at", fix))
        if self.ok == (self.error is not None):
            fix = "give an error exactly when ok is false"
            problems.append(FieldProblem("error", "does not match ok", fix))
        raise_problems(problems)
        return self
