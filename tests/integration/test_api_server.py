"""The API server's sockets: plain, TLS, bearer token and client certificates (real sockets)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from rhizome.api.config import ApiConfig, ListenAddress
from rhizome.api.requests import REQUEST_TIMEOUT, json_page
from rhizome.api.server import MAX_CONNECTIONS, ApiServer
from tests.harness.cluster import wait_for
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.tls import TlsFiles, create_tls_files

pytestmark = pytest.mark.integration
TOKEN = "a-long-random-api-token"
ROUTES = {"/health": lambda request: json_page(200, {"ok": True})}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return create_tls_files(tmp_path_factory.mktemp("api-tls"))


@contextlib.contextmanager
def serve(**settings: object) -> Iterator[ApiServer]:
    config = ApiConfig(ListenAddress(LOOPBACK, free_port()), **settings)  # type: ignore[arg-type]
    server = ApiServer(config, ROUTES)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def request(port: int, head: str, context: ssl.SSLContext | None = None) -> bytes:
    with socket.create_connection((LOOPBACK, port), timeout=5) as raw:
        connection = context.wrap_socket(raw, server_hostname=LOOPBACK) if context else raw
        connection.sendall(f"GET /health HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode())
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
        return answer


def answers_in_plain_text(port: int) -> bool:
    try:
        return request(port, f"Authorization: Bearer {TOKEN}\r\n").startswith(b"HTTP/")
    except ConnectionResetError:
        return False


def client_context(tls: TlsFiles, certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    if certificate:
        context.load_cert_chain(str(tls.client_cert_file), str(tls.client_key_file))
    return context


def test_plain_http_answers_and_a_silent_client_costs_one_thread_only():
    with serve() as server:
        silent = socket.create_connection((LOOPBACK, server.port))  # never sends anything
        try:
            assert request(server.port, "").startswith(b"HTTP/1.1 200 OK")
        finally:
            silent.close()


def test_a_flood_of_silent_clients_is_refused_beyond_the_cap_and_costs_no_thread():
    with serve() as server:
        port = server.port
        silent = [socket.create_connection((LOOPBACK, port)) for _ in range(MAX_CONNECTIONS)]
        try:
            time.sleep(0.5)
            threads = threading.active_count()
            assert request_or_none(port) is None, "answered beyond the cap"
            assert threading.active_count() == threads, "a thread for a connection beyond the cap"
        finally:
            for connection in silent:
                connection.close()
        wait_for(lambda: request_or_none(port), REQUEST_TIMEOUT + 2, "a free slot")


def request_or_none(port: int) -> bytes | None:
    try:
        answer = request(port, "")
    except (ConnectionResetError, BrokenPipeError):
        return None
    return answer if answer.startswith(b"HTTP/1.1 200") else None


def test_tls_with_a_token_refuses_plain_text_and_requests_without_the_token(tls):
    with serve(token=TOKEN, cert_file=str(tls.server_cert_file),
               key_file=str(tls.server_key_file)) as server:  # fmt: skip
        context = client_context(tls, certificate=False)
        assert request(server.port, "", context).startswith(b"HTTP/1.1 401")
        wrong = request(server.port, "Authorization: Bearer guess\r\n", context)
        assert wrong.startswith(b"HTTP/1.1 401")
        good = request(server.port, f"Authorization: Bearer {TOKEN}\r\n", context)
        assert good.startswith(b"HTTP/1.1 200 OK")
        assert not answers_in_plain_text(server.port)


def test_client_certificates_are_required_when_a_client_ca_is_set(tls):
    with serve(cert_file=str(tls.server_cert_file), key_file=str(tls.server_key_file),
               client_ca_file=str(tls.ca_file)) as server:  # fmt: skip
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            request(server.port, "", client_context(tls, certificate=False))
        answer = request(server.port, "", client_context(tls, certificate=True))
        assert answer.startswith(b"HTTP/1.1 200 OK")


def thread_runs(native_id: int) -> int:
    """How many times the kernel ran this thread of ours (schedstat's third field)."""
    with open(f"/proc/self/task/{native_id}/schedstat") as schedstat:
        return int(schedstat.read().split()[2])


def test_an_idle_server_sleeps_until_a_client_comes_and_stops_at_once():
    with serve() as server:
        thread = next(t for t in threading.enumerate() if t.name == "api-server")
        assert thread.native_id is not None
        assert request(server.port, "").startswith(b"HTTP/1.1 200 OK")
        time.sleep(0.2)
        runs = thread_runs(thread.native_id)
        time.sleep(1.5)  # socketserver's serve_forever would have woken three times
        assert thread_runs(thread.native_id) == runs
        assert request(server.port, "").startswith(b"HTTP/1.1 200 OK")
        stopping = time.monotonic()
    assert not thread.is_alive() and time.monotonic() - stopping < 1
