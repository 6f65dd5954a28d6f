"""A streaming answer of etcd's gateway (a watch): its lines, as they come.

A watch is a POST whose answer never ends: the gateway sends each message as
one JSON line in a chunked body. `Stream` reads it on a connection of its own
(connection.py's reader), waits at most `idle_timeout` for each piece, and can
be cut from another thread (`shutdown()`), which ends a blocked read at once.
Every failure (silence, a reset, a cut, a malformed chunk) is an
EndpointFailed; the watch then opens a new stream.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from rhizome.etcd.connection import (
    Connection,
    MemberConnections,
    Timeouts,
    closed_on_failure,
    encode_request,
    parse_length,
    status_line,
)
from rhizome.etcd.endpoints import EndpointFailed


def open_stream(
    connections: MemberConnections,
    endpoint: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    timeouts: Timeouts,
) -> Stream:
    """POST `body` to `path` on a new connection to `endpoint`; the answer as a Stream
    once its headers came (each read waits at most `timeouts.read`)."""
    member = connections.member(endpoint)
    request = encode_request("POST", path, member.host_header, headers, body)
    connection = connections.connect(member, timeouts)
    with closed_on_failure(connection):
        connection.sock.settimeout(timeouts.read)
        connection.sock.sendall(request)
        _, status = status_line(connection.readline())
        length, chunked, _ = connection.headers()
    return Stream(connection, status, length, chunked)


class Stream:
    """The answer to a streaming request, its status and headers read; one reader."""

    def __init__(self, connection: Connection, status: int, length: int | None, chunked: bool):
        self.connection = connection
        self.status = status
        self._length = length
        self._chunked = chunked

    def read(self) -> bytes:
        """The whole body (an error's, which ends)."""
        try:
            if self._chunked:
                return self.connection.chunked_body()
            if self._length is not None:
                return self.connection.exactly(self._length)
            return self.connection.reader.read()
        except OSError as error:
            raise EndpointFailed(f"connection failed ({error.__class__.__name__})") from error

    def __iter__(self) -> Iterator[bytes]:
        """Each line of a chunked body until it ends; EndpointFailed when it breaks."""
        if not self._chunked:
            raise EndpointFailed("answered a watch without a chunked body")
        pending = b""
        try:
            while chunk := self._next_chunk():
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                yield from (line for line in lines if line.strip())
        except OSError as error:  # the idle timeout, a reset, or shutdown() on TLS
            raise EndpointFailed(f"the stream broke ({error.__class__.__name__})") from error

    def _next_chunk(self) -> bytes:
        size = parse_length(self.connection.readline().split(b";")[0].strip(), base=16)
        if size == 0:
            return b""
        data = self.connection.exactly(size)
        self.connection.readline()
        return data

    def shutdown(self) -> None:
        """From another thread: end a blocked read now (the socket's, not TLS's, shutdown)."""
        with contextlib.suppress(OSError):  # already closed
            socket.socket.shutdown(self.connection.sock, socket.SHUT_RDWR)

    def close(self) -> None:
        self.connection.close()
