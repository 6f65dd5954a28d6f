"""PostgreSQL's own log (its stderr) in the state directory, and its last lines.

The keeper starts the postmaster with stdout and stderr appended to
<state_dir>/postgresql.log, so that a failed start can be reported with
PostgreSQL's own reason (the lines it logged during that start), and so that
the log outlives the keeper process. The file is kept under ROTATE_SIZE by
copy-and-truncate (the postmaster appends, so it writes on at the new end):
its previous part is postgresql.log.1. With logging_collector on,
PostgreSQL writes its log where log_directory says and this file keeps only
what it logs before the collector starts (exactly what a failed start logs).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

from rhizome.keeper.config import KeeperConfig

LOG_NAME = "postgresql.log"
ROTATE_SIZE = 16 * 1024 * 1024
REASON_LINES = 5
REASON_LEVELS = ("FATAL:", "PANIC:", "ERROR:", "LOG:", "HINT:", "DETAIL:")
READ_LIMIT = 64 * 1024


def log_path(keeper: KeeperConfig) -> Path:
    return keeper.state_dir / LOG_NAME


def open_for_start(keeper: KeeperConfig) -> tuple[BinaryIO, int]:
    """The log opened for appending (the postmaster's stdout and stderr), and its size now."""
    rotate_if_large(keeper)
    file = open(log_path(keeper), "ab")  # noqa: SIM115 - handed to the postmaster, closed by the caller
    return file, file.tell()


def rotate_if_large(keeper: KeeperConfig) -> None:
    """Past ROTATE_SIZE, copy the log to postgresql.log.1 and empty it (copy-and-truncate:
    a running postmaster keeps its descriptor). Lines written during the copy may be lost."""
    path = log_path(keeper)
    try:
        if path.stat().st_size <= ROTATE_SIZE:
            return
        shutil.copyfile(path, path.with_name(LOG_NAME + ".1"))
        os.truncate(path, 0)
    except OSError:
        pass


def start_reason(text: str) -> str:
    """PostgreSQL's reason in the lines it logged while starting: its last messages."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    messages = [_message(line) for line in lines if any(level in line for level in REASON_LEVELS)]
    chosen = messages or lines
    return " | ".join(chosen[-REASON_LINES:]) if chosen else "PostgreSQL logged nothing"


def _message(line: str) -> str:
    """The line from its level on (the timestamp and PID prefix dropped)."""
    for level in REASON_LEVELS:
        index = line.find(level)
        if index >= 0:
            return line[index:]
    return line


def logged_since(keeper: KeeperConfig, offset: int) -> str:
    """What PostgreSQL logged after `offset` (the last READ_LIMIT bytes of it)."""
    try:
        with open(log_path(keeper), "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(offset, size - READ_LIMIT) if size >= offset else 0)
            return file.read().decode("utf-8", errors="replace")
    except OSError as error:
        return f"(cannot read {log_path(keeper)}: {error.strerror})"
