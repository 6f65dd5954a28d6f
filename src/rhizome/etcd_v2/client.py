"""EtcdV2Client: the calls of `rhizome.etcd.EtcdClient`, on etcd's v2 API (python-etcd).

Revisions are v2 indexes: a key's `mod_revision` is its modifiedIndex,
`create_revision` its createdIndex, a read's `revision` the X-Etcd-Index.
Compare-and-swap is `prevIndex` (or `prevExist=false` for "only if absent"),
and reads are quorum reads. v2 has no transaction over two keys: a write
that also requires other keys unchanged (`also_unchanged`, the sentinel
leader's guard on state) reads them first; `ClusterStore` closes the rest
of that gap (see its `campaign`). Leases are marker keys (see `leases`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

import etcd

from rhizome.etcd.client import KeyValue, Lease, RangeResult
from rhizome.etcd.errors import (
    EtcdAuthError,
    EtcdConfigurationError,
    EtcdLeaseExpired,
    EtcdRequestError,
)
from rhizome.etcd.transport import EtcdSettings
from rhizome.etcd_v2.http import V2Http
from rhizome.etcd_v2.leases import LeaseRecord, RefreshChains, leased_value, split_leased

if TYPE_CHECKING:
    from rhizome.etcd_v2.watch import V2PrefixWatcher

COMPARE_FAILURES = (etcd.EtcdCompareFailed, etcd.EtcdAlreadyExist, etcd.EtcdKeyNotFound)
"""What a conditional write or refresh raises when its condition does not hold."""


class EtcdV2Client:
    """Key-value, compare-and-swap and lease calls on one etcd cluster's v2 API."""

    api = "v2"
    multi_key_compare = False
    """A write cannot be made conditional on another key atomically."""

    def __init__(self, settings: EtcdSettings, lease_directory: str) -> None:
        if not lease_directory.startswith("/") or lease_directory.endswith("/"):
            raise EtcdConfigurationError(f"lease directory {lease_directory!r} must be /a/path")
        self.settings = settings
        self.transport = V2Http(settings)
        self.lease_directory = lease_directory
        self.chains = RefreshChains()
        self._leases: dict[int, LeaseRecord] = {}

    def close(self) -> None:
        self.transport.close()

    def watcher(
        self, prefix: str, idle_timeout: float = 5.0, start_revision: int | None = None
    ) -> V2PrefixWatcher:
        from rhizome.etcd_v2.watch import V2PrefixWatcher  # it imports this module

        return V2PrefixWatcher(self, prefix, idle_timeout, start_revision)

    # -- reads -------------------------------------------------------------

    def get(self, key: str) -> KeyValue | None:
        with v2_errors():
            try:
                result = self.transport.read(key, quorum=True)
            except etcd.EtcdKeyNotFound:
                return None
        return None if result.dir else key_value(result)

    def get_prefix(self, prefix: str) -> RangeResult:
        """Every key under `prefix` (a directory: it ends with '/'), read at one index."""
        with v2_errors():
            try:
                result = self.transport.read(directory(prefix), recursive=True, quorum=True)
            except etcd.EtcdKeyNotFound as missing:
                return RangeResult(revision=error_index(missing), items=())
        items = sorted(
            (key_value(node) for node in result.leaves if not node.dir), key=lambda item: item.key
        )
        return RangeResult(revision=result.etcd_index, items=tuple(items))

    def revision(self, key: str, deadline: float | None = None) -> int:
        """The store's current index (a cheap round trip: reads one key, not through raft)."""
        with v2_errors(), self.transport.within(deadline):
            try:
                return int(self.transport.read(key).etcd_index)
            except etcd.EtcdKeyNotFound as missing:
                return error_index(missing)

    # -- writes ------------------------------------------------------------

    def put(self, key: str, value: bytes, lease: int = 0) -> int:
        """Write unconditionally; returns the key's new modifiedIndex."""
        return self._write(key, value, lease, {})

    def delete(self, key: str) -> bool:
        with v2_errors():
            try:
                self.transport.delete(key)
            except etcd.EtcdKeyNotFound:
                return False
        self.chains.forget(key)
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix` (a directory); returns how many there were."""
        count = len(self.get_prefix(prefix).items)
        with v2_errors():
            try:
                self.transport.delete(directory(prefix), recursive=True)
            except etcd.EtcdKeyNotFound:
                return 0
        return count

    def put_if_unchanged(
        self,
        key: str,
        value: bytes,
        mod_revision: int,
        lease: int = 0,
        also_unchanged: Mapping[str, int] | None = None,
    ) -> int | None:
        """Compare-and-swap on the key's modifiedIndex (0: only if absent); None when it
        changed, or when a key of `also_unchanged` changed before the write."""
        for other, expected in (also_unchanged or {}).items():
            current = self.get(other)
            if current is None or not self.chains.same(other, expected, current.mod_revision):
                return None
        if mod_revision == 0:
            condition: dict[str, Any] = {"prevExist": False}
        else:
            condition = {"prevIndex": self.chains.current(key, mod_revision)}
        try:
            return self._write(key, value, lease, condition)
        except COMPARE_FAILURES:
            return None

    def delete_if_unchanged(self, key: str, mod_revision: int) -> bool:
        with v2_errors():
            try:
                self.transport.delete(key, prevIndex=self.chains.current(key, mod_revision))
            except (etcd.EtcdCompareFailed, etcd.EtcdKeyNotFound):
                return False
        self.chains.forget(key)
        return True

    def _write(self, key: str, value: bytes, lease: int, condition: dict[str, Any]) -> int:
        """Write `value` (on `lease`, with its TTL); compare failures are raised as
        python-etcd's exceptions, everything else as ours. The key joins the lease's
        marker only once written: a failed create never puts another's key on our lease."""
        text = decode_value(key, value)
        ttl = None
        if lease:
            ttl = self._lease_record(lease).ttl
            text = leased_value(text, lease)
        with v2_errors(passing=COMPARE_FAILURES):
            result = self.transport.write(key, text, ttl=ttl, **condition)
        self.chains.written(key, result.modifiedIndex)
        if lease:
            self._attach(lease, key)
        return int(result.modifiedIndex)

    # -- leases ------------------------------------------------------------

    def grant_lease(self, ttl: int, deadline: float | None = None) -> Lease:
        """A new lease: a marker key with `ttl` whole seconds, named by etcd's index."""
        record = LeaseRecord(ttl=ttl)
        with v2_errors(), self.transport.within(deadline):
            result = self.transport.write(
                self.lease_directory, record.encode(), ttl=ttl, append=True
            )
        lease_id = int(result.createdIndex)
        self._leases[lease_id] = record
        return Lease(id=lease_id, ttl=ttl)

    def keepalive(self, lease_id: int, deadline: float | None = None) -> int:
        """Refresh the marker, then every key on the lease; raises EtcdLeaseExpired when the
        marker is gone. A key on the lease that is gone or was written since by somebody
        else is dropped from the lease, never refreshed."""
        with v2_errors(), self.transport.within(deadline):
            record = self._lease_record(lease_id)
            try:
                self.transport.refresh(self.marker(lease_id), record.ttl)
            except etcd.EtcdKeyNotFound as gone:
                self._leases.pop(lease_id, None)
                raise EtcdLeaseExpired(lease_id) from gone
            dropped = {key for key in record.keys if not self._refresh(key, lease_id, record.ttl)}
            if dropped:
                self._store_record(lease_id, record.without(dropped))
        return record.ttl

    def _refresh(self, key: str, lease_id: int, ttl: int) -> bool:
        """Refresh one key of the lease if it is still as we left it; False: it is not."""
        index = self.chains.latest(key)
        if index is None:  # a lease we adopted: the key must be on it
            current = self.get(key)
            if current is None or current.lease != lease_id:
                return False
            index = current.mod_revision
        try:
            result = self.transport.refresh(key, ttl, prevIndex=index)
        except COMPARE_FAILURES:
            self.chains.forget(key)
            return False
        self.chains.refreshed(key, index, result.modifiedIndex)
        return True

    def revoke_lease(self, lease_id: int) -> None:
        """Delete the keys still on the lease, then its marker; a lease gone already is fine."""
        with v2_errors():
            try:
                record = self._lease_record(lease_id)
            except EtcdLeaseExpired:
                return
            for key in record.keys:
                current = self.get(key)
                if current is not None and current.lease == lease_id:
                    self.delete_if_unchanged(key, current.mod_revision)
            with suppress(etcd.EtcdKeyNotFound):
                self.transport.delete(self.marker(lease_id))
        self._leases.pop(lease_id, None)

    def marker(self, lease_id: int) -> str:
        return f"{self.lease_directory}/{lease_id:020d}"

    def _lease_record(self, lease_id: int) -> LeaseRecord:
        """The lease's record: ours if we granted or used it, else read from its marker."""
        known = self._leases.get(lease_id)
        if known is not None:
            return known
        with v2_errors():
            try:
                result = self.transport.read(self.marker(lease_id), quorum=True)
            except etcd.EtcdKeyNotFound as gone:
                raise EtcdLeaseExpired(lease_id) from gone
        record = LeaseRecord.decode(result.value or "")
        if record is None:
            raise EtcdRequestError(f"lease marker {self.marker(lease_id)} holds no lease record")
        self._leases[lease_id] = record
        return record

    def _attach(self, lease_id: int, key: str) -> None:
        """Record `key` on the lease's marker (once); raises EtcdLeaseExpired when it is gone."""
        record = self._lease_record(lease_id)
        if key not in record.keys:
            with v2_errors():
                self._store_record(lease_id, record.with_key(key))

    def _store_record(self, lease_id: int, record: LeaseRecord) -> None:
        """Rewrite the marker's record (this also renews it); only while it exists."""
        try:
            self.transport.write(self.marker(lease_id), record.encode(), ttl=record.ttl,
                                 prevExist=True)  # fmt: skip
        except etcd.EtcdKeyNotFound as gone:
            self._leases.pop(lease_id, None)
            raise EtcdLeaseExpired(lease_id) from gone
        self._leases[lease_id] = record


def directory(prefix: str) -> str:
    if not prefix.endswith("/"):
        raise EtcdConfigurationError(f"the v2 API reads directories: {prefix!r} must end with '/'")
    return prefix.rstrip("/") or "/"


def decode_value(key: str, value: bytes) -> str:
    """v2 stores text: bytes that are not UTF-8 cannot be written."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EtcdRequestError(f"cannot write {key!r}: etcd's v2 API stores UTF-8 text") from error


def key_value(node: Any) -> KeyValue:
    value, lease = split_leased(node.value or "")
    return KeyValue(
        key=node.key, value=value.encode("utf-8"), create_revision=int(node.createdIndex or 0),
        mod_revision=int(node.modifiedIndex or 0), version=1, lease=lease,
    )  # fmt: skip


def error_index(error: etcd.EtcdException) -> int:
    """The X-Etcd-Index an error answer carries (its JSON `index`)."""
    payload = error.payload if isinstance(error.payload, dict) else {}
    return int(payload.get("index", 0))


@contextmanager
def v2_errors(passing: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Turn python-etcd's exceptions into rhizome's (EtcdUnavailable passes as it is)."""
    try:
        yield
    except passing:
        raise
    except etcd.EtcdInsufficientPermissions as error:
        raise EtcdAuthError(
            f"etcd refused the request ({error}); check the etcd user, its password and its"
            " v2 role (v2 users and roles are separate from v3's)"
        ) from error
    except etcd.EtcdException as error:
        raise EtcdRequestError(f"etcd (v2 API) refused the request: {error}") from error
