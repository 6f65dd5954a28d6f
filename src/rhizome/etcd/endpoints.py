"""Which etcd endpoint to ask next, and how long it may take (both etcd APIs).

Each call tries the endpoint that answered last, then the others in order,
each once (a keepalive: twice, see `EtcdTransport.call`). An endpoint that
failed is not tried first again: the next one is, until another answers. A
call that must answer by a deadline gives each endpoint only part of the
time left (see `attempt_timeout`), so that a frozen or black-holed member
leaves time to ask the next one. Each rotation starts at a random endpoint
(`endpoint_order = "spread"`), so that one bad member does not hit every
agent at once.
"""

from __future__ import annotations

import secrets
import threading

from rhizome import clock

MINIMUM_ATTEMPT_TIMEOUT = 0.25
"""Seconds an endpoint gets at least, even when the caller's deadline has passed."""


class EndpointFailed(Exception):
    """One endpoint could not serve the call; another one may."""


def attempt_timeout(
    request_timeout: float, time_left: float | None, endpoints_left: int, equal: bool = False
) -> float:
    """Seconds one endpoint may take when `time_left` remain until the caller's deadline.

    Without a deadline, the configured request timeout. With one, half of the
    time left while another endpoint remains to be tried (so that a frozen or
    black-holed member still leaves half the budget to the others), all of it
    for the last one; with `equal`, the same share for each attempt left.
    Never more than the request timeout, never less than MINIMUM_ATTEMPT_TIMEOUT.
    """
    if time_left is None:
        return request_timeout
    if equal:
        share = time_left / max(endpoints_left, 1)
    else:
        share = time_left if endpoints_left <= 1 else time_left / 2
    return min(request_timeout, max(share, MINIMUM_ATTEMPT_TIMEOUT))


def time_for_another_attempt(deadline: float | None) -> bool:
    """Whether a call due by `deadline` (None: none) has time to ask an endpoint again."""
    return deadline is None or deadline - clock.monotonic() >= MINIMUM_ATTEMPT_TIMEOUT


def rotated(endpoints: list[str], first: int) -> list[str]:
    """The endpoints starting at index `first`, then the others in order."""
    return endpoints[first:] + endpoints[:first]


class EndpointRotation:
    """The endpoints of one etcd cluster in the order the next call tries them (thread-safe)."""

    def __init__(self, endpoints: tuple[str, ...], order: str, request_timeout: float) -> None:
        self.endpoints = [endpoint.rstrip("/") for endpoint in endpoints]
        self.request_timeout = request_timeout
        self._preferred = secrets.randbelow(len(self.endpoints)) if order == "spread" else 0
        self._lock = threading.Lock()

    def in_order(self) -> list[str]:
        with self._lock:
            first = self._preferred
        return rotated(self.endpoints, first)

    def prefer(self, endpoint: str) -> None:
        with self._lock:
            self._preferred = self.endpoints.index(endpoint)

    def demote(self, endpoint: str) -> None:
        """A failed endpoint is not tried first again (by any thread) until it answers."""
        with self._lock:
            failed = self.endpoints.index(endpoint)
            if self._preferred == failed:
                self._preferred = (failed + 1) % len(self.endpoints)

    def attempt_deadline(
        self, deadline: float | None, endpoints_left: int, equal: bool = False
    ) -> float | None:
        """When the next endpoint must have answered, for a call due by `deadline`."""
        if deadline is None:
            return None
        now = clock.monotonic()
        return now + attempt_timeout(self.request_timeout, deadline - now, endpoints_left, equal)
