"""python-etcd's v2 client, sending through rhizome's endpoint rotation, timeouts and TLS.

python-etcd 0.4.5 builds the v2 requests (`write`, `read`, `refresh`,
`delete`) and turns the answers into results and exceptions; `V2Http`
replaces only how a request is sent (`api_execute`), because 0.4.5's own
sending does not fit:
- it reads headers with `getheader()`/`getheaders()`, which urllib3 2.6.0
  removed: the answer handed back is an `Answer` that reads `headers`;
- it lets urllib3 retry, so a timed-out compare-and-swap could be sent twice:
  here nothing is retried by urllib3, and only requests that did not reach a
  working member are sent to the next one;
- its member list (`allow_reconnect`) reads /v2/machines in the constructor
  and empties for good once every member failed: the rotation here is the v3
  client's (`EndpointRotation`), with a share of the caller's deadline per
  member.
Basic authentication (username, password) is python-etcd's own header.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import etcd
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ReadTimeoutError, SSLError

from rhizome import clock
from rhizome.etcd.endpoints import EndpointFailed, EndpointRotation
from rhizome.etcd.errors import EtcdUnavailable
from rhizome.etcd.stats import RequestStats
from rhizome.etcd.transport import EtcdSettings

try:  # importing etcd injects pyOpenSSL into urllib3 when it is installed: undo that
    from urllib3.contrib import pyopenssl

    pyopenssl.extract_from_urllib3()
except ImportError:
    pass


def connection_pool(settings: EtcdSettings) -> urllib3.PoolManager:
    """urllib3 connections (python-etcd's) with the settings' TLS files and no urllib3
    retries."""
    tls: dict[str, Any] = {}
    if settings.ca_file:
        tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": settings.ca_file}
    if settings.cert_file:
        tls |= {"cert_file": settings.cert_file, "key_file": settings.key_file}
    return urllib3.PoolManager(num_pools=8, maxsize=8, retries=False, **tls)


OTHER_MEMBER_MAY_SERVE = (300, 301)
"""v2 error codes after which another member may succeed: raft internal error, election."""


class Answer:
    """A finished HTTP answer, as python-etcd reads it."""

    def __init__(self, status: int, data: bytes, headers: Mapping[str, str]) -> None:
        self.status = status
        self.data = data
        self.headers = headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def getheaders(self) -> Mapping[str, str]:
        return self.headers


class V2Http(etcd.Client):  # type: ignore[misc]
    """python-etcd's client whose requests go through `EndpointRotation` (thread-safe)."""

    stats: RequestStats = None  # type: ignore[assignment]
    """Our request counters (set per instance), in place of python-etcd's `stats` property."""

    def __init__(self, settings: EtcdSettings) -> None:
        first = urlsplit(settings.endpoints[0])
        super().__init__(
            host=first.hostname, port=first.port, protocol=first.scheme,
            read_timeout=settings.request_timeout, allow_redirect=False,
            username=settings.username, password=settings.password,
        )  # fmt: skip
        self.settings = settings
        self.rotation = EndpointRotation(
            settings.endpoints, settings.endpoint_order, settings.request_timeout
        )
        self.http.clear()  # python-etcd's own pool, which would retry
        self.http: urllib3.PoolManager = connection_pool(settings)
        self.stats = RequestStats()
        self._local = threading.local()

    def close(self) -> None:
        self.http.clear()

    @contextmanager
    def within(self, deadline: float | None) -> Iterator[None]:
        """`with http.within(deadline):` the requests of this thread answer by `deadline`."""
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = previous

    def on_open(self, callback: Callable[[Any], None] | None) -> None:
        """Hand this thread's next open responses to `callback` (a watch's close() uses it)."""
        self._local.on_open = callback

    def api_execute(
        self, path: str, method: str, params: dict[str, Any] | None = None, timeout: Any = None
    ) -> Answer:
        """Send one request to the first member that serves it; etcd errors raise
        python-etcd's exceptions, no member answering raises EtcdUnavailable."""
        started = clock.monotonic()
        succeeded = False
        try:
            answer = self._send_to_members(path, method, params or {}, timeout)
            succeeded = answer.status < 500
        finally:
            self.stats.record(started, succeeded)
        return self._handle_server_response(answer)  # type: ignore[no-any-return]

    def _send_to_members(
        self, path: str, method: str, params: dict[str, Any], timeout: Any
    ) -> Answer:
        deadline = getattr(self._local, "deadline", None)
        watching = params.get("wait") == "true"
        failures = []
        endpoints = self.rotation.in_order()
        for position, endpoint in enumerate(endpoints):
            until = self.rotation.attempt_deadline(deadline, len(endpoints) - position)
            try:
                answer = self._send(endpoint + path, method, params, self._timeout(timeout, until))
            except ReadTimeoutError as error:
                if watching:
                    raise etcd.EtcdWatchTimedOut("the watch saw no change", cause=error) from error
                failures.append(f"{endpoint}: timed out")
            except EndpointFailed as failure:
                failures.append(f"{endpoint}: {failure}")
            else:
                if not other_member_may_serve(answer):
                    self.rotation.prefer(endpoint)
                    return answer
                failures.append(f"{endpoint}: HTTP {answer.status} {answer.data[:120]!r}")
            self.rotation.demote(endpoint)
        raise EtcdUnavailable("no etcd endpoint answered (" + "; ".join(failures) + ")")

    def _timeout(self, timeout: Any, until: float | None) -> urllib3.Timeout:
        read = self.settings.request_timeout if timeout is None else float(timeout)
        return request_timeouts(self.settings.connect_timeout, read, until)

    def _send(self, url: str, method: str, params: dict[str, Any], timeout: Any) -> Answer:
        arguments: dict[str, Any] = {
            "fields": params, "timeout": timeout, "retries": False, "redirect": False,
            "headers": self._get_headers(), "preload_content": False,
        }  # fmt: skip
        if method in (self._MPUT, self._MPOST):
            arguments["encode_multipart"] = False
        try:
            response = self.http.request(method, url, **arguments)
            callback = getattr(self._local, "on_open", None)
            if callback is not None:
                callback(response)
            try:
                data = response.read()
            finally:
                response.release_conn()
        except ReadTimeoutError:
            raise
        except NewConnectionError as error:
            raise EndpointFailed(f"cannot connect ({error.__class__.__name__})") from error
        except SSLError as error:
            raise EndpointFailed(f"TLS handshake failed ({error}); check the CA file") from error
        except HTTPError as error:
            raise EndpointFailed(f"connection failed ({error.__class__.__name__})") from error
        return Answer(response.status, data, response.headers)


def other_member_may_serve(answer: Answer) -> bool:
    """A 5xx answer, or an error code after which another member may succeed."""
    if answer.status < 400:
        return False
    try:
        code = json.loads(answer.data).get("errorCode")
    except (ValueError, AttributeError):
        return answer.status >= 500
    return code in OTHER_MEMBER_MAY_SERVE or (code is None and answer.status >= 500)


def request_timeouts(connect: float, read: float, until: float | None) -> urllib3.Timeout:
    """Connect and read timeouts; with `until`, the whole request ends by then."""
    if until is None:
        return urllib3.Timeout(connect=connect, read=read)
    left = max(until - clock.monotonic(), 0.01)
    return urllib3.Timeout(connect=min(connect, left), read=min(read, left), total=left)
