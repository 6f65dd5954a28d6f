"""The parameter catalogue of an installed PostgreSQL, from `postgres --describe-config`.

`--describe-config` needs no server, no data directory and no credentials (and
runs as root), and it matches the installed version exactly. It names every
parameter with its type, context and range, but not its unit nor its enum
values: those are left to the scratch check (`rhizome.pgconfig.scratch`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from rhizome.pgconfig.rules import Setting, VarType, accepted_form, value_problem
from rhizome.spec.postgres import ParameterValue
from rhizome.store.validation import FieldProblem

DESCRIBE_TIMEOUT = 20.0
VARTYPES: dict[str, VarType] = {
    "BOOLEAN": "bool", "INTEGER": "integer", "REAL": "real", "ENUM": "enum", "STRING": "string",
}  # fmt: skip

Catalogue = Mapping[str, Setting]


class CatalogueUnavailable(RuntimeError):
    """The installed PostgreSQL could not describe its parameters."""


def parse_describe_config(text: str) -> dict[str, Setting]:
    """The settings in `postgres --describe-config` output (tab-separated lines)."""
    catalogue: dict[str, Setting] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 7 or fields[3] not in VARTYPES:
            continue
        name, context, _group, vartype, _default, minimum, maximum = fields[:7]
        catalogue[name] = Setting(
            name=name,
            vartype=VARTYPES[vartype],
            minimum=_bound(minimum),
            maximum=_bound(maximum),
            context=context,
        )
    return catalogue


def _bound(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def describe_config(postgres: str) -> dict[str, Setting]:
    """Run `postgres --describe-config`; CatalogueUnavailable when it cannot."""
    try:
        completed = subprocess.run(
            [postgres, "--describe-config"],
            capture_output=True, text=True, timeout=DESCRIBE_TIMEOUT, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CatalogueUnavailable(f"cannot run {postgres} --describe-config: {error}") from error
    catalogue = parse_describe_config(completed.stdout)
    if completed.returncode != 0 or not catalogue:
        reason = completed.stderr.strip() or f"exit code {completed.returncode}"
        raise CatalogueUnavailable(f"{postgres} --describe-config failed: {reason}")
    return catalogue


def catalogue_problems(
    catalogue: Catalogue, parameters: Mapping[str, ParameterValue], version: str
) -> list[FieldProblem]:
    """Each unknown parameter and each value its rules refuse, named pg_parameters.NAME."""
    problems = []
    for name, value in sorted(parameters.items()):
        setting = catalogue.get(name)
        if setting is None:
            if "." not in name:  # NAME.PART is an extension's, unknown until it loads
                fix = "correct its spelling, or remove it"
                problem = f"is not a parameter of PostgreSQL {version}"
                problems.append(FieldProblem(f"pg_parameters.{name}", problem, fix))
            continue
        reason = value_problem(setting, value)
        if reason is not None:
            problems.append(value_field_problem(setting, reason))
    return problems


def value_field_problem(setting: Setting, reason: str) -> FieldProblem:
    return FieldProblem(f"pg_parameters.{setting.name}", reason, f"give {accepted_form(setting)}")
