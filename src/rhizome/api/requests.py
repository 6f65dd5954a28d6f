"""One HTTP request in, one page out: parsing, authentication and routing (pure).

The agents answer one request per connection and close it, so a request is
everything up to the blank line after its headers; bodies are not read (a
POST carries its arguments in the query string).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

REQUEST_LIMIT = 8192
"""Bytes of request line and headers; more is refused."""
REQUEST_TIMEOUT = 5.0
"""Seconds a client has to send its request (and, with TLS, to shake hands)."""

POST_PATHS = frozenset({"/failsafe"})
"""Paths that change something (they take POST); every other path is read with GET or HEAD."""

Page = tuple[int, str, bytes]
"""(status, content type, body)"""

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header names in lower case."""


Handler = Callable[[Request], Page]


def complete(buffer: bytes | bytearray) -> bool:
    """The request's headers have all arrived."""
    return b"\r\n\r\n" in buffer or b"\n\n" in buffer


def text_page(status: int, text: str) -> Page:
    return status, "text/plain; charset=utf-8", (text + "\n").encode()


def json_page(status: int, body: object) -> Page:
    return status, "application/json", (json.dumps(body, indent=2) + "\n").encode()


def parse(raw: bytes) -> Request | None:
    """The request in `raw`, or None when it is not HTTP."""
    lines = raw.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    path, _, query = parts[1].partition("?")
    headers = {}
    for line in lines[1:]:
        name, separator, value = line.partition(":")
        if separator:
            headers[name.strip().lower()] = value.strip()
    return Request(parts[0], path, dict(parse_qsl(query)), headers)


def authorized(request: Request, token: str | None) -> bool:
    """No token configured, or the request carries it as a bearer token."""
    if token is None:
        return True
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    )


def answer(raw: bytes, routes: Mapping[str, Handler], token: str | None) -> Page:
    """The page for the request in `raw`: 400, 401, 404 and 405 name the problem."""
    if len(raw) > REQUEST_LIMIT:
        return text_page(400, "request too large")
    request = parse(raw)
    if request is None:
        return text_page(400, "malformed request: this is an HTTP endpoint")
    if not authorized(request, token):
        return text_page(401, "authentication required: send Authorization: Bearer <token>")
    handler = routes.get(request.path)
    if handler is None:
        return text_page(404, f"unknown path; try {', '.join(sorted(routes))}")
    allowed = ("POST",) if request.path in POST_PATHS else ("GET", "HEAD")
    if request.method not in allowed:
        return text_page(405, f"only {' and '.join(allowed)}")
    status, content_type, body = handler(request)
    return status, content_type, b"" if request.method == "HEAD" else body


def response(page: Page) -> bytes:
    """The whole HTTP response of `page`, closing the connection."""
    status, content_type, body = page
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    )
    if status == 401:
        head += 'WWW-Authenticate: Bearer realm="rhizome"\r\n'
    return (head + "Connection: close\r\n\r\n").encode("ascii") + body
