"""Forwarding: one client connection and its server connection.

A `Session` is one accepted client, from accept to close: held, connecting,
forwarding through the pipes of pipes.py (the hot path), closed. Every write
toward a server (buffered first bytes, a half-close, each chunk) happens
only before the proxy's close deadline (`SessionOwner.forward_until`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import socket
import struct
from typing import Any, Protocol

from rhizome import clock
from rhizome.proxy.config import KeepaliveSettings
from rhizome.proxy.login import ENCRYPTED_LOGIN_WINDOW
from rhizome.proxy.pipes import ClientPipe, Pipe, ServerPipe
from rhizome.proxy.routing import Backend
from rhizome.proxy.wire import PacketKind, classify_first_packet

log = logging.getLogger(__name__)

BUFFER_LIMIT = 64 * 1024
"""Bytes buffered from a waiting client before its socket stops being read."""
TCP_INFO_SIZE = 136
TCP_INFO_BYTES_OFFSET = 120
TCP_INFO_BYTES = struct.Struct("=QQ")
"""struct tcp_info: tcpi_bytes_acked then tcpi_bytes_received (Linux >= 4.6)."""


class SessionState(enum.Enum):
    HELD = "held"
    CONNECTING = "connecting"
    FORWARDING = "forwarding"
    CLOSED = "closed"


class SessionOwner(Protocol):
    """What a session needs from the dispatcher that owns it."""

    forward_until: float
    """Monotonic time after which nothing may be written to a server."""

    def deadline_passed(self, session: Session) -> None: ...

    def permits(self, session: Session, backend: Backend) -> bool: ...

    def connect_failed(self, session: Session, error: str) -> None: ...

    def forwarding(self, session: Session) -> None: ...

    def login_finished(self, session: Session) -> None: ...

    def closed(self, session: Session) -> None: ...

    def first_packet(self, session: Session, kind: PacketKind) -> None: ...


class Session:
    """One client connection through the proxy, from accept to close."""

    __slots__ = (
        "accepted_at",
        "backend",
        "buffer",
        "buffered_bytes",
        "client",
        "client_eof",
        "client_pipe",
        "client_socket",
        "connect_task",
        "hold_deadline",
        "hold_timer",
        "keepalive",
        "last_error",
        "login_timer",
        "owner",
        "pending_pipe",
        "read_only",
        "server",
        "server_pipe",
        "state",
        "tls_asked",
        "traffic",
    )

    def __init__(
        self,
        owner: SessionOwner,
        client: asyncio.Transport,
        read_only: bool,
        keepalive: KeepaliveSettings,
    ) -> None:
        self.owner = owner
        self.client = client
        self.read_only = read_only
        self.keepalive = keepalive
        self.state = SessionState.HELD
        self.accepted_at = clock.monotonic()
        self.hold_deadline = 0.0
        self.hold_timer: asyncio.TimerHandle | None = None
        self.backend: Backend | None = None
        self.buffer: list[bytes] = []
        self.buffered_bytes = 0
        self.client_eof = False
        self.connect_task: asyncio.Task[object] | None = None
        self.server: asyncio.Transport | None = None
        self.client_pipe: ClientPipe | None = None
        self.server_pipe: ServerPipe | None = None
        self.pending_pipe: ServerPipe | None = None
        self.last_error: str | None = None
        self.client_socket = client.get_extra_info("socket")
        self.traffic: tuple[int, int] | None = None
        """(bytes from the client, bytes to the client) once the session ended."""
        self.tls_asked = False
        """Its first packet asks for encryption (or cancels a query): require_tls waits for it."""
        self.login_timer: asyncio.TimerHandle | None = None
        """Ends an encrypted login's window (see ENCRYPTED_LOGIN_WINDOW)."""

    def bytes_forwarded(self) -> tuple[int, int]:
        """(bytes from the client, bytes delivered to it), from the kernel's counters."""
        if self.traffic is not None:
            return self.traffic
        if self.server_pipe is None or self.client_socket is None:
            return 0, 0
        return kernel_traffic(self.client_socket)

    # -- waiting -----------------------------------------------------------

    def buffer_client_data(self, data: bytes) -> None:
        self.buffer.append(data)
        self.buffered_bytes += len(data)
        if self.buffered_bytes > BUFFER_LIMIT:
            self.client.pause_reading()
        if self.state is SessionState.HELD:
            self.check_held_input()

    def check_held_input(self) -> None:
        """Tell the owner what a held client's first packet is, once it can be told."""
        if self.buffer:
            kind = classify_first_packet(self.first_bytes()).kind
            if kind is not PacketKind.INCOMPLETE:
                self.owner.first_packet(self, kind)

    def first_bytes(self) -> bytes:
        if len(self.buffer) > 1:
            self.buffer = [b"".join(self.buffer)]
        return self.buffer[0] if self.buffer else b""

    # -- connecting --------------------------------------------------------

    def connect(self, backend: Backend, timeout: float) -> None:
        """Start one connection attempt; its pipe identifies it when it completes."""
        self.state = SessionState.CONNECTING
        self.backend = backend
        pipe = ServerPipe(self, self.client)
        self.pending_pipe = pipe
        loop = asyncio.get_running_loop()
        self.connect_task = loop.create_task(self.open_server(pipe, backend, timeout))

    async def open_server(self, pipe: ServerPipe, backend: Backend, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: pipe, backend.host, backend.port), timeout
            )
        except OSError as error:  # TimeoutError included
            if self.pending_pipe is pipe and self.state is SessionState.CONNECTING:
                self.pending_pipe = None
                reason = str(error) or error.__class__.__name__
                self.owner.connect_failed(self, f"{backend}: {reason}")
        finally:
            if self.connect_task is asyncio.current_task():
                self.connect_task = None

    def cancel_connect(self) -> None:
        """Stop connecting (the backend is stale); the session goes back to waiting."""
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        self.pending_pipe = None  # a late connection of that attempt is closed at once
        self.backend = None
        self.state = SessionState.HELD

    def server_connected(self, server: asyncio.Transport, pipe: ServerPipe) -> None:
        backend = self.backend
        if (
            pipe is not self.pending_pipe
            or self.state is not SessionState.CONNECTING
            or backend is None
            or not self.owner.permits(self, backend)  # the routes, and the close deadline
        ):
            server.abort()  # a stale or late attempt: never forward through it
            return
        self.pending_pipe = None
        self.server = server
        self.server_pipe = pipe
        set_keepalive(server, self.keepalive)
        self.state = SessionState.FORWARDING
        self.cancel_hold_timer()
        if self.buffer:
            server.write(b"".join(self.buffer))
            self.buffer = []
        self.client_pipe = ClientPipe(self, server, self.owner)
        self.client.set_protocol(self.client_pipe)
        if self.buffered_bytes > BUFFER_LIMIT:
            self.client.resume_reading()
        self.buffered_bytes = 0
        if self.client_eof:
            server.write_eof()
        self.owner.forwarding(self)

    @property
    def logging_in(self) -> bool:
        """Connecting, or forwarding before the server ended the login."""
        if self.state is SessionState.CONNECTING:
            return True
        pipe = self.server_pipe
        return self.state is SessionState.FORWARDING and pipe is not None and pipe.login is not None

    def login_finished(self, pipe: ServerPipe) -> None:
        if pipe is self.server_pipe and self.server is not None:
            self.server.set_protocol(pipe)  # from now on uvloop calls peer.write directly
            self.owner.login_finished(self)

    def encrypted_login(self, pipe: ServerPipe) -> None:
        """The server accepted TLS: the login cannot be read, it counts as under way for
        ENCRYPTED_LOGIN_WINDOW (or until the session closes)."""
        if pipe is self.server_pipe and self.server is not None:
            self.server.set_protocol(pipe)
            loop = asyncio.get_running_loop()
            self.login_timer = loop.call_later(ENCRYPTED_LOGIN_WINDOW, self.window_over, pipe)

    def window_over(self, pipe: ServerPipe) -> None:
        self.login_timer = None
        pipe.login = None
        if self.state is SessionState.FORWARDING:
            self.owner.login_finished(self)

    # -- ending ------------------------------------------------------------

    def end_of_data(self, pipe: Pipe) -> bool:
        """One side finished sending: pass the half-close on, or finish."""
        if pipe is self.client_pipe and self.server is not None and not self.server.is_closing():
            if clock.monotonic() >= self.owner.forward_until:
                self.deadline_passed()
                return False
            self.client_eof = True
            self.server.write_eof()
            return True  # keep reading the server's last answers
        self.close()
        return False

    def deadline_passed(self) -> None:
        """Client data for the server arrived after the deadline: drop it and the session."""
        self.owner.deadline_passed(self)

    def cancel_hold_timer(self) -> None:
        if self.hold_timer is not None:
            self.hold_timer.cancel()
            self.hold_timer = None

    def close(self) -> None:
        """End the session, letting written data reach both sides."""
        self.finish(abort=False)

    def abort(self) -> None:
        """End the session at once: both sockets are closed now, unsent data dropped."""
        self.finish(abort=True)

    def finish(self, abort: bool) -> None:
        if self.state is SessionState.CLOSED:
            return
        self.traffic = self.bytes_forwarded()
        self.detach()
        for transport in (self.server, self.client):
            if transport is not None:
                if abort:
                    transport.abort()
                else:
                    transport.close()

    def detach(self) -> None:
        """Leave the owner without touching the client socket (a refusal takes it over)."""
        if self.state is SessionState.CLOSED:
            return
        self.state = SessionState.CLOSED
        self.cancel_hold_timer()
        if self.login_timer is not None:
            self.login_timer.cancel()
            self.login_timer = None
        if self.connect_task is not None:
            self.connect_task.cancel()
            self.connect_task = None
        self.owner.closed(self)


def kernel_traffic(sock: socket.socket) -> tuple[int, int]:
    """(bytes received, bytes acknowledged by the peer) of a TCP socket; zeros if unknown."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_SIZE)
    except OSError:
        return 0, 0
    if len(info) < TCP_INFO_SIZE:
        return 0, 0
    acknowledged, received = TCP_INFO_BYTES.unpack_from(info, TCP_INFO_BYTES_OFFSET)
    return int(received), int(acknowledged)


def ignore_writes_to_closed_peers(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Loop exception handler: a chunk read just after its peer closed is no error.

    The peer's `connection_lost` (which ends the session) is scheduled, not
    immediate; a chunk read in between fails in the peer's `write`.
    """
    error = context.get("exception")
    if isinstance(error, RuntimeError) and "handler is closed" in str(error):
        log.debug("dropped a chunk for a connection that had just closed")
        return
    loop.default_exception_handler(context)


def set_keepalive(transport: asyncio.BaseTransport, settings: KeepaliveSettings) -> None:
    """TCP keepalive, so that a peer that vanished is noticed."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, settings.idle)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, settings.interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, settings.count)
    except OSError as error:  # the peer may already be gone
        log.debug("cannot set TCP keepalive: %s", error)
