"""A thin etcd v3 client on the JSON gateway: key-value, compare-and-swap, leases.

Keys are text, values bytes. Every call has explicit timeouts (see
`EtcdSettings`) and raises `EtcdUnavailable` when no endpoint answers. The
calls a safety deadline waits on (lease grant and keepalive, the revision
probe of a watch) also take a `deadline` (rhizome.clock.monotonic() time) by
which they answer or fail, whatever the members do.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rhizome.etcd.errors import EtcdLeaseExpired, EtcdRequestError
from rhizome.etcd.keepalive import KEEPALIVE_PATH, KeepaliveChannel
from rhizome.etcd.transport import EtcdSettings, EtcdTransport, JsonObject

if TYPE_CHECKING:
    from rhizome.etcd.watch import PrefixWatcher

LEASE_NOT_FOUND = "requested lease not found"


@dataclass(frozen=True)
class KeyValue:
    """One key as etcd stores it; a deleted key (in a watch) has an empty value."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


@dataclass(frozen=True)
class RangeResult:
    """The keys read and the store revision they were read at."""

    revision: int
    items: tuple[KeyValue, ...]


@dataclass(frozen=True)
class Lease:
    id: int
    ttl: int


class EtcdClient:
    """Key-value, transaction and lease calls against one etcd cluster."""

    api = "v3"
    multi_key_compare = True

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        self.transport = EtcdTransport(settings)
        self.keepalive_channel = KeepaliveChannel(self.transport)

    def close(self) -> None:
        self.keepalive_channel.close()
        self.transport.close()

    def watcher(
        self, prefix: str, idle_timeout: float = 5.0, start_revision: int | None = None
    ) -> PrefixWatcher:
        from rhizome.etcd.watch import PrefixWatcher  # it imports this module

        return PrefixWatcher(self, prefix, idle_timeout, start_revision)

    # -- reads -------------------------------------------------------------

    def get(self, key: str) -> KeyValue | None:
        result = self._range({"key": encode(key)})
        return result.items[0] if result.items else None

    def get_prefix(self, prefix: str) -> RangeResult:
        """Every key under `prefix`, read at one revision."""
        return self._range(prefix_range(prefix))

    def revision(self, key: str, deadline: float | None = None) -> int:
        """The store's current revision (a cheap round trip: counts one key).

        `key` must be one this client may read: with etcd authentication a
        range outside the user's permissions is refused.
        """
        request = {"key": encode(key), "count_only": True}
        return header_revision(self.transport.call("/kv/range", request, deadline))

    def _range(self, request: JsonObject) -> RangeResult:
        response = self.transport.call("/kv/range", request)
        items = tuple(parse_key_value(item) for item in response.get("kvs", []))
        return RangeResult(revision=header_revision(response), items=items)

    # -- writes ------------------------------------------------------------

    def put(self, key: str, value: bytes, lease: int = 0) -> int:
        """Write unconditionally; returns the revision of the write."""
        response = self.transport.call("/kv/put", put_request(key, value, lease))
        return header_revision(response)

    def delete(self, key: str) -> bool:
        """Delete one key; True when it existed."""
        response = self.transport.call("/kv/deleterange", {"key": encode(key)})
        return int(response.get("deleted", 0)) > 0

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix`; returns how many were deleted."""
        response = self.transport.call("/kv/deleterange", prefix_range(prefix))
        return int(response.get("deleted", 0))

    def put_if_unchanged(
        self,
        key: str,
        value: bytes,
        mod_revision: int,
        lease: int = 0,
        also_unchanged: Mapping[str, int] | None = None,
    ) -> int | None:
        """Compare-and-swap: write only if the key's mod_revision is still `mod_revision`.

        `mod_revision=0` means "only if the key does not exist". `also_unchanged`
        maps further keys to the mod_revision they must still have (a leader
        writes only while its leader key is the one it created). Returns the new
        mod_revision, or None when someone else changed a key first.
        """
        expected = {key: mod_revision, **(also_unchanged or {})}
        compares = [revision_compare(name, revision) for name, revision in expected.items()]
        return self._transaction(compares, {"request_put": put_request(key, value, lease)})

    def delete_if_unchanged(self, key: str, mod_revision: int) -> bool:
        """Delete only if the key's mod_revision is still `mod_revision`."""
        compare = revision_compare(key, mod_revision)
        deleted = self._transaction([compare], {"request_delete_range": {"key": encode(key)}})
        return deleted is not None

    def _transaction(self, compares: list[JsonObject], operation: JsonObject) -> int | None:
        request = {"compare": compares, "success": [operation]}
        response = self.transport.call("/kv/txn", request)
        if not response.get("succeeded", False):
            return None
        return header_revision(response)

    # -- leases ------------------------------------------------------------

    def grant_lease(self, ttl: int, deadline: float | None = None) -> Lease:
        """A new lease of `ttl` whole seconds (etcd may round a small TTL up)."""
        response = self.transport.call("/lease/grant", {"TTL": ttl}, deadline)
        if response.get("error"):
            raise EtcdRequestError(f"etcd refused a lease of {ttl} s: {response['error']}")
        return Lease(id=int(response["ID"]), ttl=int(response["TTL"]))

    def keepalive(self, lease_id: int, deadline: float | None = None) -> int:
        """Renew a lease once; returns its new TTL or raises EtcdLeaseExpired."""
        renewed = self.keepalive_channel.renew(lease_id, deadline)
        if isinstance(renewed, int):
            return renewed
        payload = {"ID": str(lease_id)}
        response = self.transport.call(KEEPALIVE_PATH, payload, deadline, renewed, twice=True)
        ttl = int(response.get("result", {}).get("TTL", 0))
        if ttl <= 0:
            raise EtcdLeaseExpired(lease_id)
        return ttl

    def revoke_lease(self, lease_id: int) -> None:
        """Revoke a lease, deleting its keys; an already expired lease is fine."""
        try:
            self.transport.call("/lease/revoke", {"ID": str(lease_id)})
        except EtcdRequestError as error:
            if LEASE_NOT_FOUND not in str(error):
                raise


def encode(text: str) -> str:
    return encode_bytes(text.encode())


def encode_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def prefix_range(prefix: str) -> JsonObject:
    """The key and range_end that select every key starting with `prefix`."""
    start = prefix.encode()
    end = bytearray(start)
    while end and end[-1] == 0xFF:
        end.pop()
    if end:
        end[-1] += 1
    else:
        end = bytearray(b"\0")  # every key
    return {"key": encode_bytes(start), "range_end": encode_bytes(bytes(end))}


def put_request(key: str, value: bytes, lease: int) -> JsonObject:
    request: JsonObject = {"key": encode(key), "value": encode_bytes(value)}
    if lease:
        request["lease"] = str(lease)
    return request


def revision_compare(key: str, mod_revision: int) -> JsonObject:
    if mod_revision == 0:
        return {"target": "CREATE", "key": encode(key), "result": "EQUAL", "create_revision": "0"}
    return {
        "target": "MOD",
        "key": encode(key),
        "result": "EQUAL",
        "mod_revision": str(mod_revision),
    }


def header_revision(response: JsonObject) -> int:
    return int(response.get("header", {}).get("revision", 0))


def parse_key_value(item: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=base64.b64decode(item["key"]).decode("utf-8", "replace"),
        value=base64.b64decode(item.get("value", "")),
        create_revision=int(item.get("create_revision", 0)),
        mod_revision=int(item.get("mod_revision", 0)),
        version=int(item.get("version", 0)),
        lease=int(item.get("lease", 0)),
    )
