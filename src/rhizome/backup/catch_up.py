"""Which WAL files of earlier timelines a new master pushes to the archive (pure).

With archive_mode = on a standby marks every segment it receives by streaming
as archived (archive_status/*.done) without archiving it, and keeps doing so
after its promotion: the complete segments of the old timeline that the old
master had not archived yet (its archive_command failing or behind) would be
missing from the archive for good, and with them every point in time after
them. The new master's keeper therefore pushes what it still holds of the
earlier timelines: every complete segment of a timeline in its history that
ends before the point where that timeline ended, and the history files of
earlier timelines (fetched by streaming, marked done too). pgBackRest accepts
a file already archived with the same checksum, so pushing one that the old
master did archive changes nothing. The current timeline's own history file
and the last, partial segment of the old timeline (`.partial`) are archived
by PostgreSQL itself at the promotion.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Set

from rhizome.keeper.timelines import TimelineSwitch

SEGMENT_NAME = re.compile(r"[0-9A-F]{24}")
HISTORY_NAME = re.compile(r"[0-9A-F]{8}\.history")
SEGMENTS_PER_LOG_ID = 0x1_0000_0000


def segment_start(name: str, segment_size: int) -> int:
    """The WAL position where segment file `name` starts."""
    log_id, segment = int(name[8:16], 16), int(name[16:24], 16)
    return log_id * SEGMENTS_PER_LOG_ID + segment * segment_size


def files_to_push(
    names: Iterable[str],
    timeline: int,
    history: tuple[TimelineSwitch, ...],
    segment_size: int,
    pushed: Set[str] = frozenset(),
) -> list[str]:
    """The files of pg_wal (`names`) to push, history files first, then segments in order.

    `timeline` is the master's current timeline and `history` its history (the
    entries of its timeline's history file); `pushed` are those already pushed.
    A segment of a timeline that is not in the history (diverged WAL) is never
    pushed: it could replace nothing that belongs in the archive.
    """
    ends = {switch.timeline: switch.switchpoint for switch in history}
    histories: list[str] = []
    segments: list[str] = []
    for name in names:
        if name in pushed:
            continue
        if HISTORY_NAME.fullmatch(name) and int(name[:8], 16) < timeline:
            histories.append(name)
        elif SEGMENT_NAME.fullmatch(name):
            end = ends.get(int(name[:8], 16))
            if end is not None and segment_start(name, segment_size) + segment_size <= end:
                segments.append(name)
    return sorted(histories) + sorted(segments)
