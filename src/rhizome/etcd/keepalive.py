"""Lease renewals on a connection of their own, with the request encoded once.

Every agent renews a lease every second, and each renewal is a thread waking
after a second of sleep. On the virtual machines we measured, what such a
wake-up costs grows with the code and data it touches, since other work has
filled the caches in the meantime: a keepalive through `EtcdTransport.call`
took a median 6.4 ms of CPU after a second's sleep (0.2 ms back to back),
through this channel 1.9 ms (docs/benchmarks.md, "Seventh round").

So a renewal sends bytes prepared once per lease, member and token, on a
connection no other call uses, and reads the answer with the least parsing
that tells a renewed lease from anything else. Anything else (an error
status, an answer it cannot read, a timeout, a closed connection) closes the
channel and is left to the transport, which tries every member, authenticates
again and raises what the caller expects: the channel makes a renewal
cheaper, never different. When other members could answer, the channel's
member gets only CHANNEL_PATIENCE to answer, not the half of the renewal's
budget the transport gives a first attempt: a keepalive is answered in
milliseconds, and the other members may need the time (after a leader
freeze, one of them left a keepalive unanswered for 0.6 s while the other
answered at once).
"""

from __future__ import annotations

import json
import logging
import threading

from rhizome import clock
from rhizome.etcd.connection import Connection, closed_on_failure
from rhizome.etcd.endpoints import EndpointFailed
from rhizome.etcd.transport import EndpointFailure, EtcdTransport

log = logging.getLogger(__name__)

KEEPALIVE_PATH = "/lease/keepalive"
MAX_ANSWER = 16384
"""A keepalive answer is about 300 bytes; anything longer is not one."""
LAST_CHUNK = b"\r\n0\r\n\r\n"
CHANNEL_PATIENCE = 0.25
"""Seconds the channel waits for its member's answer while other members could give one
(with the transport's share, a frozen member took 0.75 s of a 1.5 s renewal budget)."""


def answer_complete(data: bytes) -> bool:
    """Whether `data` holds a whole HTTP/1.1 answer (chunked or with a Content-Length)."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = data[:head_end].lower()
    if b"\r\ntransfer-encoding: chunked" in head:
        return data.endswith(LAST_CHUNK)
    start = head.find(b"\r\ncontent-length:")
    if start < 0:
        raise EndpointFailed("answered a keepalive without a length")
    end = head.find(b"\r\n", start + 2)
    length = head[start + 17 : None if end < 0 else end].strip()
    if not length.isdigit():
        raise EndpointFailed(f"answered a keepalive with a malformed length ({length[:20]!r})")
    return len(data) - head_end - 4 >= int(length)


def renewed_ttl(answer: bytes, lease_id: int) -> int | None:
    """The TTL a complete keepalive answer grants `lease_id`; None for any other answer
    (an error, an expired lease, a format this reading does not know)."""
    if not answer.startswith(b"HTTP/1.1 200 "):
        return None
    marker = b'"ID":"%d","TTL":"' % lease_id
    start = answer.find(marker)
    if start < 0:
        return None
    start += len(marker)
    digits = answer[start : answer.find(b'"', start)]
    ttl = int(digits) if digits.isdigit() else 0
    return ttl if ttl > 0 else None


class KeepaliveChannel:
    """One client's lease renewals, one at a time (another thread at the same moment
    goes through the transport)."""

    def __init__(self, transport: EtcdTransport) -> None:
        self.transport = transport
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self.endpoint: str | None = None
        """The member the channel renews on (None: no connection yet, or it failed)."""
        self._lease_id: int | None = None
        self._request = b""

    def renew(self, lease_id: int, deadline: float | None) -> int | EndpointFailure | None:
        """The TTL etcd granted `lease_id`; otherwise the caller renews through the
        transport, told which member did not answer (EndpointFailure) or not (None)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._renew(lease_id, deadline)
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _renew(self, lease_id: int, deadline: float | None) -> int | EndpointFailure | None:
        rotation = self.transport.rotation
        # At most an endpoint's share, and half of the time left with a single endpoint:
        # the transport tries that one again on a fresh connection, within the deadline.
        until = rotation.attempt_deadline(deadline, max(len(rotation.endpoints), 2))
        until = until if until is not None else clock.monotonic() + rotation.request_timeout
        connection = self._prepared(lease_id, until)
        if connection is None or self.endpoint is None:
            return None
        started = clock.monotonic()
        if len(rotation.endpoints) > 1:
            until = min(until, started + CHANNEL_PATIENCE)
        try:
            with closed_on_failure(connection):
                answer = exchange(connection, self._request, until)
        except EndpointFailed as error:
            failure = EndpointFailure(self.endpoint, str(error))
            log.debug("keepalive on %s failed: %s", failure.endpoint, failure.reason)
            rotation.demote(failure.endpoint)
            self._drop()
            self.transport.stats.record(started, succeeded=False)
            return failure
        ttl = renewed_ttl(answer, lease_id)
        if ttl is None:  # the transport asks again and reads the error (or stale token)
            self._drop()
            return None
        self.transport.stats.record(started, succeeded=True)
        if b"\r\nconnection: close" in answer.lower():
            self._drop()
        return ttl

    def _prepared(self, lease_id: int, until: float) -> Connection | None:
        """The channel's connection with the request for `lease_id` ready; None until the
        transport has learnt the member's API prefix (and token), or when it cannot connect."""
        if self._connection is not None and self._lease_id == lease_id:
            return self._connection
        endpoint = self.endpoint or self.transport.rotation.in_order()[0]
        body = json.dumps({"ID": str(lease_id)}).encode()
        request = self.transport.prepared_post(endpoint, KEEPALIVE_PATH, body)
        if request is None:
            return None
        if self._connection is None:
            try:
                self._connection = self.transport.connect(endpoint, until)
            except EndpointFailed as failure:
                log.debug("keepalive channel to %s: %s", endpoint, failure)
                return None
        self.endpoint, self._lease_id, self._request = endpoint, lease_id, request
        return self._connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self.endpoint = self._lease_id = None
        if connection is not None:
            connection.close()


def exchange(connection: Connection, request: bytes, until: float) -> bytes:
    """Send `request` and read the whole answer by `until`."""
    sock = connection.sock
    sock.settimeout(max(until - clock.monotonic(), 0.001))
    sock.sendall(request)
    answer = b""
    while not answer_complete(answer):
        left = until - clock.monotonic()
        if left <= 0:
            raise EndpointFailed("timed out waiting for the answer")
        if len(answer) > MAX_ANSWER:
            raise EndpointFailed("answered a keepalive with more than a keepalive's answer")
        if answer:
            sock.settimeout(left)
        received = sock.recv(MAX_ANSWER)
        if not received:
            raise EndpointFailed("connection failed (the member closed it)")
        answer += received
    return answer
