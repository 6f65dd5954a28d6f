"""Whether PostgreSQL accepts a parameter value: its own parsing rules, as a pure function.

The rules follow PostgreSQL's guc.c (parse_bool, parse_int, parse_real,
config_enum_lookup_by_name): booleans are on/off/true/false/yes/no/1/0 or an
unambiguous prefix, in any case; integers and reals may carry a unit when the
parameter has one (memory: B, kB, MB, GB, TB; time: us, ms, s, min, h, d;
case-sensitive, as PostgreSQL spells them) and must lie in the parameter's
range; enum values match in any case; strings take anything.

What a catalogue does not know (a unit, the enum values) is not checked here:
`Setting.unit` None with a unit in the value, or `enum_values` empty, pass.
The scratch check (`rhizome.pgconfig.scratch`) then asks PostgreSQL itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from rhizome.spec.postgres import ParameterValue

VarType = Literal["bool", "integer", "real", "enum", "string"]

MEMORY_UNITS: dict[str, int] = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
"""Bytes per memory unit."""
TIME_UNITS: dict[str, float] = {
    "us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0, "d": 86_400_000.0,
}  # fmt: skip
"""Milliseconds per time unit."""

BASE_UNIT_SIZES: dict[str, tuple[str, float]] = {
    "B": ("memory", 1), "kB": ("memory", 1024), "MB": ("memory", 1024**2),
    "8kB": ("memory", 8192), "16MB": ("memory", 16 * 1024**2),
    "us": ("time", 0.001), "ms": ("time", 1.0), "s": ("time", 1000.0), "min": ("time", 60_000.0),
}  # fmt: skip
"""pg_settings.unit values: the family and the size of one, in bytes or milliseconds."""

NUMBER_WITH_UNIT = re.compile(
    r"\s*(?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))"
    r"\s*(?P<unit>[A-Za-z]*)\s*"
)
BOOLEAN_WORDS = ("true", "false", "yes", "no")


@dataclass(frozen=True)
class Setting:
    """One parameter as PostgreSQL describes it (pg_settings or --describe-config)."""

    name: str
    vartype: VarType
    unit: str | None = None
    """pg_settings.unit (e.g. "8kB", "ms"); None when the parameter has none or it is unknown."""
    unit_known: bool = False
    """Whether `unit` is known (pg_settings); --describe-config does not say."""
    minimum: float | None = None
    maximum: float | None = None
    enum_values: tuple[str, ...] = ()
    context: str | None = None


def setting_text(value: ParameterValue) -> str:
    """The value as the keeper writes it into postgresql.conf, unquoted."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def parse_bool(text: str) -> bool | None:
    """PostgreSQL's parse_bool: the value, or None when it is not a boolean."""
    lowered = text.lower()
    if not lowered:
        return None
    if lowered in ("1", "0"):
        return lowered == "1"
    if lowered[0] == "o":
        if len(lowered) < 2:
            return None
        return True if "on".startswith(lowered) else False if "off".startswith(lowered) else None
    for word in BOOLEAN_WORDS:
        if word.startswith(lowered):
            return word in ("true", "yes")
    return None


def accepted_form(setting: Setting) -> str:
    """What the parameter accepts, in the operator's words."""
    if setting.vartype == "bool":
        return "a boolean: on, off, true, false, yes, no, 1 or 0"
    if setting.vartype == "enum":
        if setting.enum_values:
            return f"one of {', '.join(setting.enum_values)}"
        return "one of the values PostgreSQL lists for it"
    if setting.vartype == "string":
        return "a string"
    kind = "an integer" if setting.vartype == "integer" else "a number"
    return f"{kind}{_range_text(setting)}{_unit_text(setting)}"


def _range_text(setting: Setting) -> str:
    if setting.minimum is None or setting.maximum is None:
        return ""
    if setting.unit_known:
        base = f" (in units of {setting.unit})" if setting.unit else ""
    else:
        base = " in its base unit"
    return f" from {_number(setting.minimum)} to {_number(setting.maximum)}{base}"


def _unit_text(setting: Setting) -> str:
    family = _family(setting)
    if family == "memory":
        return ", optionally with a unit: B, kB, MB, GB or TB"
    if family == "time":
        return ", optionally with a unit: us, ms, s, min, h or d"
    if setting.unit_known:
        return ", without a unit"
    return " (a memory or time parameter also takes a unit, such as 64MB or 5s)"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _family(setting: Setting) -> str | None:
    if not setting.unit_known or setting.unit is None:
        return None
    known = BASE_UNIT_SIZES.get(setting.unit)
    return known[0] if known else None


def value_problem(setting: Setting, value: ParameterValue) -> str | None:
    """Why PostgreSQL would refuse `value` for `setting`; None when it accepts it."""
    text = setting_text(value)
    if setting.vartype == "string":
        return None
    if setting.vartype == "bool":
        return None if parse_bool(text) is not None else f"{text!r} is not a boolean"
    if setting.vartype == "enum":
        allowed = {name.lower() for name in setting.enum_values}
        if not allowed or text.lower() in allowed:
            return None
        return f"{text!r} is not one of its values"
    return _numeric_problem(setting, text)


def _numeric_problem(setting: Setting, text: str) -> str | None:
    match = NUMBER_WITH_UNIT.fullmatch(text)
    if match is None:
        kind = "an integer" if setting.vartype == "integer" else "a number"
        return f"{text!r} is not {kind}"
    number = _to_number(match.group("number"))
    if number is None or not math.isfinite(number):
        return f"{text!r} is not a finite number"
    unit = match.group("unit")
    if unit:
        return _unit_problem(setting, text, number, unit)
    return _range_problem(setting, text, number)


def _to_number(text: str) -> float | None:
    try:
        return float(int(text, 16)) if text.lower().lstrip("+-").startswith("0x") else float(text)
    except ValueError:
        return None


def _unit_problem(setting: Setting, text: str, number: float, unit: str) -> str | None:
    if unit not in MEMORY_UNITS and unit not in TIME_UNITS:
        return f"{text!r} has an unknown unit {unit!r}"
    if not setting.unit_known:
        return None  # the unit of the parameter is not known here: PostgreSQL decides
    family = _family(setting)
    if family is None:
        return f"{text!r} has a unit, but this parameter takes none"
    units: dict[str, float] = {**MEMORY_UNITS} if family == "memory" else {**TIME_UNITS}
    if unit not in units:
        return f"{text!r} has a {'time' if family == 'memory' else 'memory'} unit"
    assert setting.unit is not None
    base = number * units[unit] / BASE_UNIT_SIZES[setting.unit][1]
    return _range_problem(setting, text, round(base) if setting.vartype == "integer" else base)


def _range_problem(setting: Setting, text: str, number: float) -> str | None:
    if setting.vartype == "integer" and not setting.unit_known and not number.is_integer():
        number = round(number)
    low, high = setting.minimum, setting.maximum
    if (low is not None and number < low) or (high is not None and number > high):
        return f"{text!r} is out of range"
    return None
