"""Check pg_parameters values before they are stored (rhizomectl and rhizome.pg.cluster_spec).

Against which PostgreSQL: the major versions the keepers report
(KeeperInfo.postgres_version), else every version installed on this host.
With what: the installed binaries of that version, found at
/usr/lib/postgresql/MAJOR/bin/postgres (Debian's layout; $RHIZOME_PG_BIN_DIR
overrides it) — first the catalogue of `postgres --describe-config` checked by
the pure rules (`rhizome.pgconfig.rules`), then PostgreSQL's own verdict on
a scratch file (`rhizome.pgconfig.scratch`). Neither needs a running server
or credentials, so the check works wherever the agents are installed, the
cluster running or not. When no binaries of the version are installed here,
the check says so (`ValueCheck.unchecked`) and the caller warns; the keepers
still never write a file their PostgreSQL refuses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rhizome.pgconfig.catalogue import (
    Catalogue,
    CatalogueUnavailable,
    catalogue_problems,
    describe_config,
)
from rhizome.pgconfig.rules import accepted_form
from rhizome.pgconfig.scratch import UNATTRIBUTED, CheckUnavailable, postgres_verdict
from rhizome.spec import ClusterSpec, SpecError
from rhizome.spec.postgres import ParameterValue
from rhizome.store.documents import KeeperInfo
from rhizome.store.validation import FieldProblem

INSTALL_ROOT = Path("/usr/lib/postgresql")
BIN_DIR_ENVIRONMENT = "RHIZOME_PG_BIN_DIR"
MAJOR_DIRECTORY = re.compile(r"\d+")

Parameters = Mapping[str, ParameterValue]


@dataclass(frozen=True)
class ValueCheck:
    """What the check found: problems, the versions checked against, what it could not check."""

    problems: tuple[FieldProblem, ...] = ()
    checked: tuple[str, ...] = ()
    """Each `postgres` program checked against."""
    unchecked: tuple[str, ...] = field(default=())
    """Why some or all values could not be checked."""


def changed_parameters(before: ClusterSpec | None, after: ClusterSpec) -> dict[str, ParameterValue]:
    """The pg_parameters the new spec adds or changes (removals need no check)."""
    old = before.pg_parameters if before is not None else {}
    return {
        name: value
        for name, value in after.pg_parameters.items()
        if name not in old or old[name] != value or type(old[name]) is not type(value)
    }


def cluster_majors(keepers: Iterable[KeeperInfo]) -> list[int]:
    """The PostgreSQL major versions the keepers report (e.g. 150018 → 15)."""
    versions = {info.postgres_version // 10000 for info in keepers if info.postgres_version}
    return sorted(versions)


def installed_majors(root: Path = INSTALL_ROOT) -> list[int]:
    try:
        names = [entry.name for entry in root.iterdir()]
    except OSError:
        return []
    return sorted(int(name) for name in names if MAJOR_DIRECTORY.fullmatch(name))


def postgres_program(major: int, environment: Mapping[str, str] = os.environ) -> Path:
    bin_dir = environment.get(BIN_DIR_ENVIRONMENT)
    if bin_dir:
        return Path(bin_dir) / "postgres"
    return INSTALL_ROOT / str(major) / "bin" / "postgres"


def check_values(parameters: Parameters, keepers: Iterable[KeeperInfo]) -> ValueCheck:
    """Check `parameters` against every PostgreSQL version the cluster runs."""
    if not parameters:
        return ValueCheck()
    majors = cluster_majors(keepers) or installed_majors()
    if not majors:
        reason = "no keeper has reported its PostgreSQL version and none is installed here"
        return ValueCheck(unchecked=(reason,))
    problems: dict[str, FieldProblem] = {}
    checked, unchecked = [], []
    for major in majors:
        program = postgres_program(major)
        if not program.exists():
            unchecked.append(f"PostgreSQL {major} is not installed here (no {program})")
            continue
        try:
            found = check_with_program(str(program), str(major), parameters)
        except (CatalogueUnavailable, CheckUnavailable) as error:
            unchecked.append(str(error))
            continue
        checked.append(str(program))
        for problem in found:
            problems.setdefault(problem.path, problem)
    return ValueCheck(tuple(problems.values()), tuple(checked), tuple(unchecked))


def check_with_program(
    postgres: str,
    version: str,
    parameters: Parameters,
    describe: Callable[[str], Catalogue] = describe_config,
    verdict: Callable[[str, Parameters], dict[str, str]] = postgres_verdict,
) -> list[FieldProblem]:
    """The catalogue's rules first, then PostgreSQL's verdict on what they let through."""
    catalogue = describe(postgres)
    problems = catalogue_problems(catalogue, parameters, version)
    refused = {problem.path.removeprefix("pg_parameters.") for problem in problems}
    rest = {name: value for name, value in parameters.items() if name not in refused}
    if not rest:
        return problems
    for name, message in sorted(verdict(postgres, rest).items()):
        setting = catalogue.get(name)
        form = f"give {accepted_form(setting)}" if setting else "give a value PostgreSQL accepts"
        path = f"pg_parameters.{name}" if name != UNATTRIBUTED else "pg_parameters"
        problems.append(FieldProblem(path, f"PostgreSQL {version} refuses it: {message}", form))
    return problems


def raise_value_problems(check: ValueCheck) -> None:
    """SpecError naming each refused value (nothing is written)."""
    if check.problems:
        raise SpecError([problem.render() for problem in check.problems])
