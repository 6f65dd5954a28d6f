"""The proxy's part in failsafe (rhizome.failsafe): it confirms, and keeps forwarding meanwhile.

A master that cannot reach etcd asks every proxy. A proxy that cannot reach
etcd either and still routes writes to that master confirms, and counts the
confirmation as a lease renewal sent then: its close deadline moves to
proxy_close_deadline after it (StoreFence.renewed), so it keeps forwarding to
that master while the master keeps collecting confirmations. A proxy already
fenced stays fenced (only a renewal with a fresh view unfences it).
"""

from __future__ import annotations

from rhizome import clock
from rhizome.failsafe import rules
from rhizome.failsafe.responder import reaches_store
from rhizome.proxy.fencing import StoreFence
from rhizome.proxy.routing import Routes
from rhizome.proxy.succession import Succession
from rhizome.store.keys import KeyKind


class ProxyFailsafe:
    """Answers failsafe requests (on an executor thread: the probe blocks) for one proxy."""

    def __init__(self, fence: StoreFence, succession: Succession) -> None:
        self.fence = fence
        self.succession = succession

    def confirm(self, request: rules.FailsafeRequest) -> rules.Answer:
        routes = self.fence.store_routes or Routes(cluster=self.fence.cluster)
        follower = self.succession.follower  # of the cluster followed now
        store = follower.lease_store
        reaches = reaches_store(store.client, store.keys.single(KeyKind.SPEC))
        answer = rules.answer(request, rules.MemberView(
            kind="proxy", failsafe=routes.failsafe, reaches_etcd=reaches,
            master=routes.master.keeper if routes.master is not None else None, generation=None,
        ))  # fmt: skip
        if answer.confirmed:
            # Counts for the cluster these routes are of, should the proxy have moved on since.
            follower.post(self.fence.renewed, clock.monotonic(), None, routes.cluster)
        return answer
