"""Counters of the proxy and their Prometheus text rendering (format 0.0.4, by hand)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PORT_NAMES = {False: "read_write", True: "read_only"}


@dataclass
class PortCounters:
    """Totals of one listening port since the proxy started."""

    accepted: int = 0
    forwarded: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Refused connections by reason: hold_timeout, connect_failed, limit."""
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


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # "counter" or "gauge"
    help: str
    values: tuple[tuple[Mapping[str, str], float], ...]


def sample(name: str, kind: str, help_text: str, value: float) -> Sample:
    return Sample(name, kind, help_text, (({}, value),))


def per_port(
    name: str, kind: str, help_text: str, values: Mapping[bool, float], **labels: str
) -> Sample:
    rows = tuple(
        ({"port": PORT_NAMES[read_only], **labels}, value) for read_only, value in values.items()
    )
    return Sample(name, kind, help_text, rows)


def render(samples: Iterable[Sample]) -> str:
    """The Prometheus text exposition of `samples`."""
    lines: list[str] = []
    for item in samples:
        lines.append(f"# HELP {item.name} {item.help}")
        lines.append(f"# TYPE {item.name} {item.kind}")
        for labels, value in item.values:
            lines.append(f"{item.name}{render_labels(labels)} {render_value(value)}")
    return "\n".join(lines) + "\n"


def render_labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{escape(value)}"' for name, value in sorted(labels.items()))
    return "{" + inner + "}"


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))
