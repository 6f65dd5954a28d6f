"""The proxy's API endpoint on its event loop: one request per connection (rhizome.api.requests)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import cast

from rhizome.api.requests import REQUEST_LIMIT, REQUEST_TIMEOUT, Handler, answer, complete, response


class HttpEndpoint(asyncio.Protocol):
    """Answers one request from `routes` (path -> handler) and closes."""

    def __init__(self, routes: Mapping[str, Handler], token: str | None = None) -> None:
        self.routes = routes
        self.token = token
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.timer = asyncio.get_running_loop().call_later(REQUEST_TIMEOUT, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if complete(self.buffer) or len(self.buffer) > REQUEST_LIMIT:
            self.respond(bytes(self.buffer))

    def respond(self, raw: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(response(answer(raw, self.routes, self.token)))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
