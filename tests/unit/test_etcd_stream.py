"""A watch's streaming answer (rhizome/etcd/stream.py) against a scripted server on a
loopback socket (real etcd: tests/integration/test_etcd_client.py and the store tests)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from rhizome.etcd.connection import MemberConnections, Timeouts
from rhizome.etcd.endpoints import EndpointFailed
from rhizome.etcd.stream import Stream, open_stream
from tests.unit.test_etcd_connection import Reply, ScriptedServer, answer

CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def stream_of(replies: list[Reply], idle_timeout: float = 1.0) -> Stream:
    server = ScriptedServer(replies)
    return open_stream(
        MemberConnections(None), server.endpoint, "/v3/watch", b"{}", {},
        Timeouts(connect=0.5, read=idle_timeout),
    )  # fmt: skip


def slowly(*pieces: bytes, pause: float = 0.05, then_wait: float = 0.0) -> Reply:
    """Sends the pieces one by one, as the gateway flushes its messages."""

    def reply(connection: socket.socket) -> bool:
        for piece in pieces:
            connection.sendall(piece)
            time.sleep(pause)
        time.sleep(then_wait)
        return False

    return reply


def test_lines_split_across_chunks_come_out_whole():
    stream = stream_of([
        slowly(CHUNKED, chunk(b'{"a":1}\n{"b"'), chunk(b':2}\n'), chunk(b"\n"),
               chunk(b'{"c":3}\n'), b"0\r\n\r\n"),
    ])  # fmt: skip
    assert stream.status == 200
    assert list(stream) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    stream.close()


def test_silence_beyond_the_idle_timeout_breaks_the_stream():
    stream = stream_of([slowly(CHUNKED, chunk(b'{"a":1}\n'), then_wait=2.0)], idle_timeout=0.3)
    lines = iter(stream)
    assert next(lines) == b'{"a":1}'
    started = time.monotonic()
    with pytest.raises(EndpointFailed, match="the stream broke"):
        next(lines)
    assert time.monotonic() - started < 1.0
    stream.close()


def test_shutdown_from_another_thread_ends_a_blocked_read_at_once():
    stream = stream_of([slowly(CHUNKED, chunk(b'{"a":1}\n'), then_wait=5.0)], idle_timeout=10.0)
    lines = iter(stream)
    assert next(lines) == b'{"a":1}'
    threading.Timer(0.2, stream.shutdown).start()
    started = time.monotonic()
    with pytest.raises(EndpointFailed):
        next(lines)
    assert time.monotonic() - started < 1.0
    stream.close()
    stream.shutdown()  # on a closed stream: nothing happens


def test_an_error_answer_is_read_whole():
    body = b'{"error":"etcdserver: no leader","code":14}'
    raw = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    stream = stream_of([answer(raw)])
    assert (stream.status, stream.read()) == (503, body)
    stream.close()


def test_an_answer_that_is_not_chunked_is_no_watch():
    stream = stream_of([answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")])
    with pytest.raises(EndpointFailed, match="without a chunked body"):
        list(stream)
    stream.close()


def test_a_malformed_chunk_size_breaks_the_stream():
    stream = stream_of([slowly(CHUNKED, b"zz\r\n")])
    with pytest.raises(EndpointFailed, match="malformed HTTP length"):
        list(stream)
    stream.close()
