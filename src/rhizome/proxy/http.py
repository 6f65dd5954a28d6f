"""A small HTTP endpoint: GET /health and GET /metrics, one request per connection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

REQUEST_LIMIT = 8192
REQUEST_TIMEOUT = 5.0

Page = tuple[int, str, bytes]
"""(status, content type, body)"""

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
REASONS[503] = "Service Unavailable"


class HttpEndpoint(asyncio.Protocol):
    """Answers one request from `pages` (path -> page producer) and closes."""

    def __init__(self, pages: dict[str, Callable[[], Page]]) -> None:
        self.pages = pages
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.timer = asyncio.get_running_loop().call_later(REQUEST_TIMEOUT, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer or b"\n\n" in self.buffer:
            self.respond(*self.page(bytes(self.buffer)))
        elif len(self.buffer) > REQUEST_LIMIT:
            self.respond(400, "text/plain", b"request too large\n")

    def page(self, request: bytes) -> Page:
        parts = request.split(b"\n", 1)[0].split()
        if len(parts) < 2:
            return 400, "text/plain", b"malformed request\n"
        method, target = parts[0], parts[1].decode("latin-1").split("?", 1)[0]
        producer = self.pages.get(target)
        if producer is None:
            known = ", ".join(sorted(self.pages))
            return 404, "text/plain", f"unknown path; try {known}\n".encode()
        if method not in (b"GET", b"HEAD"):
            return 405, "text/plain", b"only GET\n"
        status, content_type, body = producer()
        return status, content_type, b"" if method == b"HEAD" else body

    def respond(self, status: int, content_type: str, body: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
