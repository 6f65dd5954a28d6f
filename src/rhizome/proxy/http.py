"""The proxy's API endpoint on its event loop: one request per connection (rhizome.api.requests)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import cast

from rhizome.api.requests import (
    REQUEST_LIMIT,
    REQUEST_TIMEOUT,
    Handler,
    Page,
    answer,
    complete,
    response,
    text_page,
)

log = logging.getLogger(__name__)


class HttpEndpoint(asyncio.Protocol):
    """Answers one request from `routes` (path -> handler) and closes."""

    def __init__(self, routes: Mapping[str, Handler], token: str | None = None) -> None:
        self.routes = routes
        self.token = token
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.answering = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.timer = asyncio.get_running_loop().call_later(REQUEST_TIMEOUT, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        if self.answering:
            return
        self.buffer += data
        if complete(self.buffer) or len(self.buffer) > REQUEST_LIMIT:
            self.answering = True
            raw = bytes(self.buffer)
            if not raw.startswith(b"POST "):
                self.respond(answer(raw, self.routes, self.token))
                return
            # A POST may block (a failsafe confirmation probes etcd): off the event loop.
            work = asyncio.get_running_loop().run_in_executor(
                None, answer, raw, self.routes, self.token
            )
            work.add_done_callback(self.answered)

    def answered(self, work: asyncio.Future[Page]) -> None:
        error = work.exception()
        if error is not None:
            log.error("the API failed on a request: %r", error)
            self.respond(text_page(500, "internal error; see the proxy's log"))
        else:
            self.respond(work.result())

    def respond(self, page: Page) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(response(page))
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
