"""Hand-written SVG: elements with escaped text, linear scales, axes with round ticks, legends.

Every function returns text; coordinates are written with one decimal, so the same input
gives the same output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH = 900
CHARACTER_WIDTH = 6.5
"""A generous width of one character at font-size 11, to decide whether a label fits."""
GRID_COLOUR = "#e5e5e5"
AXIS_COLOUR = "#333333"


@dataclass(frozen=True)
class Scale:
    """Maps values in [low, high] onto pixels from `start` to `end` (end < start going up)."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def number(value: float) -> str:
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def text(x: float, y: float, content: str, anchor: str = "start", attributes: str = "") -> str:
    return (
        f'<text x="{number(x)}" y="{number(y)}" text-anchor="{anchor}"{attributes}>'
        f"{escape(content)}</text>"
    )


def line(x1: float, y1: float, x2: float, y2: float, colour: str, attributes: str = "") -> str:
    return (
        f'<line x1="{number(x1)}" y1="{number(y1)}" x2="{number(x2)}" y2="{number(y2)}" '
        f'stroke="{colour}"{attributes}/>'
    )


def rectangle(
    x: float, y: float, width: float, height: float, fill: str, attributes: str = ""
) -> str:
    return (
        f'<rect x="{number(x)}" y="{number(y)}" width="{number(width)}" '
        f'height="{number(height)}" fill="{fill}"{attributes}/>'
    )


def document(height: float, body: Iterable[str], title: str) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{number(height)}" '
            f'viewBox="0 0 {WIDTH} {number(height)}" font-family="sans-serif" font-size="11">',
            f"<title>{escape(title)}</title>",
            rectangle(0, 0, WIDTH, height, "white"),
            text(WIDTH / 2, 22, title, "middle", ' font-size="14"'),
            *body,
            "</svg>",
            "",
        ]
    )


def tick_step(span: float, wanted: int = 6) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `wanted` ticks over `span`."""
    raw = span / wanted if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5):
        if multiple * power >= raw:
            return multiple * power
    return 10 * power


def tick_values(low: float, high: float) -> tuple[list[float], float]:
    step = tick_step(high - low)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    return [round(index * step, 9) for index in range(first, last + 1)], step


def tick_label(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def nice_ceiling(value: float) -> float:
    """The first round tick at or above `value` (1 for nothing to show)."""
    if value <= 0:
        return 1.0
    step = tick_step(value)
    return step * math.ceil(value / step - 1e-9)


def x_axis(scale: Scale, top: float, bottom: float, label: str) -> list[str]:
    values, step = tick_values(scale.low, scale.high)
    parts = ['<g class="x-axis">']
    for value in values:
        x = scale(value)
        parts += [
            line(x, top, x, bottom, GRID_COLOUR),
            line(x, bottom, x, bottom + 4, AXIS_COLOUR),
            text(x, bottom + 16, tick_label(value, step), "middle"),
        ]
    parts += [
        line(scale.start, bottom, scale.end, bottom, AXIS_COLOUR),
        text((scale.start + scale.end) / 2, bottom + 32, label, "middle"),
        "</g>",
    ]
    return parts


def y_axis(scale: Scale, left: float, right: float, label: str) -> list[str]:
    values, step = tick_values(scale.low, scale.high)
    parts = ['<g class="y-axis">']
    for value in values:
        y = scale(value)
        parts += [
            line(left, y, right, y, GRID_COLOUR),
            line(left - 4, y, left, y, AXIS_COLOUR),
            text(left - 7, y + 4, tick_label(value, step), "end"),
        ]
    middle = (scale.start + scale.end) / 2
    parts += [
        line(left, scale.start, left, scale.end, AXIS_COLOUR),
        text(14, middle, label, "middle", f' transform="rotate(-90 14 {number(middle)})"'),
        "</g>",
    ]
    return parts


Swatch = Callable[[float, float], str]
"""Draws a legend's sample centred on (x, y)."""


def legend(items: Sequence[tuple[Swatch, str]], x: float, y: float) -> list[str]:
    parts = ['<g class="legend">']
    for swatch, label in items:
        parts += [swatch(x + 6, y - 4), text(x + 16, y, label)]
        x += 16 + len(label) * CHARACTER_WIDTH + 18
    return [*parts, "</g>"]
