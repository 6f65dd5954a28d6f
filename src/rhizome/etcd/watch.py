"""Watches on a key prefix that never lose an event.

`PrefixWatcher.updates()` yields `WatchUpdate`s in revision order. It starts
with a full read of the prefix (a snapshot), then streams changes from the
revision after it. It re-watches from ``next_revision`` whenever the stream
ends, and reads everything again when etcd has compacted the revisions it
would need. A stream that stays silent for ``idle_timeout`` is checked with a
cheap request bounded by the request timeout (each member asked gets half of
what is left): a frozen member is noticed, passed over, and the watch is
opened again on a member that answered. Members set up by roles/etcd send a
progress notification every 2 s (etcd_watch_progress_notify_interval), so a
quiet prefix does not make a healthy stream look silent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rhizome import clock
from rhizome.etcd.client import EtcdClient, KeyValue, RangeResult, parse_key_value, prefix_range
from rhizome.etcd.endpoints import EndpointFailed
from rhizome.etcd.errors import EtcdRequestError, EtcdUnavailable
from rhizome.etcd.stream import Stream

log = logging.getLogger(__name__)


class EventKind(Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True)
class WatchEvent:
    kind: EventKind
    item: KeyValue


@dataclass(frozen=True)
class WatchUpdate:
    """Changes up to `revision`; with `snapshot` set, the snapshot replaces all that was known."""

    revision: int
    events: tuple[WatchEvent, ...] = ()
    snapshot: RangeResult | None = None


class StreamEnded(Exception):
    """The watch stream stopped; re-watch from next_revision."""


class Compacted(Exception):
    """The revisions the watch needs were compacted away."""


class PrefixWatcher:
    """Watches every key under a prefix; one consumer, `close()` from any thread."""

    def __init__(
        self,
        client: EtcdClient,
        prefix: str,
        idle_timeout: float = 5.0,
        start_revision: int | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.idle_timeout = idle_timeout
        self.next_revision = start_revision
        self._closed = threading.Event()
        self._response: Stream | None = None

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
                yield self._snapshot()
                continue
            try:
                yield from self._stream()
            except Compacted:
                log.info("watch on %s: revisions compacted, reading everything", self.prefix)
                self.next_revision = None
            except StreamEnded as reason:
                log.debug("watch on %s ended: %s", self.prefix, reason)
                if not self._closed.is_set():
                    self._probe()

    def _probe(self) -> None:
        """Raise EtcdUnavailable unless a member answers within the request timeout."""
        deadline = clock.monotonic() + self.client.settings.request_timeout
        self.client.revision(self.prefix, deadline=deadline)

    def _snapshot(self) -> WatchUpdate:
        snapshot = self.client.get_prefix(self.prefix)
        self.next_revision = snapshot.revision + 1
        return WatchUpdate(revision=snapshot.revision, snapshot=snapshot)

    def _stream(self) -> Iterator[WatchUpdate]:
        request = {
            "create_request": {
                **prefix_range(self.prefix),
                "start_revision": str(self.next_revision),
                "progress_notify": True,
            }
        }
        response = self.client.transport.open_stream("/watch", request, self.idle_timeout)
        self._response = response
        try:
            if self._closed.is_set():
                return
            for line in response:
                update = self._parse(line)
                if update is not None:
                    yield update
            raise StreamEnded("etcd closed the stream")
        except EndpointFailed as error:  # idle timeout, reset or shutdown
            raise StreamEnded(str(error)) from error
        finally:
            self._response = None
            response.close()

    def _parse(self, line: bytes) -> WatchUpdate | None:
        try:
            message = json.loads(line)
        except ValueError as error:
            raise StreamEnded(f"etcd sent a line that is not JSON: {line[:80]!r}") from error
        if "error" in message:
            raise EtcdRequestError(f"etcd watch on {self.prefix!r} failed: {message['error']}")
        result = message.get("result", {})
        if int(result.get("compact_revision", 0)) > 0:
            raise Compacted()
        if result.get("canceled"):
            reason = result.get("cancel_reason", "no reason given")
            raise EtcdUnavailable(f"etcd canceled the watch on {self.prefix!r}: {reason}")
        revision = int(result.get("header", {}).get("revision", 0))
        events = tuple(parse_event(event) for event in result.get("events", []))
        if events:
            self.next_revision = events[-1].item.mod_revision + 1
            return WatchUpdate(revision=revision, events=events)
        if not result.get("created") and revision >= (self.next_revision or 0):
            self.next_revision = revision + 1  # progress notification: all seen up to here
        return None


def parse_event(event: dict[str, Any]) -> WatchEvent:
    kind = EventKind.DELETE if event.get("type") == "DELETE" else EventKind.PUT
    return WatchEvent(kind=kind, item=parse_key_value(event["kv"]))
