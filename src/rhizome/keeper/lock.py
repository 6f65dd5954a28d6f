"""The exclusive lock a keeper holds on its data directory.

The lock file lies next to the data directory (so removing or re-cloning the
data directory never drops the lock) and holds the owner's PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class DataDirectoryLocked(RuntimeError):
    """Another keeper owns the data directory."""


class DataDirectoryLock:
    """An fcntl lock held for the life of the process (or until `release()`)."""

    def __init__(self, path: Path, data_dir: Path) -> None:
        self.path = path
        self.data_dir = data_dir
        self._descriptor: int | None = None

    def acquire(self) -> None:
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(descriptor, 32).decode(errors="replace").strip() or "unknown"
            os.close(descriptor)
            raise DataDirectoryLocked(
                f"data directory {self.data_dir} is in use by another keeper (pid {owner},"
                f" lock {self.path}); stop that keeper or give this one another data_dir"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._descriptor, 0)
            os.close(self._descriptor)
            self._descriptor = None
