"""Validated field types shared by the store documents and the cluster spec.

Every type is strict about its Python type (no "5" for 5, no 1 for True) while
still accepting JSON arrays for tuples.
"""

import re
from typing import Annotated

from pydantic import AfterValidator, Field, Strict

from rhizome.store.validation import field_error

KEEPER_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
PHASE_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,62}")


def check_keeper_name(name: str) -> str:
    """Keeper names appear in store keys and in synchronous_standby_names."""
    if not KEEPER_NAME_PATTERN.fullmatch(name):
        field_error(
            f"{name!r} is not a valid keeper name",
            "use 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
        )
    return name


def check_identifier(identifier: str) -> str:
    """Sentinel, proxy and command identifiers are single store key segments."""
    if not IDENTIFIER_PATTERN.fullmatch(identifier):
        field_error(
            f"{identifier!r} is not a valid identifier",
            "use 1 to 128 letters, digits, '.', '-' or '_', starting with a letter or digit",
        )
    return identifier


def check_phase(phase: str) -> str:
    """Operation phases are short lowercase words chosen by the sentinel."""
    if not PHASE_PATTERN.fullmatch(phase):
        field_error(
            f"{phase!r} is not a valid phase name",
            "use a lowercase word of letters, digits, '-' or '_'",
        )
    return phase


def check_host(host: str) -> str:
    """A host name or IP address: non-empty, without spaces or control characters."""
    if not host or len(host) > 255 or any(character.isspace() for character in host):
        field_error(f"{host!r} is not a host name or address", "give a host name or IP address")
    return host


def check_listen_address(address: str) -> str:
    """A "host:port" pair, as a proxy reports the addresses it listens on."""
    host, separator, port = address.rpartition(":")
    if not separator or not port.isdigit() or not 1 <= int(port) <= 65535:
        field_error(f"{address!r} is not a listen address", "write it as host:port")
    check_host(host)
    return address


KeeperName = Annotated[str, Strict(), AfterValidator(check_keeper_name)]
Identifier = Annotated[str, Strict(), AfterValidator(check_identifier)]
PhaseName = Annotated[str, Strict(), AfterValidator(check_phase)]
HostAddress = Annotated[str, Strict(), AfterValidator(check_host)]
ListenAddress = Annotated[str, Strict(), AfterValidator(check_listen_address)]
Text = Annotated[str, Strict(), Field(max_length=4096)]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
UnixTime = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Seconds = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
Generation = Annotated[int, Strict(), Field(ge=0)]
Lsn = Annotated[int, Strict(), Field(ge=0, lt=2**64)]
Bytes = Annotated[int, Strict(), Field(ge=0)]
Timeline = Annotated[int, Strict(), Field(ge=1)]
