"""Leases on etcd's v2 API, which has none: pure encodings and bookkeeping.

A v2 lease is a *marker* key with a TTL under the lease directory, created
in order (its name, etcd's index of the creation, is the lease's id); its
value records the TTL and the keys stored on the lease. A key stored on a
lease gets the same TTL and is refreshed right after the marker at every
keepalive, so it expires no earlier than the marker. Its value carries the
lease's id on a first line (`LEASED_PREFIX`), so that readers see which lease
a key is on, as v3 tells them.

A refresh keeps a key's value but gives it a new modifiedIndex (and tells no
watcher). `RefreshChains` remembers, per key, the indexes that only our own
refreshes made, so that a compare-and-swap against the index a caller last
saw still succeeds when nothing but our refreshes happened since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

LEASED_PREFIX = "rhizome-lease:"


def leased_value(value: str, lease_id: int) -> str:
    """The stored form of `value` on lease `lease_id`."""
    return f"{LEASED_PREFIX}{lease_id}\n{value}"


def split_leased(stored: str) -> tuple[str, int]:
    """(value, lease id) of a stored value; lease 0 when it is on no lease."""
    if stored.startswith(LEASED_PREFIX):
        first_line, newline, value = stored.partition("\n")
        digits = first_line[len(LEASED_PREFIX) :]
        if newline and digits.isdigit():
            return value, int(digits)
    return stored, 0


@dataclass(frozen=True)
class LeaseRecord:
    """What a lease marker holds: the TTL and the keys stored on the lease."""

    ttl: int
    keys: tuple[str, ...] = ()

    def encode(self) -> str:
        return json.dumps({"ttl": self.ttl, "keys": list(self.keys)}, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> LeaseRecord | None:
        """The record, or None when the marker holds something else (not ours, or damaged)."""
        try:
            decoded = json.loads(text)
            ttl, keys = decoded["ttl"], decoded["keys"]
        except (ValueError, TypeError, KeyError):
            return None
        if not isinstance(ttl, int) or ttl <= 0 or not isinstance(keys, list):
            return None
        if not all(isinstance(key, str) for key in keys):
            return None
        return cls(ttl=ttl, keys=tuple(keys))

    def with_key(self, key: str) -> LeaseRecord:
        return self if key in self.keys else LeaseRecord(self.ttl, (*self.keys, key))

    def without(self, gone: set[str]) -> LeaseRecord:
        return LeaseRecord(self.ttl, tuple(key for key in self.keys if key not in gone))


class RefreshChains:
    """Per key, the span of indexes that stand for one value because only our refreshes
    followed it.

    Each refresh compares on the index before it (prevIndex), so between the first
    index of a chain and its last the key changed only by our refreshes: every index
    a reader can have seen the key at in that span is one of ours. The span is kept
    however long the chain grows. A watcher never sees a refresh, so a view may hold
    the index of the write for as long as the value lives (the leader key of a
    sentinel that has led for days): a bounded list of indexes forgot it after a
    minute, and every compare against it failed from then on.
    """

    def __init__(self) -> None:
        self._chains: dict[str, tuple[int, int]] = {}

    def written(self, key: str, index: int) -> None:
        """We wrote a new value at `index`."""
        self._chains[key] = (index, index)

    def refreshed(self, key: str, previous_index: int, index: int) -> None:
        """We refreshed the key from `previous_index` to `index`."""
        chain = self._chains.get(key)
        if chain is None or chain[1] != previous_index:
            chain = (previous_index, previous_index)  # somebody else wrote in between
        self._chains[key] = (chain[0], index)

    def forget(self, key: str) -> None:
        self._chains.pop(key, None)

    def latest(self, key: str) -> int | None:
        """The key's index after our last write or refresh of it (None: not known)."""
        chain = self._chains.get(key)
        return chain[1] if chain is not None else None

    def current(self, key: str, index: int) -> int:
        """The index to compare against when a caller expects `index`."""
        chain = self._chains.get(key)
        return chain[1] if chain is not None and chain[0] <= index <= chain[1] else index

    def same(self, key: str, expected: int, actual: int) -> bool:
        """A key seen at `actual` still holds what the caller saw at `expected`."""
        return actual == self.current(key, expected)
