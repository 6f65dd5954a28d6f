"""ClusterView: every document of one cluster, decoded, as of one store revision.

Building a view is pure: it takes the raw keys (from one range read, or kept
up to date by a watch) and decodes them. A corrupt keeper, sentinel, proxy or
command document is left out and reported in `problems`, so one bad key never
blinds the sentinel to the rest; callers decide whether a problem in `spec` or
`state` stops them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, cast

from rhizome.etcd import KeyValue
from rhizome.spec import ClusterSpec
from rhizome.store.backups import LAST_BACKUP, BackupRecord
from rhizome.store.codec import DocumentType, StoreDocument, decode_document
from rhizome.store.documents import (
    ClusterState,
    Command,
    KeeperInfo,
    LeaderInfo,
    ProxyInfo,
    SentinelInfo,
)
from rhizome.store.errors import StoreDocumentError
from rhizome.store.keys import ClusterKeys, KeyKind

# The field of a member document that must repeat the last segment of its key.
NAME_FIELDS = {
    KeyKind.KEEPER: "name",
    KeyKind.SENTINEL: "id",
    KeyKind.PROXY: "id",
    KeyKind.COMMAND: "name",
}


@dataclass(frozen=True)
class Stored(Generic[DocumentType]):
    """A decoded document with the revisions needed for compare-and-swap."""

    document: DocumentType
    mod_revision: int
    lease: int = 0


@dataclass(frozen=True)
class ClusterView:
    """The whole cluster as read at `revision`."""

    revision: int
    spec: Stored[ClusterSpec] | None = None
    state: Stored[ClusterState] | None = None
    leader: Stored[LeaderInfo] | None = None
    keepers: dict[str, Stored[KeeperInfo]] = field(default_factory=dict)
    sentinels: dict[str, Stored[SentinelInfo]] = field(default_factory=dict)
    proxies: dict[str, Stored[ProxyInfo]] = field(default_factory=dict)
    commands: dict[str, Stored[Command]] = field(default_factory=dict)
    last_backup: Stored[BackupRecord] | None = None
    """The last backup attempt (`rhizomectl backup run`), for the sentinels' metrics."""
    problems: tuple[StoreDocumentError, ...] = ()


DECODED_DOCUMENTS_KEPT = 512
"""Decoded documents remembered by their key and bytes: a view is rebuilt on
every change of any key, and most keys have not changed since the last one."""


def decode_stored(item: KeyValue, document_type: type[DocumentType]) -> Stored[DocumentType]:
    """Decode one key's value (raises StoreDocumentError naming the key)."""
    document = cast(DocumentType, decode_remembered(item.key, item.value, document_type))
    return Stored(document=document, mod_revision=item.mod_revision, lease=item.lease)


@functools.lru_cache(maxsize=DECODED_DOCUMENTS_KEPT)
def decode_remembered(key: str, value: bytes, document_type: type[StoreDocument]) -> StoreDocument:
    """decode_document, remembered (documents are immutable; errors are not remembered)."""
    return decode_document(key, value, document_type)


def build_view(keys: ClusterKeys, revision: int, items: Iterable[KeyValue]) -> ClusterView:
    """Decode every key of the cluster; unknown keys are ignored, bad ones reported."""
    grouped: dict[KeyKind, dict[str, KeyValue]] = {kind: {} for kind in KeyKind}
    for item in items:
        parsed = keys.parse(item.key)
        if parsed is not None:
            kind, name = parsed
            grouped[kind][name] = item
    decoder = ViewDecoder(grouped)
    return ClusterView(
        revision=revision,
        spec=decoder.single(KeyKind.SPEC, ClusterSpec),
        state=decoder.single(KeyKind.STATE, ClusterState),
        leader=decoder.single(KeyKind.LEADER, LeaderInfo),
        keepers=decoder.members(KeyKind.KEEPER, KeeperInfo),
        sentinels=decoder.members(KeyKind.SENTINEL, SentinelInfo),
        proxies=decoder.members(KeyKind.PROXY, ProxyInfo),
        commands=decoder.members(KeyKind.COMMAND, Command),
        last_backup=decoder.single(KeyKind.BACKUPS, BackupRecord, LAST_BACKUP),
        problems=tuple(decoder.problems),
    )


class ViewDecoder:
    """Decodes grouped raw keys, collecting the problems instead of stopping."""

    def __init__(self, grouped: dict[KeyKind, dict[str, KeyValue]]) -> None:
        self.grouped = grouped
        self.problems: list[StoreDocumentError] = []

    def single(
        self, kind: KeyKind, document_type: type[DocumentType], name: str = ""
    ) -> Stored[DocumentType] | None:
        item = self.grouped[kind].get(name)
        if item is None:
            return None
        try:
            return decode_stored(item, document_type)
        except StoreDocumentError as problem:
            self.problems.append(problem)
            return None

    def members(
        self, kind: KeyKind, document_type: type[DocumentType]
    ) -> dict[str, Stored[DocumentType]]:
        decoded = {}
        for name, item in self.grouped[kind].items():
            try:
                stored = decode_stored(item, document_type)
                check_member_name(item.key, kind, name, stored.document)
            except StoreDocumentError as problem:
                self.problems.append(problem)
                continue
            decoded[name] = stored
        return decoded


def check_member_name(key: str, kind: KeyKind, name: str, document: StoreDocument) -> None:
    """A member document must carry the name its key gives it."""
    field_name = NAME_FIELDS[kind]
    inner = getattr(document, field_name)
    if inner != name:
        raise StoreDocumentError(
            key,
            f"field {field_name!r} is {inner!r} but the key names {name!r}; the document was"
            " copied under the wrong key: delete it and let its writer publish it again",
        )
