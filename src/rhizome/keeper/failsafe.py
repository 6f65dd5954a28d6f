"""The keeper's part in failsafe (rhizome.failsafe): it asks as a master, answers as a member.

- As a writable master whose lease renewal is overdue, with `failsafe: true`
  in the spec, it asks every keeper assigned in the state and every proxy in
  its last view of the store (FailsafeAsker); `extension()` is the start of
  the last round all of them confirmed, which the lease watchdog counts as
  a renewal.
- Asked by a master, it confirms only when it cannot reach etcd itself and
  its last view names that master at that generation; from then on it does
  not become a primary for fence_deadline + HOLD_MARGIN (`promotion_hold`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from rhizome import clock
from rhizome.api.config import ApiConfig
from rhizome.api.keeper_checks import FailsafeCounts
from rhizome.failsafe import rules
from rhizome.failsafe.asker import FailsafeAsker, Question
from rhizome.failsafe.peers import Peers
from rhizome.failsafe.responder import reaches_store
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.follower import StoreFollower
from rhizome.store.keys import KeyKind


class KeeperFailsafe:
    """Failsafe for one keeper; `writable` and `lease_age` come from its postmaster and lease."""

    def __init__(
        self,
        name: str,
        store: ClusterStore,
        follower: StoreFollower,
        api: ApiConfig,
        spec: Callable[[], ClusterSpec],
    ) -> None:
        self.name = name
        self.store = store
        self.follower = follower
        self.api = api
        self.spec = spec
        self.confirmed_at: float | None = None
        """When this keeper last confirmed failsafe to a master (monotonic)."""
        self.confirmations = 0
        self.asker: FailsafeAsker | None = None
        self.writable: Callable[[], bool] = lambda: False
        self.lease_age: Callable[[], float] = lambda: 0.0

    def start_asking(self, writable: Callable[[], bool], lease_age: Callable[[], float]) -> None:
        self.writable, self.lease_age = writable, lease_age
        self.asker = FailsafeAsker(self.question, Peers(self.api), lambda: self.spec().failsafe)
        self.asker.start()

    def stop(self) -> None:
        if self.asker is not None:
            self.asker.stop()

    def extension(self) -> float:
        """The start of the last round every member confirmed (-inf: none)."""
        return self.asker.confirmed_at if self.asker is not None else -math.inf

    def active(self) -> bool:
        """PostgreSQL is writable on a failsafe confirmation, not on a lease renewal."""
        deadline = self.spec().timing.fence_deadline
        return (
            self.asker is not None
            and self.asker.asking
            and (clock.monotonic() - self.extension() < deadline)
        )

    def counts(self) -> FailsafeCounts:
        asker = self.asker
        complete = asker.complete_rounds if asker is not None else 0
        refused = asker.rounds - complete if asker is not None else 0
        return FailsafeCounts(self.active(), complete, refused, self.confirmations)

    def question(self) -> Question | None:
        spec = self.spec()
        interval = spec.timing.keeper_publish_interval
        if not rules.should_ask(spec.failsafe, self.writable(), self.lease_age(), interval):
            return None
        view = self.follower.view()
        state = view.state.document if view.state is not None else None
        if state is None or state.master != self.name:
            return None
        keepers = {name: stored.document for name, stored in view.keepers.items()}
        proxies = {name: stored.document for name, stored in view.proxies.items()}
        members = rules.members(state, keepers, proxies, self.name)
        return Question(members, rules.FailsafeRequest(self.name, state.generation))

    def confirm(self, request: rules.FailsafeRequest) -> rules.Answer:
        """From the API (any thread): answer a master's request, remembering a confirmation."""
        state = self.follower.view().state
        reaches = reaches_store(self.store.client, self.store.keys.single(KeyKind.SPEC))
        answer = rules.answer(request, rules.MemberView(
            kind="keeper", failsafe=self.spec().failsafe, reaches_etcd=reaches,
            master=state.document.master if state is not None else None,
            generation=state.document.generation if state is not None else None,
        ))  # fmt: skip
        if answer.confirmed:
            self.confirmed_at = clock.monotonic()
            self.confirmations += 1
        return answer

    def promotion_hold(self) -> str | None:
        """Why this keeper may not become a primary now (None: it may)."""
        deadline = self.spec().timing.fence_deadline
        remaining = rules.promotion_hold(self.confirmed_at, deadline, clock.monotonic())
        if remaining <= 0:
            return None
        return (
            f"this keeper confirmed failsafe to the master: not becoming a primary for"
            f" {remaining:.1f} s (that master may accept writes until then)"
        )
