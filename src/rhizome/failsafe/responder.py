"""The `POST /failsafe?master=NAME&generation=N` page of keepers and proxies.

200 with `{"confirmed": true, ...}` only when the agent just failed to reach
etcd itself (a linearizable read of the spec key, within PROBE_TIMEOUT) and
still sees the asker as the master; otherwise 409 with the reason. An API
without authentication answers 403: a confirmation keeps a master writable,
so nobody unauthenticated may obtain one.
"""

from __future__ import annotations

from collections.abc import Callable

from rhizome import clock
from rhizome.api.requests import Handler, Page, Request, json_page
from rhizome.etcd import EtcdError
from rhizome.etcd.interface import StoreClient
from rhizome.failsafe.rules import Answer, FailsafeRequest, parse_request

PROBE_TIMEOUT = 0.5
"""Seconds an agent asked for a confirmation gives etcd to answer it."""
UNAUTHENTICATED = (
    "this agent's API has no authentication ([api] token_file or client_ca_file):"
    " it confirms no failsafe request"
)


def reaches_store(client: StoreClient, key: str) -> bool:
    """One read that etcd answers only with a quorum; False when it fails in time."""
    try:
        client.revision(key, deadline=clock.monotonic() + PROBE_TIMEOUT)
    except EtcdError:
        return False
    return True


def failsafe_page(authenticated: bool, confirm: Callable[[FailsafeRequest], Answer]) -> Handler:
    """The handler of `/failsafe`: `confirm` decides (and records a confirmation it gives)."""

    def page(request: Request) -> Page:
        if not authenticated:
            return json_page(403, {"confirmed": False, "reason": UNAUTHENTICATED})
        parsed = parse_request(request.query)
        if isinstance(parsed, str):
            return json_page(400, {"confirmed": False, "reason": parsed})
        answer = confirm(parsed)
        status = 200 if answer.confirmed else 409
        return json_page(status, {"confirmed": answer.confirmed, "reason": answer.reason})

    return page
