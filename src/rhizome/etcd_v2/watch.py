"""Watches of a key prefix on etcd's v2 API that never lose an event.

The same contract as `rhizome.etcd.PrefixWatcher`: a snapshot first, then
every change in index order. A v2 watch is one long poll per event
(`wait=true&recursive=true&waitIndex=N`); etcd answers at once from its
event history when an event at or after N is there, and with "index
cleared" once N fell out of that history (it keeps the last 1000 events):
then everything is read again. Refreshes of TTLs reach no watcher. A poll
that stays silent for ``idle_timeout`` is followed by a cheap read bounded
by the request timeout, so that a frozen member is noticed and passed over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import etcd

from rhizome import clock
from rhizome.etcd.watch import EventKind, WatchEvent, WatchUpdate
from rhizome.etcd_v2.client import EtcdV2Client, directory, key_value, v2_errors

log = logging.getLogger(__name__)

DELETIONS = ("delete", "expire", "compareAndDelete")
WATCH_ENDINGS = (etcd.EtcdEventIndexCleared, etcd.EtcdWatchTimedOut)


class V2PrefixWatcher:
    """Watches every key under a prefix (a directory); one consumer, `close()` from any thread."""

    def __init__(
        self,
        client: EtcdV2Client,
        prefix: str,
        idle_timeout: float = 5.0,
        start_revision: int | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.directory = directory(prefix)
        self.idle_timeout = idle_timeout
        self.next_revision = start_revision
        self._closed = threading.Event()
        self._response: Any = None

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop the watch; a blocked `updates()` returns promptly."""
        self._closed.set()
        response = self._response
        if response is not None:
            response.shutdown()

    def updates(self) -> Iterator[WatchUpdate]:
        """Yield updates until closed; raises EtcdUnavailable when no endpoint can serve.

        After an error, calling `updates()` again resumes from `next_revision`.
        """
        while not self._closed.is_set():
            if self.next_revision is None:
                snapshot = self.client.get_prefix(self.prefix)
                self.next_revision = snapshot.revision + 1
                yield WatchUpdate(revision=snapshot.revision, snapshot=snapshot)
                continue
            try:
                result = self._poll(self.next_revision)
            except etcd.EtcdEventIndexCleared:
                log.info("watch on %s: its index left etcd's history, reading everything",
                         self.prefix)  # fmt: skip
                self.next_revision = None
                continue
            except etcd.EtcdWatchTimedOut:
                if not self._closed.is_set():
                    deadline = clock.monotonic() + self.client.settings.request_timeout
                    self.client.revision(self.prefix, deadline=deadline)
                continue
            if result is not None:
                update = self._update(result)
                if update is not None:
                    yield update

    def _poll(self, index: int) -> Any:
        """The first change at or after `index` (None when closed meanwhile)."""
        transport = self.client.transport
        transport.on_open(self._opened)
        try:
            with v2_errors(passing=WATCH_ENDINGS):
                return transport.read(self.directory, wait=True, recursive=True,
                                      waitIndex=index, timeout=self.idle_timeout)  # fmt: skip
        except Exception:
            if self._closed.is_set():
                return None
            raise
        finally:
            transport.on_open(None)
            self._response = None

    def _opened(self, response: Any) -> None:
        self._response = response
        if self._closed.is_set():
            response.shutdown()

    def _update(self, result: Any) -> WatchUpdate | None:
        """The update for one v2 event; a directory's deletion means reading everything."""
        index = int(result.modifiedIndex)
        self.next_revision = index + 1
        if result.dir:
            self.next_revision = None
            return None
        kind = EventKind.DELETE if result.action in DELETIONS else EventKind.PUT
        return WatchUpdate(revision=index, events=(WatchEvent(kind, key_value(result)),))
