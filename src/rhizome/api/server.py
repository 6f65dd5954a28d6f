"""The API server of the thread-based agents (keeper, sentinel): one thread a connection.

Handlers read the agent's state without locks (they only read attributes
that the agent replaces whole); a slow or silent client costs one thread for
at most REQUEST_TIMEOUT seconds, never the agent's own loops.
"""

from __future__ import annotations

import logging
import selectors
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any

from rhizome.api.config import ApiConfig, ListenAddress
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

Request = socket.socket | tuple[bytes, socket.socket]
"""What socketserver hands over (a TCP server: the connection's socket)."""
MAX_CONNECTIONS = 32
"""Connections served at once; more are closed at once, so a flood costs no threads."""
ACCEPT_TIMEOUT = 0.1
"""A connection the selector announced but that vanished before accept() blocks no longer."""


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 2 * MAX_CONNECTIONS  # a burst is queued, in order, not dropped

    def __init__(self, address: ListenAddress, routes: Mapping[str, Handler],
                 token: str | None, context: ssl.SSLContext | None) -> None:  # fmt: skip
        self.address_family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        self.routes = routes
        self.token = token
        self.context = context
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__((address.host, address.port), _Connection)

    def process_request(self, request: Request, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)  # closed at once: no thread for it
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Request, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        connection: socket.socket = self.request
        connection.settimeout(REQUEST_TIMEOUT)
        try:
            if self.server.context is not None:
                connection = self.server.context.wrap_socket(connection, server_side=True)
            raw = read_request(connection)
            connection.sendall(response(self._page(raw)))
        except (OSError, ssl.SSLError) as error:
            log.debug("API client %s: %s", self.client_address, error)
        finally:
            connection.close()

    def _page(self, raw: bytes) -> Page:
        """The answer; a failing page is a 500 and a logged traceback, never a dead agent."""
        try:
            return answer(raw, self.server.routes, self.server.token)
        except Exception:
            log.exception("API request failed")
            return text_page(500, "internal error; the agent's log has the details")


def read_request(connection: socket.socket) -> bytes:
    buffer = b""
    while not complete(buffer) and len(buffer) <= REQUEST_LIMIT:
        chunk = connection.recv(4096)
        if not chunk:
            break
        buffer += chunk
    return buffer


class ApiServer:
    """Serves `routes` on the configured address until stopped.

    Its thread sleeps until a client connects or `stop()` wakes it (socketserver's
    serve_forever would wake every 0.5 s to look for a stop: an idle agent's cost).
    """

    def __init__(self, config: ApiConfig, routes: Mapping[str, Handler]) -> None:
        assert config.listen is not None
        self.address = config.listen
        self._server = _Server(config.listen, routes, config.token, config.ssl_context())
        self._server.timeout = ACCEPT_TIMEOUT
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="api-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("API listening on %s", self.address)

    def stop(self) -> None:
        self._stopping = True
        self._wake_writer.send(b"\0")
        self._thread.join(timeout=5)
        self._server.server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._server.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping:
                for key, _ in selector.select():
                    if key.fileobj is self._server.socket and not self._stopping:
                        self._server.handle_request()  # accepts, or gives up after the timeout


def start_api(config: ApiConfig, routes: Callable[[], Mapping[str, Handler]]) -> ApiServer | None:
    """Start the API when one is configured; an address in use raises OSError naming it."""
    if config.listen is None:
        return None
    try:
        server = ApiServer(config, routes())
    except OSError as error:
        raise OSError(error.errno, f"API address {config.listen}: {error.strerror}") from error
    server.start()
    return server
