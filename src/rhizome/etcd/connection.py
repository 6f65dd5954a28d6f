"""Kept-alive HTTP/1.1 connections to etcd members, for the gateway's short JSON calls.

Every agent makes short POSTs all the time: a lease renewal each second, a
document publish, a revision probe. urllib3 and http.client spend most of
such a call building and parsing headers (a lease keepalive cost ~0.3 ms of
CPU through them on the bench machine, ~0.05 ms here; docs/benchmarks.md,
"Agent cost"). This module speaks only the HTTP/1.1 that etcd's gateway
answers with: a status line, headers, and a body framed by Content-Length or
by chunked transfer encoding. Watches, long streams, read their answer
through stream.py on connections of their own.

Connections are kept per member and reused. One that the member closed while
it was idle is noticed before reuse and replaced; one that failed or timed
out during a call is closed, never reused. Every failure is an
EndpointFailed whose message says what happened (the call then tries the
next member).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

from rhizome import clock
from rhizome.etcd.endpoints import EndpointFailed

MAX_IDLE_PER_MEMBER = 8
MAX_LINE = 65536
MAX_HEADERS = 100


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


@dataclass(frozen=True)
class Timeouts:
    """Seconds to connect, to wait for each read, and the clock.monotonic() time by
    which the whole call must end (None: no such deadline)."""

    connect: float
    read: float
    until: float | None = None

    def left(self, limit: float) -> float:
        """`limit`, or less when the deadline comes first; EndpointFailed once it passed."""
        if self.until is None:
            return limit
        left = self.until - clock.monotonic()
        if left <= 0:
            raise EndpointFailed("timed out (the call's deadline passed)")
        return min(limit, left)


@dataclass(frozen=True)
class Member:
    """Where one endpoint listens, as a socket address and a Host header."""

    host: str
    port: int
    secure: bool

    @classmethod
    def of(cls, endpoint: str) -> Member:
        parts = urlsplit(endpoint)
        return cls(parts.hostname or "", parts.port or 0, parts.scheme == "https")

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class Connection:
    """One socket to one member; a call at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader: BinaryIO = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def closed_while_idle(self) -> bool:
        """True when the member closed it (or sent something unasked) since the last call."""
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def exchange(self, request: bytes, timeouts: Timeouts) -> tuple[Answer, bool]:
        """Send one request; the answer, and whether the connection may be reused."""
        self.sock.settimeout(timeouts.left(timeouts.read))
        self.sock.sendall(request)
        self.sock.settimeout(timeouts.left(timeouts.read))
        version, status = status_line(self.readline())
        length, chunked, close = self.headers()
        self.sock.settimeout(timeouts.left(timeouts.read))
        if chunked:
            body = self.chunked_body()
        elif length is not None:
            body = self.exactly(length)
        else:
            body, close = self.reader.read(), True
        return Answer(status, body), not close and version == b"HTTP/1.1"

    def readline(self) -> bytes:
        line = self.reader.readline(MAX_LINE)
        if not line:
            raise EndpointFailed("connection failed (the member closed it)")
        if len(line) >= MAX_LINE and not line.endswith(b"\n"):
            raise EndpointFailed("answered with a line too long for HTTP")
        if not line.endswith(b"\n"):
            raise EndpointFailed("connection failed (the member closed it mid-answer)")
        return line

    def headers(self) -> tuple[int | None, bool, bool]:
        """Content-Length (None: not given), chunked, and whether the member closes."""
        length, chunked, close = None, False, False
        for _ in range(MAX_HEADERS):
            line = self.readline()
            if line in (b"\r\n", b"\n"):
                return length, chunked, close
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = parse_length(value)
            elif name == b"transfer-encoding":
                chunked = value.endswith(b"chunked")
            elif name == b"connection":
                close = value == b"close"
        raise EndpointFailed(f"answered with more than {MAX_HEADERS} HTTP headers")

    def chunked_body(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = parse_length(self.readline().split(b";")[0].strip(), base=16)
            if size == 0:
                while self.readline() not in (b"\r\n", b"\n"):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.exactly(size))
            self.readline()

    def exactly(self, size: int) -> bytes:
        data = self.reader.read(size)
        if len(data) != size:
            raise EndpointFailed("connection failed (the member closed it mid-answer)")
        return data


class MemberConnections:
    """Idle connections per member, taken by one call at a time; thread-safe."""

    def __init__(self, tls: Callable[[], ssl.SSLContext] | None) -> None:
        self.tls = tls
        """Makes the TLS context of a new connection (so renewed files are read)."""
        self._members: dict[str, Member] = {}
        self._idle: dict[Member, list[Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def request(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        timeouts: Timeouts,
    ) -> Answer:
        """One call on a kept-alive connection to `endpoint` (scheme://host:port)."""
        member = self.member(endpoint)
        request = encode_request(method, path, member.host_header, headers, body)
        connection = self._take(member) or self.connect(member, timeouts)
        with closed_on_failure(connection):
            answer, reusable = connection.exchange(request, timeouts)
        if reusable:
            self._give_back(member, connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def member(self, endpoint: str) -> Member:
        member = self._members.get(endpoint)
        if member is None:
            member = self._members[endpoint] = Member.of(endpoint)
        return member

    def _take(self, member: Member) -> Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get(member)
                connection = idle.pop() if idle else None
            if connection is None or not connection.closed_while_idle():
                return connection
            connection.close()

    def _give_back(self, member: Member, connection: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(member, [])
            if not self._closed and len(idle) < MAX_IDLE_PER_MEMBER:
                idle.append(connection)
                return
        connection.close()

    def connect(self, member: Member, timeouts: Timeouts) -> Connection:
        """A new connection (not kept: a stream's, or one for `request`)."""
        timeout = timeouts.left(timeouts.connect)
        try:
            sock = socket.create_connection((member.host, member.port), timeout)
        except OSError as error:
            reason = "timed out" if isinstance(error, TimeoutError) else reason_of(error)
            raise EndpointFailed(f"cannot connect ({reason})") from error
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not member.secure:
            return Connection(sock)
        try:
            context = self._tls()
            return Connection(context.wrap_socket(sock, server_hostname=member.host))
        except ssl.SSLError as error:  # certificate errors included
            sock.close()
            raise EndpointFailed(f"TLS handshake failed ({error}); check the CA file") from error
        except OSError as error:
            sock.close()
            raise EndpointFailed(f"TLS handshake failed ({reason_of(error)})") from error

    def _tls(self) -> ssl.SSLContext:
        if self.tls is None:
            raise EndpointFailed("an https endpoint, but no TLS settings were given")
        try:
            return self.tls()
        except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
            raise EndpointFailed(f"the TLS files cannot be loaded ({error})") from error


@contextlib.contextmanager
def closed_on_failure(connection: Connection) -> Iterator[None]:
    """Close `connection` when the block fails (never reuse it); an OSError becomes an
    EndpointFailed saying what happened."""
    try:
        yield
    except OSError as error:
        connection.close()
        raise EndpointFailed(exchange_failure(error)) from error
    except BaseException:
        connection.close()
        raise


def encode_request(
    method: str, path: str, host: str, headers: dict[str, str], body: bytes | None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def status_line(line: bytes) -> tuple[bytes, int]:
    """The HTTP version and the status code of an answer's first line."""
    words = line.split(None, 2)
    if len(words) < 2 or not words[0].startswith(b"HTTP/1.") or not words[1].isdigit():
        raise EndpointFailed(f"answered with something that is not HTTP/1.1 ({line[:40]!r})")
    return words[0], int(words[1])


def parse_length(text: bytes, base: int = 10) -> int:
    try:
        length = int(text, base)
    except ValueError:
        length = -1
    if length < 0:
        raise EndpointFailed(f"answered with a malformed HTTP length ({text[:20]!r})")
    return length


def exchange_failure(error: OSError) -> str:
    """What went wrong during a call, for an operator."""
    if isinstance(error, TimeoutError):
        return "timed out waiting for the answer"
    return f"connection failed ({reason_of(error)})"


def reason_of(error: OSError) -> str:
    """e.g. 'Connection refused', or the exception's name when it has no text."""
    return error.strerror or str(error) or error.__class__.__name__
