"""Prometheus text exposition (format 0.0.4), by hand: samples and their rendering."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str  # "counter" or "gauge"
    help: str
    values: tuple[tuple[Mapping[str, str], float], ...]


def sample(name: str, kind: str, help_text: str, value: float) -> Sample:
    return Sample(name, kind, help_text, (({}, value),))


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
