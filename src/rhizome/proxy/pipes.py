"""The protocols of a session's two sockets (uvloop), the hot path of forwarding.

A client starts with a `WaitingProtocol` that buffers what it sends while
the session is held or connecting. Once the server connection is up, each
socket gets a pipe that writes each chunk it reads to the other socket: no
coroutine, no copy, with flow control (a full write buffer pauses reading on
the other side).

Only the client → server direction can write to a master, so only it checks
the proxy's close deadline, on every chunk, whatever order the event loop
runs its callbacks in (after a stall or SIGSTOP the loop may read a socket
before it runs the deadline timer). The server → client direction writes to
the client only and stays a direct `peer.write`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol, cast

from rhizome import clock
from rhizome.proxy.login import LoginWatch

if TYPE_CHECKING:
    from rhizome.proxy.forwarder import Session

monotonic = clock.monotonic


class ForwardDeadline(Protocol):
    """Who knows until when the proxy may forward (the dispatcher)."""

    forward_until: float
    """Monotonic time (rhizome.clock) after which nothing may reach a server."""


class Pipe(asyncio.Protocol):
    """Reads one socket and writes everything to `peer`, the other socket."""

    def __init__(self, session: Session, peer: asyncio.Transport) -> None:
        self.session = session
        self.peer = peer

    def eof_received(self) -> bool:
        return self.session.end_of_data(self)

    def pause_writing(self) -> None:
        self.peer.pause_reading()  # our socket is full: stop reading the other one

    def resume_writing(self) -> None:
        self.peer.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.close()


class ClientPipe(Pipe):
    """The client side's pipe: a chunk reaches the server only before the deadline.

    One clock read and one comparison per chunk; past the deadline the
    session is aborted (both sockets reset, nothing written) and the
    dispatcher fences at once instead of waiting for its timer.
    """

    def __init__(self, session: Session, server: asyncio.Transport, deadline: ForwardDeadline):
        super().__init__(session, server)
        self.deadline = deadline

    def data_received(self, data: bytes) -> None:
        if monotonic() < self.deadline.forward_until:
            self.peer.write(data)
        else:
            self.session.deadline_passed()


class ServerPipe(Pipe):
    """The server side's pipe, one per connection attempt.

    Its hot path has no Python frame once the login ended: `data_received`
    *is* the client transport's `write` (bytes toward the client never reach
    a master). Only the attempt the session still waits for becomes its
    server side; a stale one (its backend was retargeted away meanwhile) is
    closed unused and never touches the session. Until the login ended, each
    chunk is also read by a `LoginWatch`; then the pipe is set again as the
    transport's protocol, because uvloop looks `data_received` up only when
    it is set.
    """

    def __init__(self, session: Session, peer: asyncio.Transport) -> None:
        super().__init__(session, peer)
        self.login: LoginWatch | None = LoginWatch()
        self.data_received = self.watch_login  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.session.server_connected(cast(asyncio.Transport, transport), self)

    def watch_login(self, data: bytes) -> None:
        self.peer.write(data)
        login = self.login
        if login is not None and login.feed(data):
            self.data_received = self.peer.write  # type: ignore[method-assign]
            if login.encrypted:
                self.session.encrypted_login(self)  # self.login stays: still under way
            else:
                self.login = None
                self.session.login_finished(self)

    def eof_received(self) -> bool:
        if self.session.server_pipe is not self:
            return False
        return self.session.end_of_data(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session.server_pipe is self:
            self.session.close()


class WaitingProtocol(asyncio.Protocol):
    """A client's protocol until forwarding starts: buffers what it sends."""

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    def data_received(self, data: bytes) -> None:
        self.session.buffer_client_data(data)

    def eof_received(self) -> bool:
        self.session.close()  # a client that gives up before being served
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.close()
