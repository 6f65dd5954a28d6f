"""The kept-alive HTTP/1.1 client of the etcd gateway's short calls, against a scripted
server on a loopback socket (real etcd: tests/integration/test_etcd_*.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest

from rhizome import clock
from rhizome.etcd.connection import MemberConnections, Timeouts
from rhizome.etcd.endpoints import EndpointFailed

Reply = Callable[[socket.socket], bool]
"""Answers one request on a connection; False closes the connection afterwards."""

TIMEOUTS = Timeouts(connect=0.5, read=1.0)


def answer(raw: bytes, keep: bool = True) -> Reply:
    def reply(connection: socket.socket) -> bool:
        connection.sendall(raw)
        return keep

    return reply


class ScriptedServer:
    """Reads each request (headers and Content-Length body) and sends the next reply."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while self.replies:
            connection, _ = self.listener.accept()
            self.connections += 1
            with connection:
                while self.replies and self.read_request(connection):
                    if not self.replies.pop(0)(connection):
                        break

    def read_request(self, connection: socket.socket) -> bool:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(4096)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lengths = [line for line in head.lower().split(b"\r\n") if b"content-length" in line]
        length = int(lengths[0].split(b":")[1]) if lengths else 0
        while len(body) < length:
            body += connection.recv(4096)
        self.requests.append(head + b"\r\n\r\n" + body)
        return True


def call(server: ScriptedServer, connections: MemberConnections, timeouts: Timeouts = TIMEOUTS):
    return connections.request(server.endpoint, "POST", "/v3/kv/range", b"{}", {}, timeouts)


def test_a_content_length_answer_and_the_request_sent():
    server = ScriptedServer([answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")])
    result = call(server, MemberConnections(None))
    assert (result.status, result.body) == (200, b"{}")
    host = server.endpoint.removeprefix("http://")
    assert server.requests == [
        f"POST /v3/kv/range HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    ]


def test_a_chunked_answer_with_an_extension_and_a_trailer():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    raw += b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n"
    server = ScriptedServer([answer(raw)])
    assert call(server, MemberConnections(None)).body == b"abcde"


def test_one_connection_serves_call_after_call():
    ok = answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    server = ScriptedServer([ok, ok, ok])
    connections = MemberConnections(None)
    assert [call(server, connections).status for _ in range(3)] == [200, 200, 200]
    assert server.connections == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_a_connection_the_member_closes_is_not_reused(raw):
    server = ScriptedServer([answer(raw, keep=False), answer(raw, keep=False)])
    connections = MemberConnections(None)
    assert [call(server, connections).status for _ in range(2)] == [200, 200]
    assert server.connections == 2


def test_a_connection_closed_while_idle_is_replaced_before_the_call():
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    server = ScriptedServer([answer(ok, keep=False), answer(ok)])
    connections = MemberConnections(None)
    call(server, connections)
    time.sleep(0.1)  # the server has closed the first connection by now
    assert call(server, connections).status == 200
    assert server.connections == 2


def test_a_body_without_length_ends_with_the_connection():
    server = ScriptedServer([answer(b"HTTP/1.1 500 Oops\r\n\r\nno length", keep=False)])
    result = call(server, MemberConnections(None))
    assert (result.status, result.body) == (500, b"no length")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n", "malformed HTTP length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed HTTP length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed it mid-answer"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 HTTP headers"),
        (b"HTTP/1.1 200 OK\r\nContent-", "closed it mid-answer"),
        (b"HTTP/1.1 200 OK\r\n", "the member closed it"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70000, "line too long"),
    ],
)
def test_a_malformed_answer_fails_the_endpoint(raw, message):
    server = ScriptedServer([answer(raw, keep=False)])
    with pytest.raises(EndpointFailed, match=message):
        call(server, MemberConnections(None))


def test_a_member_that_does_not_answer_times_out_by_the_deadline():
    server = ScriptedServer([lambda connection: bool(time.sleep(2.0))])
    started = clock.monotonic()
    timeouts = Timeouts(connect=0.5, read=5.0, until=started + 0.3)
    with pytest.raises(EndpointFailed, match="timed out"):
        call(server, MemberConnections(None), timeouts)
    assert clock.monotonic() - started < 1.0


def test_a_passed_deadline_fails_before_connecting():
    server = ScriptedServer([answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")])
    with pytest.raises(EndpointFailed, match="deadline passed"):
        call(server, MemberConnections(None), Timeouts(0.5, 1.0, until=clock.monotonic() - 1))
    assert server.connections == 0


def test_a_refused_connection_says_so():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(EndpointFailed, match="cannot connect"):
        MemberConnections(None).request(f"http://127.0.0.1:{port}", "GET", "/", None, {}, TIMEOUTS)


def test_an_https_endpoint_without_tls_settings_fails_the_endpoint():
    server = ScriptedServer([answer(b"")])
    endpoint = server.endpoint.replace("http:", "https:")
    with pytest.raises(EndpointFailed, match="no TLS settings"):
        MemberConnections(None).request(endpoint, "GET", "/", None, {}, TIMEOUTS)
