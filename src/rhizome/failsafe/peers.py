"""Asking the cluster's other agents for failsafe confirmations, over their HTTP API.

Every member is asked at once (one worker thread each, up to MAX_PARALLEL);
a member that does not answer within ASK_TIMEOUT counts as a refusal. The
request carries this agent's token, and over TLS its own certificate for
peers that require client certificates; peers' certificates are verified
against `[api] ca_file` (default: client_ca_file, else the system's CAs).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

from rhizome.api.config import ApiConfig
from rhizome.failsafe.rules import Answer, FailsafeRequest, Member, RoundOutcome

ASK_TIMEOUT = 1.0
"""Seconds a member has to answer (it probes etcd for up to PROBE_TIMEOUT first)."""
MAX_PARALLEL = 16


class Peers:
    """Sends `POST /failsafe` to members and collects their answers."""

    def __init__(self, api: ApiConfig, timeout: float = ASK_TIMEOUT) -> None:
        self.token = api.token
        tls: dict[str, Any] = {}
        ca_file = api.ca_file or api.client_ca_file
        if ca_file is not None:
            tls["ca_certs"] = ca_file
        if api.cert_file is not None and api.key_file is not None:
            tls.update(cert_file=api.cert_file, key_file=api.key_file)
        self.pool = urllib3.PoolManager(
            num_pools=MAX_PARALLEL, retries=False, cert_reqs="CERT_REQUIRED",
            timeout=urllib3.Timeout(connect=timeout, read=timeout), **tls,
        )  # fmt: skip
        self.executor = ThreadPoolExecutor(MAX_PARALLEL, thread_name_prefix="failsafe-ask")

    def ask(self, members: tuple[Member, ...], request: FailsafeRequest) -> RoundOutcome:
        futures = [
            (member, self.executor.submit(self.ask_one, member, request)) for member in members
        ]
        confirmed, refusals = [], []
        for member, future in futures:
            answer = future.result()
            if answer.confirmed:
                confirmed.append(str(member))
            else:
                refusals.append(f"{member}: {answer.reason}")
        return RoundOutcome(tuple(confirmed), tuple(refusals))

    def ask_one(self, member: Member, request: FailsafeRequest) -> Answer:
        if member.url is None:
            return Answer(False, "no API address known (not running, or its API is local only)")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token is not None else {}
        try:
            response = self.pool.request(
                "POST", f"{member.url}/failsafe?{request.query()}", headers=headers
            )
        except HTTPError as error:
            return Answer(False, f"did not answer ({type(error).__name__})")
        return parse_answer(response.status, response.data)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.pool.clear()


def parse_answer(status: int, body: bytes) -> Answer:
    """A member's HTTP answer: confirmed only with 200 and `"confirmed": true`."""
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return Answer(False, f"answered HTTP {status} without a failsafe answer")
    reason = str(document.get("reason", f"HTTP {status}"))
    return Answer(status == 200 and document.get("confirmed") is True, reason)
