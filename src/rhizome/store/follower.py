"""StoreFollower: keeps a ClusterView current from a watch on the cluster prefix.

A background thread consumes the watch (snapshot, then events, with re-reads
after compaction) and keeps the raw keys; `wait_for_change()` wakes the owner
as soon as anything changes, and `view()` decodes the current keys (the same
view object until a key changes: etcd's progress notifications change none).
When etcd cannot be reached the thread retries with a short backoff and
`connected` is false until the watch works again.
"""

from __future__ import annotations

import logging
import threading

from rhizome import clock
from rhizome.etcd import EtcdError, EventKind, KeyValue, WatchUpdate
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.view import ClusterView, build_view

log = logging.getLogger(__name__)

RETRY_DELAY = 0.2


class StoreFollower:
    """The cluster's keys, kept up to date by a watch thread."""

    def __init__(self, store: ClusterStore, idle_timeout: float = 3.0) -> None:
        self.store = store
        self._watcher = store.watcher(idle_timeout=idle_timeout)
        self._items: dict[str, KeyValue] = {}
        self._revision = 0
        self._synchronized = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopped = threading.Event()
        self._connected = False
        self._version = 0
        """Counts changes to the keys: `view()` decodes them again only after one."""
        self._last_view: tuple[int, ClusterView] | None = None
        self._thread = threading.Thread(target=self._run, name="store-follower", daemon=True)

    def start(self) -> StoreFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._watcher.close()
        with self._changed:
            self._changed.notify_all()
        self._thread.join(timeout=5)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def synchronized(self) -> bool:
        """True once the first full read has arrived."""
        return self._synchronized

    def view(self) -> ClusterView:
        """The current keys, decoded (the same view again while nothing changed)."""
        with self._lock:
            if self._last_view is not None and self._last_view[0] == self._version:
                return self._last_view[1]
            items = list(self._items.values())
            revision, version = self._revision, self._version
        view = build_view(self.store.keys, revision, items)
        with self._lock:
            self._last_view = (version, view)
        return view

    def wait_for_change(self, after_revision: int, timeout: float) -> int:
        """Block until the revision passes `after_revision` or `timeout`; returns the revision."""
        deadline = clock.monotonic() + timeout
        with self._changed:
            while self._revision <= after_revision and not self._stopped.is_set():
                remaining = deadline - clock.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._revision

    def record_own_write(self, key: str, value: bytes, mod_revision: int, lease: int = 0) -> None:
        """Apply our own successful write at once, before its watch event arrives."""
        with self._changed:
            current = self._items.get(key)
            if current is not None and current.mod_revision >= mod_revision:
                return
            create_revision = current.create_revision if current else mod_revision
            version = current.version + 1 if current else 1
            self._items[key] = KeyValue(key, value, create_revision, mod_revision, version, lease)
            self._revision = max(self._revision, mod_revision)
            self._version += 1
            self._changed.notify_all()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                for update in self._watcher.updates():
                    self._connected = True
                    self._apply(update)
            except EtcdError as error:
                if self._connected:
                    log.warning("lost the watch on the store: %s", error)
                self._connected = False
                self._stopped.wait(RETRY_DELAY)
            except Exception:  # the watch must never die silently: its owner decides on it
                log.exception("unexpected error in the store watch; watching again")
                self._connected = False
                self._stopped.wait(RETRY_DELAY)

    def _apply(self, update: WatchUpdate) -> None:
        with self._changed:
            if update.snapshot is None and not update.events:
                self._revision = max(self._revision, update.revision)
                return  # a progress notification: the same keys, the same view, nobody woken
            if update.snapshot is not None:
                self._items = {item.key: item for item in update.snapshot.items}
                self._synchronized = True
            for event in update.events:
                current = self._items.get(event.item.key)
                if current is not None and current.mod_revision > event.item.mod_revision:
                    continue  # our own newer write was applied already
                if event.kind is EventKind.DELETE:
                    self._items.pop(event.item.key, None)
                else:
                    self._items[event.item.key] = event.item
            self._revision = max(self._revision, update.revision)
            self._version += 1
            self._changed.notify_all()
