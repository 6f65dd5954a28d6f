"""Whether postgresql.conf and pg_hba.conf differ from the wanted ones, without redoing work.

The keeper asks on every pass. Rendering is pure, so the last rendering is
kept for as long as the spec and the request stay equal. The files are read
and compared again only when they may have changed: when the rendering did,
or when the status of a file (inode, size, modification and change times) or
the presence of standby.signal did. As git does for its index, a file modified
within the last RACY_SECONDS is always read again: a change made within the
file system's timestamp granularity of the previous check keeps its times.
The TLS files are watched the same way: the rendering carries their digest
(keeper/tls.py), so it is made again when their status changes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from rhizome.keeper.conffiles import (
    PG_HBA_CONF,
    POSTGRESQL_CONF,
    STANDBY_SIGNAL,
    ConfigRequest,
    RenderedConfiguration,
    configuration_differs,
    render_configuration,
)
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.tls import files_digest, key_problem
from rhizome.spec import ClusterSpec

RACY_SECONDS = 2.0
"""A file modified this recently may change again without its times changing."""

FileStatus = tuple[int, int, int, int] | None
"""inode, size, modification and change time (ns); None when the file is missing."""


@dataclass(frozen=True)
class Rendering:
    spec: ClusterSpec
    request: ConfigRequest
    tls_files: tuple[FileStatus, ...]
    rendered: RenderedConfiguration


@dataclass(frozen=True)
class Comparison:
    rendering: Rendering
    files: tuple[FileStatus, ...]
    differs: bool


def file_status(path: str) -> FileStatus:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


def settled(files: tuple[FileStatus, ...], now_ns: int) -> bool:
    """No file was modified within RACY_SECONDS of `now_ns` (wall clock)."""
    newest = max((status[3] for status in files if status is not None), default=0)
    return now_ns - newest >= RACY_SECONDS * 1e9


def same(first: ClusterSpec, second: ClusterSpec) -> bool:
    return first is second or first == second


class ConfigurationCheck:
    """`differs(spec, request)`, remembering the last rendering and comparison;
    `tls_problem`: why PostgreSQL could not start with the TLS key as it is."""

    def __init__(self, keeper: KeeperConfig, now_ns: Callable[[], int] = time.time_ns) -> None:
        self.keeper = keeper
        self.now_ns = now_ns
        self._paths = [
            str(keeper.data_dir / name) for name in (POSTGRESQL_CONF, PG_HBA_CONF, STANDBY_SIGNAL)
        ]
        self._tls_paths = [str(path) for path in keeper.tls.files] if keeper.tls else []
        self._rendering: Rendering | None = None
        self._comparison: Comparison | None = None
        self.tls_problem: str | None = None

    def differs(self, spec: ClusterSpec, request: ConfigRequest) -> bool:
        rendering = self._render(spec, request, tuple(map(file_status, self._tls_paths)))
        files = tuple(file_status(path) for path in self._paths)
        last = self._comparison
        if last is not None and last.rendering is rendering and last.files == files:
            return last.differs
        differs = configuration_differs(self.keeper.data_dir, rendering.rendered, request.standby)
        if settled(files, self.now_ns()):
            self._comparison = Comparison(rendering, files, differs)
        return differs

    def _render(
        self, spec: ClusterSpec, request: ConfigRequest, tls_files: tuple[FileStatus, ...]
    ) -> Rendering:
        last = self._rendering
        if (
            last is not None and last.request == request and same(last.spec, spec)
            and last.tls_files == tls_files
        ):  # fmt: skip
            return last
        tls = self.keeper.tls
        rendered = render_configuration(self.keeper, spec, request, files_digest(tls))
        rendering = Rendering(spec, request, tls_files, rendered)
        self.tls_problem = key_problem(tls)
        # TLS files still being written are digested again on the next pass.
        self._rendering = rendering if settled(tls_files, self.now_ns()) else None
        return rendering
