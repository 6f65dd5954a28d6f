"""Reading keepalive answers on the renewal channel (rhizome.etcd.keepalive): only a
whole 200 answer that renews our lease counts; everything else is left to the transport."""

from __future__ import annotations

import socket
import time

import pytest

from rhizome.etcd import EtcdClient, EtcdSettings, EtcdUnavailable
from rhizome.etcd.endpoints import EndpointFailed
from rhizome.etcd.keepalive import answer_complete, renewed_ttl

LEASE = 7587899419081935109
BODY = (
    b'{"result":{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437",'
    b'"revision":"1","raft_term":"2"},"ID":"7587899419081935109","TTL":"5"}}\n'
)
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 07 Dec 2026 18:00:00 GMT\r\n"
)
CHUNKED = (
    HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n"
)
SIZED = HEAD + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY


@pytest.mark.parametrize("answer", [CHUNKED, SIZED], ids=["chunked", "content-length"])
def test_a_whole_answer_renewing_our_lease_gives_its_ttl(answer):
    assert answer_complete(answer)
    assert renewed_ttl(answer, LEASE) == 5


@pytest.mark.parametrize("answer", [CHUNKED, SIZED], ids=["chunked", "content-length"])
def test_an_answer_cut_anywhere_is_not_complete(answer):
    for end in range(len(answer)):
        assert not answer_complete(answer[:end]), answer[:end]


def test_an_answer_for_another_lease_renews_nothing():
    assert renewed_ttl(CHUNKED, LEASE + 1) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"result":{"header":{"revision":"1"},"ID":"7587899419081935109"}}\n',  # expired
        b'{"result":{"header":{"revision":"1"},"ID":"7587899419081935109","TTL":"-1"}}\n',
        b'{"result":{"header":{"revision":"1"},"ID":"7587899419081935109","TTL":"0"}}\n',
    ],
    ids=["no-ttl", "negative", "zero"],
)
def test_an_expired_lease_is_left_to_the_transport(body):
    answer = HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body
    assert answer_complete(answer)
    assert renewed_ttl(answer, LEASE) is None


def test_an_error_status_is_left_to_the_transport_even_with_a_ttl_in_it():
    answer = SIZED.replace(b"200 OK", b"401 Unauthorized", 1)
    assert renewed_ttl(answer, LEASE) is None
    error = b'{"error":"etcdserver: invalid auth token","code":16}'
    assert renewed_ttl(b"HTTP/1.1 401 Unauthorized\r\n\r\n" + error, LEASE) is None


def test_an_answer_without_a_length_or_with_a_malformed_one_fails_the_member():
    with pytest.raises(EndpointFailed, match="without a length"):
        answer_complete(HEAD + b"\r\n" + BODY)
    with pytest.raises(EndpointFailed, match="malformed length"):
        answer_complete(HEAD + b"Content-Length: 1x\r\n\r\n" + BODY)


def test_a_silent_single_member_is_asked_twice_within_the_deadline():
    """The channel leaves half the budget to the transport's fresh connection (a closed
    connection is worth retrying), and the two attempts end by the renewal's deadline."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = EtcdClient(EtcdSettings(endpoints=(endpoint,), request_timeout=2.0))
        client.transport._api_prefixes[endpoint] = "/v3"  # as if a call had learnt it
        started = time.monotonic()
        with pytest.raises(EtcdUnavailable) as raised:
            client.keepalive(LEASE, deadline=started + 1.0)
        took = time.monotonic() - started
        client.close()
    assert str(raised.value).count(endpoint) == 2, raised.value
    assert 0.9 < took < 1.15  # without the half left: 1.25 (a last 0.25 s attempt)
