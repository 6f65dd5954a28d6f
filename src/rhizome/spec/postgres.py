"""PostgreSQL settings of the spec: server parameters and pg_hba entries.

Values end up in postgresql.conf and pg_hba.conf written by the keeper, so they
are checked here, before anything reaches the store: a parameter rhizome must
control to stay safe is refused, and nothing may break out of its line.
"""

import ipaddress
import math
import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, Strict, model_validator

from rhizome.store.codec import StoreModel
from rhizome.store.validation import FieldProblem, field_error, problems_error

ParameterValue = bool | int | float | str

PARAMETER_NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?")
HBA_NAME_PATTERN = re.compile(r"[A-Za-z0-9_$.+@-]+(,[A-Za-z0-9_$.+@-]+)*")
HBA_OPTION_PATTERN = re.compile(r"[a-z][a-z_]*")
HOST_NAME_PATTERN = re.compile(r"\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9-]+)*")
ADDRESS_KEYWORDS = frozenset({"all", "samehost", "samenet"})

_ADDRESS = "the keeper listens where it publishes it to proxies and standbys"
_FILES = "the keeper owns the data directory and the configuration files"
_INCLUDE = "an included file could override the parameters rhizome manages"
_UPSTREAM = "the keeper points each standby at the keeper the sentinel assigns"
_RECOVERY = "a standby must never end recovery or promote itself; only the sentinel promotes"

MANAGED_PARAMETERS: dict[str, str] = {
    "port": _ADDRESS,
    "listen_addresses": _ADDRESS,
    "data_directory": _FILES,
    "config_file": _FILES,
    "hba_file": _FILES,
    "ident_file": _FILES,
    "include": _INCLUDE,
    "include_dir": _INCLUDE,
    "include_if_exists": _INCLUDE,
    "primary_conninfo": _UPSTREAM,
    "primary_slot_name": _UPSTREAM,
    "promote_trigger_file": _RECOVERY,
    "recovery_target": _RECOVERY,
    "recovery_target_action": _RECOVERY,
    "recovery_target_inclusive": _RECOVERY,
    "recovery_target_lsn": _RECOVERY,
    "recovery_target_name": _RECOVERY,
    "recovery_target_time": _RECOVERY,
    "recovery_target_timeline": _RECOVERY,
    "recovery_target_xid": _RECOVERY,
    "synchronous_standby_names": "the sentinel changes it in two phases so that a confirmed "
    "synchronous standby always exists; use synchronous_replication",
    "hot_standby": "the read-only port relies on standbys that accept queries",
    "wal_log_hints": "pg_rewind needs it to rejoin a diverged old master; the keeper sets it",
}
"""Parameters the keeper controls, with the reason shown to the operator."""

ALLOWED_VALUES: dict[str, frozenset[str]] = {
    "wal_level": frozenset({"replica", "logical"}),
}
"""Parameters the operator may set, but only to values that keep replication working."""

HbaType = Literal["local", "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc"]
HbaMethod = Literal[
    "trust", "reject", "scram-sha-256", "md5", "password", "gss", "sspi",
    "ident", "peer", "ldap", "radius", "cert", "pam", "bsd",
]  # fmt: skip


def check_parameters(parameters: object) -> object:
    """Refuse managed, malformed or unrepresentable parameters, all at once."""
    if not isinstance(parameters, dict):
        return parameters  # pydantic reports the type
    problems: list[FieldProblem] = []
    for name, value in parameters.items():
        problems.extend(_parameter_problems(name, value))
    if problems:
        raise problems_error(problems)
    return parameters


def _parameter_problems(name: object, value: object) -> list[FieldProblem]:
    if not isinstance(name, str) or not PARAMETER_NAME_PATTERN.fullmatch(name):
        fix = "write it in lowercase" if isinstance(name, str) and name != name.lower() else ""
        fix = fix or "use a PostgreSQL parameter name such as work_mem or pg_stat_statements.max"
        return [FieldProblem(str(name), "is not a valid parameter name", fix)]
    if name in MANAGED_PARAMETERS:
        reason = MANAGED_PARAMETERS[name]
        return [FieldProblem(name, f"is managed by rhizome ({reason})", "remove it")]
    if not isinstance(value, ParameterValue):
        kind = type(value).__name__
        fix = "give a string, integer, number or boolean"
        return [FieldProblem(name, f"has a value of type {kind}", fix)]
    if isinstance(value, float) and not math.isfinite(value):
        return [FieldProblem(name, f"{value} is not a finite number", "give a finite number")]
    if isinstance(value, str) and (any(ord(char) < 32 for char in value) or len(value) > 4096):
        return [FieldProblem(name, "is too long or spans lines", "give a single-line value")]
    allowed = ALLOWED_VALUES.get(name)
    if allowed is not None and str(value) not in allowed:
        fix = f"use one of {', '.join(sorted(allowed))}"
        return [FieldProblem(name, f"{value!r} would stop replication", fix)]
    return []


PgParameters = Annotated[dict[str, ParameterValue], BeforeValidator(check_parameters)]


def check_hba_names(names: str) -> str:
    """A comma-separated list of database or role names (or keywords, +group, @file)."""
    if not HBA_NAME_PATTERN.fullmatch(names):
        field_error(
            f"{names!r} is not a pg_hba name list",
            "use names of letters, digits, '_', '$', '.', '-', '+group' or '@file', "
            "separated by commas without spaces",
        )
    return names


def check_hba_address(address: str) -> str:
    """A CIDR network, a keyword (all, samehost, samenet) or a host name."""
    if address in ADDRESS_KEYWORDS:
        return address
    if "/" in address:
        try:
            ipaddress.ip_network(address, strict=True)
        except ValueError as error:
            field_error(f"{address!r} is not a CIDR network ({error})", "write it as 10.0.0.0/8")
        return address
    try:
        ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        field_error(f"{address!r} has no prefix length", f"write it as {address}/32 or /128")
    if not HOST_NAME_PATTERN.fullmatch(address):
        field_error(
            f"{address!r} is not an address",
            "give a CIDR network (10.0.0.0/8), all, samehost, samenet or a host name",
        )
    return address


def check_hba_options(options: dict[str, str]) -> dict[str, str]:
    """Authentication options (name=value), rendered quoted by the keeper."""
    for name, value in options.items():
        if not HBA_OPTION_PATTERN.fullmatch(name):
            field_error(f"{name!r} is not an option name", "use a pg_hba option such as ldapserver")
        if '"' in value or any(ord(char) < 32 for char in value):
            field_error(f"option {name} has a quote or line break", "remove it from the value")
    return options


HbaNames = Annotated[str, Strict(), AfterValidator(check_hba_names)]
HbaAddress = Annotated[str, Strict(), AfterValidator(check_hba_address)]
HbaOptions = Annotated[dict[str, Annotated[str, Strict()]], AfterValidator(check_hba_options)]


class HbaEntry(StoreModel):
    """One pg_hba.conf line, placed before the entries rhizome needs itself."""

    type: HbaType
    """Connection type: local (Unix socket) or host, hostssl, hostnossl, ..."""
    database: HbaNames
    """Databases it matches: names, all, sameuser, samerole, replication."""
    user: HbaNames
    """Roles it matches: names, all, +group."""
    address: HbaAddress | None = None
    """Client addresses (host types only): CIDR, all, samehost, samenet, host name."""
    method: HbaMethod
    """Authentication method."""
    options: HbaOptions = Field(default_factory=dict)
    """Method options, e.g. {"ldapserver": "ldap.example.com"}."""

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
        problems = self._combination_problems()
        if problems:
            raise problems_error(problems)
        return self

    def _combination_problems(self) -> list[FieldProblem]:
        if self.type == "local" and self.address is not None:
            return [FieldProblem("address", "local entries have no address", "remove it")]
        if self.type != "local" and self.address is None:
            fix = "give a CIDR network such as 10.0.0.0/8, or all"
            return [FieldProblem("address", f"{self.type} entries need an address", fix)]
        if self.method == "peer" and self.type != "local":
            return [FieldProblem("method", "peer works on local entries only", "use ident")]
        if self.method == "cert" and self.type != "hostssl":
            return [FieldProblem("method", "cert works on hostssl entries only", "use hostssl")]
        return []


def commits_without_standbys(synchronous_commit: ParameterValue) -> bool:
    """Whether this synchronous_commit value acknowledges commits no standby has."""
    return str(synchronous_commit).lower() in {"off", "local", "false", "no", "0"}
