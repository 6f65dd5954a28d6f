"""Counters of the proxy, and its samples per port."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from rhizome.api.exposition import Sample

PORT_NAMES = {False: "read_write", True: "read_only"}


@dataclass
class PortCounters:
    """Totals of one listening port since the proxy started."""

    accepted: int = 0
    forwarded: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Refused connections by reason: hold_timeout, connect_failed, limit, tls_required."""
    closed_by_retarget: int = 0
    invalid_clients: int = 0
    connect_errors: int = 0
    bytes_from_clients: int = 0
    """Bytes of sessions already closed (live sessions are added at scrape time)."""
    bytes_from_servers: int = 0


@dataclass
class StoreCounters:
    """What the store follower saw (written by its threads, read by the loop)."""

    watch_errors: int = 0
    lease_errors: int = 0
    publish_errors: int = 0
    lease_grants: int = 0
    renewals: int = 0


def per_port(
    name: str, kind: str, help_text: str, values: Mapping[bool, float], **labels: str
) -> Sample:
    rows = tuple(
        ({"port": PORT_NAMES[read_only], **labels}, value) for read_only, value in values.items()
    )
    return Sample(name, kind, help_text, rows)
