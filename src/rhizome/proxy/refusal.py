"""Refusing a client with an error it can show.

A client the proxy will not serve (held past the hold timeout, over the
connection limit) gets its first packets answered the way a server would:
TLS and GSS encryption requests with 'N', then a FATAL ErrorResponse to its
startup message, so psql prints the proxy's reason instead of "server closed
the connection unexpectedly".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rhizome.proxy.wire import REFUSE_ENCRYPTION, PacketKind, classify_first_packet, error_response

REFUSAL_READ_TIMEOUT = 5.0
"""Seconds a refused client has to send its startup packet before it is cut."""


class Refusal(asyncio.Protocol):
    """Takes over a client socket, answers it with an error, closes it."""

    def __init__(
        self,
        transport: asyncio.Transport,
        message: str,
        sqlstate: str,
        done: Callable[[Refusal], None],
    ) -> None:
        self.transport = transport
        self.error = error_response(message, sqlstate)
        self.done = done
        self.buffer = bytearray()
        self.timer: asyncio.TimerHandle | None = None
        self.finished = False

    def start(self, buffered: bytes) -> None:
        """Become the client's protocol; `buffered` is what it sent so far."""
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(REFUSAL_READ_TIMEOUT, self.abort)
        self.transport.set_protocol(self)
        self.transport.resume_reading()
        if buffered:
            self.data_received(buffered)

    def data_received(self, data: bytes) -> None:
        if self.finished:
            return
        self.buffer += data
        while not self.finished:
            packet = classify_first_packet(self.buffer)
            if packet.kind is PacketKind.INCOMPLETE:
                return
            if packet.kind in (PacketKind.SSL_REQUEST, PacketKind.GSSENC_REQUEST):
                self.transport.write(REFUSE_ENCRYPTION)
                del self.buffer[: packet.length]
            elif packet.kind is PacketKind.STARTUP:
                self.transport.write(self.error)
                self.end(self.transport.close)
            else:  # a cancel request has nothing to cancel here; garbage gets nothing
                self.end(self.transport.abort)

    def eof_received(self) -> bool:
        self.abort()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.end(lambda: None)

    def abort(self) -> None:
        self.end(self.transport.abort)

    def end(self, closing: Callable[[], None]) -> None:
        if self.finished:
            return
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        closing()
        self.done(self)
