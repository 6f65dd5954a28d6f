"""What the upgrade pre-checks look at: plain data gathered by catalog.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Method = Literal["logical", "link"]
METHODS: tuple[Method, ...] = ("logical", "link")


@dataclass(frozen=True)
class DatabaseFacts:
    """One database of the master, as its catalogs describe it."""

    name: str
    size_bytes: int
    tables_without_identity: tuple[str, ...] = ()
    """Schema-qualified tables logical replication cannot carry UPDATEs and DELETEs of:
    no primary key under the default replica identity, or replica identity NOTHING."""
    unlogged_tables: tuple[str, ...] = ()
    large_objects: int = 0
    extensions: tuple[tuple[str, str], ...] = ()
    """(name, installed version) of every extension but plpgsql."""


@dataclass(frozen=True)
class ClusterHealth:
    """What the store says about the cluster (None where it could not be read)."""

    paused: bool = False
    master: str | None = None
    operation: str | None = None
    """The kind of an operation under way (failover, switchover), or None."""
    unhealthy_keepers: tuple[str, ...] = ()
    """Assigned keepers that are missing or report PostgreSQL unhealthy."""


@dataclass(frozen=True)
class UpgradeFacts:
    source_version: int
    """The master's major version (server_version_num // 10000)."""
    target_version: int
    method: Method
    databases: tuple[DatabaseFacts, ...]
    health: ClusterHealth
    target_extensions: frozenset[str] | None = None
    """Extensions the target version's packages provide (None: the target is not installed)."""
    free_bytes: int | None = None
    """Free space where the new data directory goes (None: unknown)."""
    notes: tuple[str, ...] = field(default_factory=tuple)
