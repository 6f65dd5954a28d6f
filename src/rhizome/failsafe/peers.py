"""Asking the cluster's other agents for failsafe confirmations, over their HTTP API.

Every member is asked at once (one worker thread each, up to MAX_PARALLEL);
a member that does not answer within ASK_TIMEOUT counts as a refusal. The
request carries this agent's token, and over TLS its own certificate for
peers that require client certificates; peers' certificates are verified
against `[api] ca_file` (default: client_ca_file, else the system's CAs).
"""

from __future__ import annotations

import json
import ssl
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from rhizome.api.config import ApiConfig
from rhizome.etcd.connection import MemberConnections, Timeouts
from rhizome.etcd.endpoints import EndpointFailed
from rhizome.failsafe.rules import Answer, FailsafeRequest, Member, RoundOutcome

ASK_TIMEOUT = 1.0
"""Seconds a member has to answer (it probes etcd for up to PROBE_TIMEOUT first)."""
MAX_PARALLEL = 16


class Peers:
    """Sends `POST /failsafe` to members and collects their answers."""

    def __init__(self, api: ApiConfig, timeout: float = ASK_TIMEOUT) -> None:
        self.token = api.token
        self.timeouts = Timeouts(connect=timeout, read=timeout)
        self.connections = MemberConnections(partial(client_context, api))
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
        path = f"/failsafe?{request.query()}"
        try:
            answer = self.connections.request(member.url, "POST", path, b"", headers, self.timeouts)
        except EndpointFailed as error:
            return Answer(False, f"did not answer ({error})")
        return parse_answer(answer.status, answer.body)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.connections.close()


def client_context(api: ApiConfig) -> ssl.SSLContext:
    """Peers' certificates verified against `[api] ca_file` (else client_ca_file, else the
    system's CAs); our own certificate for peers that require one."""
    context = ssl.create_default_context(cafile=api.ca_file or api.client_ca_file)
    if api.cert_file is not None and api.key_file is not None:
        context.load_cert_chain(api.cert_file, api.key_file)
    return context


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
