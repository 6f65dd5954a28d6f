"""The little of PostgreSQL's wire protocol the proxy speaks itself.

Forwarded connections are never parsed. Only a client that is held, and
then refused, is read: its first packet tells whether it asks for TLS or
GSS encryption (answered 'N', no), cancels a query, or starts a session, to
which the proxy answers with an ErrorResponse the client can show.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum

SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102
PROTOCOL_3 = 3 << 16
MAX_STARTUP_LENGTH = 10_000  # PostgreSQL's own limit on a startup packet
HEADER = struct.Struct("!II")

REFUSE_ENCRYPTION = b"N"
SQLSTATE_CANNOT_CONNECT_NOW = "57P03"
SQLSTATE_TOO_MANY_CONNECTIONS = "53300"
SQLSTATE_CONNECTION_FAILURE = "08006"
SQLSTATE_REFUSED_LOGIN = "28000"
"""invalid_authorization_specification, as PostgreSQL answers a login pg_hba.conf refuses."""


class PacketKind(Enum):
    INCOMPLETE = "incomplete"
    """More bytes are needed to tell."""
    SSL_REQUEST = "ssl request"
    GSSENC_REQUEST = "gssenc request"
    CANCEL_REQUEST = "cancel request"
    STARTUP = "startup"
    INVALID = "invalid"
    """Not a PostgreSQL client: a wrong length or an unknown protocol."""


@dataclass(frozen=True)
class Packet:
    kind: PacketKind
    length: int = 0
    """Bytes the packet takes (0 while incomplete or invalid)."""


def classify_first_packet(data: bytes | bytearray) -> Packet:
    """What the client's first packet (at the start of `data`) is."""
    if len(data) < HEADER.size:
        return Packet(PacketKind.INCOMPLETE)
    length, code = HEADER.unpack_from(data)
    if length < HEADER.size or length > MAX_STARTUP_LENGTH:
        return Packet(PacketKind.INVALID)
    if code in (SSL_REQUEST_CODE, GSSENC_REQUEST_CODE):
        if length != HEADER.size:
            return Packet(PacketKind.INVALID)
        kind = PacketKind.SSL_REQUEST if code == SSL_REQUEST_CODE else PacketKind.GSSENC_REQUEST
        return Packet(kind, length)
    if code == CANCEL_REQUEST_CODE:
        if length != 16:
            return Packet(PacketKind.INVALID)
        kind = PacketKind.CANCEL_REQUEST
    elif code >> 16 == 3:
        kind = PacketKind.STARTUP
    else:
        return Packet(PacketKind.INVALID)
    if len(data) < length:
        return Packet(PacketKind.INCOMPLETE)
    return Packet(kind, length)


def error_response(message: str, sqlstate: str, detail: str | None = None) -> bytes:
    """A FATAL ErrorResponse message (protocol 3)."""
    fields = [b"SFATAL", b"VFATAL", b"C" + sqlstate.encode("ascii"), b"M" + text(message)]
    if detail:
        fields.append(b"D" + text(detail))
    body = b"".join(field + b"\0" for field in fields) + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def text(value: str) -> bytes:
    """UTF-8 without NUL bytes (a NUL ends a field)."""
    return value.replace("\0", " ").encode("utf-8")


def startup_packet(parameters: dict[str, str]) -> bytes:
    """A StartupMessage (used by tests and the benchmark's readiness probe)."""
    body = struct.pack("!I", PROTOCOL_3)
    body += b"".join(text(name) + b"\0" + text(value) + b"\0" for name, value in parameters.items())
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def ssl_request() -> bytes:
    return HEADER.pack(HEADER.size, SSL_REQUEST_CODE)
