"""HTTP transport to etcd's v3 JSON gateway: endpoints, failover, auth and TLS.

One `EtcdTransport` serves one etcd cluster. Each call tries the endpoint that
answered last, then the others in order, each once, with explicit connect and
read timeouts; so a call fails within about
``len(endpoints) * (connect_timeout + request_timeout)``. The order of the
endpoints and the share of a deadline each gets are rhizome.etcd.endpoints'.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from rhizome import clock
from rhizome.etcd.connection import (
    Answer,
    Connection,
    MemberConnections,
    Timeouts,
    encode_request,
)
from rhizome.etcd.endpoints import (
    EndpointFailed,
    EndpointRotation,
    time_for_another_attempt,
)
from rhizome.etcd.errors import (
    EtcdAuthError,
    EtcdConfigurationError,
    EtcdRequestError,
    EtcdUnavailable,
)
from rhizome.etcd.stats import RequestStats
from rhizome.etcd.stream import Stream, open_stream

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

# gRPC status codes that etcd returns through the gateway.
UNAUTHENTICATED = 16
PERMISSION_DENIED = 7
UNAVAILABLE = 14
# Errors after which another member may well succeed.
MEMBER_TROUBLE = ("leader changed", "no leader", "request timed out", "not capable")
# Errors that mean our token went stale (tokens are per member, and expire).
STALE_TOKEN = ("invalid auth token", "auth token is invalid", "user name is empty")
ENDPOINT_ORDERS = ("spread", "listed")


@dataclass(frozen=True)
class EndpointFailure:
    """An endpoint that did not answer a call, and why."""

    endpoint: str
    reason: str


@dataclass(frozen=True)
class EtcdSettings:
    """How to reach one etcd cluster. The password is never shown by repr()."""

    endpoints: tuple[str, ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    connect_timeout: float = 0.5
    request_timeout: float = 2.0
    endpoint_order: str = "spread"
    """"spread": start at a random endpoint; "listed": at the first one listed."""

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise EtcdConfigurationError("no etcd endpoint given; set at least one http(s) URL")
        for endpoint in self.endpoints:
            check_endpoint(endpoint)
        if (self.username is None) != (self.password is None):
            raise EtcdConfigurationError("etcd username and password must be given together")
        if (self.cert_file is None) != (self.key_file is None):
            raise EtcdConfigurationError("etcd cert_file and key_file must be given together")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise EtcdConfigurationError(f"etcd {name} {path!r} does not exist")
        if self.connect_timeout <= 0 or self.request_timeout <= 0:
            raise EtcdConfigurationError("etcd connect_timeout and request_timeout must be > 0")
        if self.endpoint_order not in ENDPOINT_ORDERS:
            raise EtcdConfigurationError(
                f"etcd endpoint_order {self.endpoint_order!r} is unknown; use"
                ' "spread" (each agent starts at a random endpoint) or "listed"'
            )


def check_endpoint(endpoint: str) -> None:
    """Reject anything but scheme://host:port, naming the endpoint and the fix."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise EtcdConfigurationError(
            f"etcd endpoint {endpoint!r} is not of the form http(s)://HOST:PORT"
        )
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise EtcdConfigurationError(f"etcd endpoint {endpoint!r} has no valid port")


class EtcdTransport:
    """Sends JSON requests to the gateway, failing over between endpoints."""

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        self.rotation = EndpointRotation(
            settings.endpoints, settings.endpoint_order, settings.request_timeout
        )
        self._api_prefixes: dict[str, str] = {}
        self._tokens: dict[str, str] = {}
        self._connections = MemberConnections(tls_contexts(settings))
        self.stats = RequestStats()

    def close(self) -> None:
        self._connections.close()

    def call(
        self,
        path: str,
        payload: JsonObject,
        deadline: float | None = None,
        tried: EndpointFailure | None = None,
        twice: bool = False,
    ) -> JsonObject:
        """POST `payload` to `path` (under the API prefix) on the first endpoint that works.

        With a `deadline` (rhizome.clock.monotonic() time), each endpoint gets
        only its `attempt_timeout` share of the time left. An endpoint already
        `tried` for this call (by rhizome.etcd.keepalive) is not tried again
        while there are others, and its failure is part of the error.
        `twice` (keepalives, with a deadline and several endpoints): the
        endpoints are asked a second time if need be, every attempt getting an
        equal share; a follower holds a keepalive it forwarded to a frozen
        leader for seconds, but answers one sent after the election at once.
        """
        started = clock.monotonic()
        succeeded = False
        try:
            response = self._call_endpoints(path, payload, deadline, tried, twice)
            succeeded = True
            return response
        finally:
            self.stats.record(started, succeeded)

    def _call_endpoints(
        self,
        path: str,
        payload: JsonObject,
        deadline: float | None,
        tried: EndpointFailure | None,
        twice: bool,
    ) -> JsonObject:
        failures = [] if tried is None else [f"{tried.endpoint}: {tried.reason}"]
        endpoints = self.rotation.in_order()
        if tried is not None and len(endpoints) > 1:
            endpoints = [endpoint for endpoint in endpoints if endpoint != tried.endpoint]
        twice = twice and deadline is not None and len(self.rotation.endpoints) > 1
        attempts = endpoints * 2 if twice else endpoints
        for position, endpoint in enumerate(attempts):
            if position == len(endpoints) and not time_for_another_attempt(deadline):
                break
            until = self.rotation.attempt_deadline(deadline, len(attempts) - position, twice)
            try:
                response = self._post_json(endpoint, path, payload, until)
            except EndpointFailed as failure:
                log.debug("etcd endpoint %s failed: %s", endpoint, failure)
                failures.append(f"{endpoint}: {failure}")
                self.rotation.demote(endpoint)
                continue
            self.rotation.prefer(endpoint)
            return response
        raise EtcdUnavailable("no etcd endpoint answered (" + "; ".join(failures) + ")")

    def open_stream(self, path: str, payload: JsonObject, idle_timeout: float) -> Stream:
        """Open a streaming POST (a watch); reads time out after `idle_timeout` of silence."""
        failures = []
        for endpoint in self.rotation.in_order():
            try:
                response = self._open(endpoint, path, payload, idle_timeout)
                if response.status != 200:
                    try:
                        body = response.read()
                    finally:
                        response.close()
                    raise_for_error(endpoint, response.status, body)
            except EndpointFailed as failure:  # e.g. "no leader" while a member restarts
                failures.append(f"{endpoint}: {failure}")
                self.rotation.demote(endpoint)
                continue
            self.rotation.prefer(endpoint)
            return response
        raise EtcdUnavailable("no etcd endpoint accepted the watch (" + "; ".join(failures) + ")")

    def _post_json(
        self, endpoint: str, path: str, payload: JsonObject, until: float | None
    ) -> JsonObject:
        body = json.dumps(payload).encode()
        answer = self._post(endpoint, path, body, until)
        if answer.status != 200 and self._is_stale_token(answer.body):
            log.info("etcd token for %s is no longer valid; authenticating again", endpoint)
            self._tokens.pop(endpoint, None)
            answer = self._post(endpoint, path, body, until)
        if answer.status != 200:
            raise_for_error(endpoint, answer.status, answer.body)
        return decode_json(endpoint, answer.body)

    def _is_stale_token(self, body: bytes) -> bool:
        if self.settings.username is None:
            return False
        return any(marker in body.decode("utf-8", "replace") for marker in STALE_TOKEN)

    def _post(self, endpoint: str, path: str, body: bytes, until: float | None) -> Answer:
        """One short POST under the API prefix, with our token, on a kept-alive connection."""
        full_path = self._api_prefix(endpoint, until) + path
        headers = self._headers(endpoint, until)
        return self._connections.request(
            endpoint, "POST", full_path, body, headers, self._timeouts(until)
        )

    def _open(self, endpoint: str, path: str, payload: JsonObject, idle_timeout: float) -> Stream:
        """A streaming POST on a connection of its own (its reads can be cut from another
        thread: Stream.shutdown)."""
        full_path = self._api_prefix(endpoint, None) + path
        timeouts = Timeouts(self.settings.connect_timeout, idle_timeout)
        body = json.dumps(payload).encode()
        return open_stream(
            self._connections, endpoint, full_path, body, self._headers(endpoint, None), timeouts
        )

    def prepared_post(self, endpoint: str, path: str, body: bytes) -> bytes | None:
        """The encoded POST of `body` to `path` on `endpoint`, or None until a call has
        learnt the member's API prefix (and token) (rhizome.etcd.keepalive)."""
        prefix = self._api_prefixes.get(endpoint)
        token = "" if self.settings.username is None else self._tokens.get(endpoint)
        if prefix is None or token is None:
            return None
        host = self._connections.member(endpoint).host_header
        return encode_request("POST", prefix + path, host, json_headers(token), body)

    def connect(self, endpoint: str, until: float | None) -> Connection:
        """A new connection to `endpoint` that the caller keeps (and closes)."""
        return self._connections.connect(self._connections.member(endpoint), self._timeouts(until))

    def _headers(self, endpoint: str, until: float | None) -> dict[str, str]:
        return json_headers(self._token(endpoint, until))

    def _timeouts(self, until: float | None) -> Timeouts:
        return Timeouts(self.settings.connect_timeout, self.settings.request_timeout, until)

    def _api_prefix(self, endpoint: str, until: float | None) -> str:
        """The v3 gateway prefix, chosen from the cluster version (/v3 for etcd >= 3.4)."""
        known = self._api_prefixes.get(endpoint)
        if known:
            return known
        answer = self._connections.request(
            endpoint, "GET", "/version", None, {}, self._timeouts(until)
        )
        if answer.status != 200:
            raise EndpointFailed(f"GET /version answered HTTP {answer.status}")
        versions = decode_json(endpoint, answer.body)
        version = versions.get("etcdcluster") or ""
        if not version[:1].isdigit():
            version = versions.get("etcdserver") or ""
        prefix = api_prefix_for(version)
        self._api_prefixes[endpoint] = prefix
        return prefix

    def _token(self, endpoint: str, until: float | None) -> str | None:
        if self.settings.username is None:
            return None
        token = self._tokens.get(endpoint)
        if token is None:
            token = self._authenticate(endpoint, until)
            self._tokens[endpoint] = token
        return token or None

    def _authenticate(self, endpoint: str, until: float | None) -> str:
        """A token for this member ('' when the cluster has auth disabled)."""
        path = self._api_prefix(endpoint, until) + "/auth/authenticate"
        credentials = {"name": self.settings.username, "password": self.settings.password}
        body = json.dumps(credentials).encode()
        headers = {"Content-Type": "application/json"}
        answer = self._connections.request(
            endpoint, "POST", path, body, headers, self._timeouts(until)
        )
        if answer.status == 200:
            return str(decode_json(endpoint, answer.body).get("token", ""))
        message = error_message(answer.body)
        if "authentication is not enabled" in message:
            return ""
        if "authentication failed" in message or "invalid user" in message:
            raise EtcdAuthError(
                f"etcd at {endpoint} rejected user {self.settings.username!r}: wrong user name"
                " or password; check the etcd username and the password file"
            )
        raise_for_error(endpoint, answer.status, answer.body)
        return ""


def json_headers(token: str | None) -> dict[str, str]:
    """The headers of a JSON request, with the member's auth token when there is one."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = token
    return headers


def tls_contexts(settings: EtcdSettings) -> Callable[[], ssl.SSLContext] | None:
    """What makes the TLS context of each new connection to an https endpoint (None:
    every endpoint is plain http). The files are loaded once here, so that one that
    cannot be read is a configuration error at start, then again for each new
    connection, so that renewed certificates are used without a restart."""
    if not any(endpoint.startswith("https:") for endpoint in settings.endpoints):
        return None
    try:
        tls_context(settings)
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        raise EtcdConfigurationError(
            f"etcd TLS files cannot be loaded ({error}); check ca_file, cert_file and key_file"
        ) from error
    return partial(tls_context, settings)


def tls_context(settings: EtcdSettings) -> ssl.SSLContext:
    """The settings' CA (else the system's) and client certificate, when one is given."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.cert_file:
        context.load_cert_chain(settings.cert_file, settings.key_file)
    return context


def api_prefix_for(version: str) -> str:
    """Map an etcd version string to its JSON gateway prefix."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return "/v3"
    if (major, minor) >= (3, 4):
        return "/v3"
    if (major, minor) == (3, 3):
        return "/v3beta"
    return "/v3alpha"


def decode_json(endpoint: str, body: bytes) -> JsonObject:
    try:
        decoded = json.loads(body)
    except ValueError as error:
        raise EndpointFailed(f"answered with something that is not JSON ({error})") from error
    if not isinstance(decoded, dict):
        raise EndpointFailed("answered with JSON that is not an object")
    return decoded


def error_message(body: bytes) -> str:
    try:
        decoded = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(decoded, dict):
        return str(decoded.get("message") or decoded.get("error") or decoded)
    return str(decoded)


def error_code(body: bytes) -> int:
    try:
        decoded = json.loads(body)
    except ValueError:
        return 0
    return int(decoded.get("code", 0)) if isinstance(decoded, dict) else 0


def raise_for_error(endpoint: str, status: int, body: bytes) -> None:
    """Turn an error answer into the right exception (EndpointFailed means: try another)."""
    message = error_message(body)
    code = error_code(body)
    if code == UNAVAILABLE or status >= 502 or any(part in message for part in MEMBER_TROUBLE):
        raise EndpointFailed(f"HTTP {status}: {message}")
    if code in (UNAUTHENTICATED, PERMISSION_DENIED) or "permission denied" in message:
        raise EtcdAuthError(
            f"etcd at {endpoint} refused the request: {message}; check the etcd user and its roles"
        )
    if "user name is empty" in message:
        raise EtcdAuthError(
            f"etcd at {endpoint} requires authentication; configure an etcd username and password"
        )
    raise EtcdRequestError(f"etcd at {endpoint} answered HTTP {status}: {message}", code)
