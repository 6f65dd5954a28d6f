"""The key layout of one cluster in etcd (DESIGN §1)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from rhizome.store.errors import StoreError

DEFAULT_ROOT = "/rhizome"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class KeyKind(Enum):
    """What a key under the cluster prefix holds."""

    SPEC = "spec"
    STATE = "state"
    LEADER = "sentinel-leader"
    KEEPER = "keepers"
    SENTINEL = "sentinels"
    PROXY = "proxies"
    COMMAND = "commands"
    BACKUPS = "backups"


SINGLE_KEYS = (KeyKind.SPEC, KeyKind.STATE, KeyKind.LEADER)
MEMBER_NOUNS = {
    KeyKind.KEEPER: "keeper",
    KeyKind.SENTINEL: "sentinel",
    KeyKind.PROXY: "proxy",
    KeyKind.COMMAND: "command",
    KeyKind.BACKUPS: "backup record",
}


def check_name(what: str, name: str) -> str:
    """Cluster, keeper, sentinel, proxy and command names: [a-z0-9][a-z0-9_-]*, ≤ 63."""
    if not NAME_PATTERN.match(name):
        raise StoreError(
            f"{what} name {name!r} is invalid: use 1 to 63 lowercase letters, digits,"
            " '-' or '_', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class ClusterKeys:
    """Builds and parses the keys of one cluster: /rhizome/<cluster>/..."""

    cluster: str
    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        check_name("cluster", self.cluster)
        if not self.root.startswith("/") or self.root.endswith("/"):
            raise StoreError(f"store root {self.root!r} must start with '/' and not end with '/'")

    @property
    def prefix(self) -> str:
        return f"{self.root}/{self.cluster}/"

    def single(self, kind: KeyKind) -> str:
        """The key of the spec, the state or the leader key."""
        assert kind in SINGLE_KEYS, kind
        return self.prefix + kind.value

    def member(self, kind: KeyKind, name: str) -> str:
        """The key of one keeper, sentinel, proxy or command."""
        assert kind not in SINGLE_KEYS, kind
        return self.member_prefix(kind) + check_name(MEMBER_NOUNS[kind], name)

    def member_prefix(self, kind: KeyKind) -> str:
        return f"{self.prefix}{kind.value}/"

    def parse(self, key: str) -> tuple[KeyKind, str] | None:
        """(kind, member name or '') for a key of this cluster; None for anything else."""
        if not key.startswith(self.prefix):
            return None
        relative = key[len(self.prefix) :]
        kind_text, _, name = relative.partition("/")
        try:
            kind = KeyKind(kind_text)
        except ValueError:
            return None
        if (kind in SINGLE_KEYS) != (name == ""):
            return None
        return kind, name
