"""What the store needs from an etcd client: `EtcdClient` (v3) and `EtcdV2Client` (v2) both
provide it, so `ClusterStore`, leases and probes work on either API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from rhizome.etcd.client import KeyValue, Lease, RangeResult
from rhizome.etcd.stats import RequestStats
from rhizome.etcd.transport import EtcdSettings
from rhizome.etcd.watch import WatchUpdate


class Watcher(Protocol):
    next_revision: int | None

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...

    def updates(self) -> Iterator[WatchUpdate]: ...


class CountsRequests(Protocol):
    stats: RequestStats


class StoreClient(Protocol):
    settings: EtcdSettings
    api: str
    """"v3" or "v2": etcd's API the client speaks."""

    @property
    def transport(self) -> CountsRequests: ...

    multi_key_compare: bool
    """A write can be conditional on other keys atomically (v3 transactions); without it
    `put_if_unchanged` checks `also_unchanged` just before writing (v2)."""

    def close(self) -> None: ...

    def get(self, key: str) -> KeyValue | None: ...

    def get_prefix(self, prefix: str) -> RangeResult: ...

    def revision(self, key: str, deadline: float | None = None) -> int: ...

    def put(self, key: str, value: bytes, lease: int = 0) -> int: ...

    def delete(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def put_if_unchanged(
        self,
        key: str,
        value: bytes,
        mod_revision: int,
        lease: int = 0,
        also_unchanged: Mapping[str, int] | None = None,
    ) -> int | None: ...

    def delete_if_unchanged(self, key: str, mod_revision: int) -> bool: ...

    def grant_lease(self, ttl: int, deadline: float | None = None) -> Lease: ...

    def keepalive(self, lease_id: int, deadline: float | None = None) -> int: ...

    def revoke_lease(self, lease_id: int) -> None: ...

    def watcher(
        self, prefix: str, idle_timeout: float = 5.0, start_revision: int | None = None
    ) -> Watcher: ...
