"""The keeper's catch-up of the archive after a promotion (a thread of its own).

rhizome.backup.catch_up decides which files of earlier timelines the master
pushes; this thread lists pg_wal and runs `pgbackrest archive-push` for each,
off the reconcile loop (a push takes a few hundred milliseconds, a backlog
seconds). The loop offers it the current situation after every pass. A failed
push is retried every RETRY_INTERVAL seconds and reported as the keeper's
last_error meanwhile: never silently skipped. A file PostgreSQL removed before
it could be pushed is a gap in the archive; it is reported until the keeper
restarts (take a full backup: restores from older backups cannot pass it).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from rhizome.backup import pgbackrest
from rhizome.backup.archiving import ArchiveTarget
from rhizome.backup.catch_up import SEGMENT_NAME, files_to_push
from rhizome.keeper.conffiles import keeper_archiving
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.observe import SqlObservation
from rhizome.keeper.timelines import TimelineSwitch, history_file_name, parse_history
from rhizome.spec import ClusterSpec

log = logging.getLogger(__name__)

RETRY_INTERVAL = 5.0
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class CatchUpRequest:
    """A running primary on `timeline` that archives to `target`."""

    target: ArchiveTarget
    timeline: int


def catch_up_request(
    keeper: KeeperConfig, spec: ClusterSpec, sql: SqlObservation | None
) -> CatchUpRequest | None:
    """What to offer the thread: a running primary that archives, else None."""
    target = keeper_archiving(keeper, spec).settings
    if target is None or sql is None or sql.role != "primary" or sql.timeline is None:
        return None
    return CatchUpRequest(target, sql.timeline)


def joined_problems(*problems: str | None) -> str | None:
    """Several sources of last_error as one text (None when none has a problem)."""
    return "; ".join(problem for problem in problems if problem) or None


class ArchiveCatchUp:
    """Pushes the earlier timelines' WAL a new master holds; remembers what it pushed."""

    def __init__(self, data_dir: Path, stopping: threading.Event) -> None:
        self.pg_wal = data_dir / "pg_wal"
        self.stopping = stopping
        self.wanted = threading.Event()
        self.lock = threading.Lock()
        self.request: CatchUpRequest | None = None
        self.pushed: set[str] = set()
        self.lost: set[str] = set()
        self.failure: str | None = None

    @property
    def problem(self) -> str | None:
        """What to report as last_error: a failing push, or a gap; None when caught up."""
        parts = [self.failure] if self.failure else []
        if self.lost:
            parts.append(
                f"the archive has a gap: PostgreSQL removed {', '.join(sorted(self.lost))} of "
                "an earlier timeline before it could be archived; take a full backup"
            )
        return "; ".join(parts) or None

    def offer(self, request: CatchUpRequest | None) -> None:
        """From the loop after each pass: a running primary's situation, or None."""
        with self.lock:
            self.request = request
        if request is None:
            self.failure = None
        else:
            self.wanted.set()

    def start(self) -> None:
        threading.Thread(target=self._run, name="archive-catch-up", daemon=True).start()

    def _run(self) -> None:
        """Sleeps until a pass offers a request (a daemon thread: it ends with the keeper)."""
        while not self.stopping.is_set():
            self.wanted.wait()
            self.wanted.clear()
            with self.lock:
                request = self.request
            if request is not None and not self.catch_up(request):
                self.stopping.wait(RETRY_INTERVAL)

    def catch_up(self, request: CatchUpRequest) -> bool:
        """One round: push what is due; False when a push failed (retry later)."""
        try:
            names = os.listdir(self.pg_wal)
        except OSError as error:
            self.failure = f"cannot list {self.pg_wal} to archive earlier timelines: {error}"
            return False
        history = self._history(request.timeline)
        if history is None:
            return False
        due = files_to_push(
            names, request.timeline, history, self._segment_size(names), self.pushed
        )
        for name in due:
            if self.stopping.is_set() or not self._push(request.target, name):
                return self.stopping.is_set()
        self.failure = None
        return True

    def _push(self, target: ArchiveTarget, name: str) -> bool:
        path = self.pg_wal / name
        outcome = pgbackrest.archive_push(target.options(), path)
        if outcome.ok:
            log.info("archived %s of an earlier timeline (catch-up after a promotion)", name)
            self.pushed.add(name)
            return True
        if not path.exists():
            log.error("WAL file %s was removed before it could be archived: a gap", name)
            self.lost.add(name)
            self.pushed.add(name)
            return True
        self.failure = (
            f"cannot archive {name} of an earlier timeline (retried every "
            f"{RETRY_INTERVAL:.0f} s): {outcome.error}"
        )
        log.error("%s", self.failure)
        return False

    def _history(self, timeline: int) -> tuple[TimelineSwitch, ...] | None:
        """The current timeline's history (None, reported, when unreadable)."""
        if timeline <= 1:
            return ()
        try:
            text = (self.pg_wal / history_file_name(timeline)).read_text(encoding="ascii")
            return parse_history(text)
        except (OSError, ValueError) as error:
            self.failure = f"cannot read the history of timeline {timeline}: {error}"
            return None

    def _segment_size(self, names: list[str]) -> int:
        """The size of a complete segment file (every one has it), else the default."""
        for name in names:
            if SEGMENT_NAME.fullmatch(name):
                try:
                    return (self.pg_wal / name).stat().st_size or DEFAULT_SEGMENT_SIZE
                except OSError:
                    continue
        return DEFAULT_SEGMENT_SIZE
