"""The failsafe protocol's decisions (pure): who is asked, what they answer, how long holds last.

Timing (defaults: keeper_publish_interval 1 s, fence_deadline 3.5 s): a master
keeper whose lease renewal is overdue by ASK_SLACK starts rounds; a round
that every member confirmed counts as a lease renewal sent when the round
*started*, so the master fences at most fence_deadline after the start of
its last complete round. Every confirmation was given after that start, so a
keeper that waits fence_deadline + HOLD_MARGIN after its own last
confirmation before it becomes a primary never overlaps a writable old
master (docs/protocol.md, "Failsafe").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from rhizome.store.documents import KeeperInfo, ProxyInfo
from rhizome.store.state import ClusterState

ASK_SLACK = 0.25
"""Seconds a lease renewal may be late before the master asks its peers."""
HOLD_MARGIN = 0.5
"""Seconds a confirming keeper waits beyond fence_deadline before it may become a
primary (the master's guard kills PostgreSQL at fence_deadline; clock rates differ)."""

MemberKind = Literal["keeper", "proxy"]


@dataclass(frozen=True)
class FailsafeRequest:
    """What the master asks: do you still see `master` as the master of `generation`?"""

    master: str
    generation: int

    def query(self) -> str:
        return urlencode({"master": self.master, "generation": self.generation})


def parse_request(query: Mapping[str, str]) -> FailsafeRequest | str:
    """The request in a query string, or what is wrong with it."""
    master, generation = query.get("master"), query.get("generation", "")
    if not master or not generation.isdigit():
        return "a failsafe request needs ?master=NAME&generation=N"
    return FailsafeRequest(master, int(generation))


@dataclass(frozen=True)
class Member:
    """A keeper or proxy the master must hear from; `url` None: it published no API."""

    kind: MemberKind
    name: str
    url: str | None

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def members(
    state: ClusterState,
    keepers: Mapping[str, KeeperInfo],
    proxies: Mapping[str, ProxyInfo],
    own_name: str,
) -> tuple[Member, ...]:
    """Every keeper assigned in `state` (but removed ones and ourselves) and every proxy seen.

    An assigned keeper without a live document cannot confirm: the master then
    fences, because that keeper might reach etcd and be promoted.
    """
    names = sorted(
        name
        for name, assignment in state.assignments.items()
        if assignment.role != "removed" and name != own_name
    )
    found = [Member("keeper", name, _url(keepers.get(name))) for name in names]
    found += [Member("proxy", name, proxies[name].api_url) for name in sorted(proxies)]
    return tuple(found)


def _url(document: KeeperInfo | None) -> str | None:
    return document.api_url if document is not None else None


@dataclass(frozen=True)
class Answer:
    confirmed: bool
    reason: str


@dataclass(frozen=True)
class MemberView:
    """What a member knows when asked (`generation` None: it does not know one)."""

    kind: MemberKind
    failsafe: bool
    """Failsafe is on in the spec this member read last."""
    reaches_etcd: bool
    master: str | None
    generation: int | None


def answer(request: FailsafeRequest, view: MemberView) -> Answer:
    """A member's answer to `request`: confirmed only when nothing speaks against it."""
    kind, master, generation = view.kind, view.master, view.generation
    if not view.failsafe:
        return Answer(False, f"failsafe is off in the spec this {kind} read last")
    if view.reaches_etcd:
        return Answer(False, f"this {kind} reaches etcd: the master must renew its lease there")
    if master != request.master:
        return Answer(False, f"this {kind} sees {master or 'no master'} as the master")
    if generation is not None and generation != request.generation:
        return Answer(False, f"this {kind} is at state generation {generation}")
    return Answer(True, f"this {kind} cannot reach etcd either and sees {master} as the master")


@dataclass(frozen=True)
class RoundOutcome:
    """One round of questions: who confirmed, and why each other member did not."""

    confirmed: tuple[str, ...]
    refusals: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Everyone confirmed, and there was someone to confirm: a lone master gets no failsafe."""
        return bool(self.confirmed) and not self.refusals

    def describe(self) -> str:
        if not self.confirmed and not self.refusals:
            return "no keeper or proxy to confirm (a lone master never runs on failsafe)"
        if self.complete:
            return f"confirmed by {', '.join(self.confirmed)}"
        return "not confirmed: " + "; ".join(self.refusals)


def should_ask(
    failsafe: bool, writable: bool, seconds_since_renewal: float, interval: float
) -> bool:
    """The master asks once its lease renewal is overdue (`interval`: its renewal interval)."""
    return failsafe and writable and seconds_since_renewal >= interval + ASK_SLACK


def promotion_hold(confirmed_at: float | None, fence_deadline: float, now: float) -> float:
    """Seconds a keeper that confirmed at `confirmed_at` must still wait to become a primary."""
    if confirmed_at is None:
        return 0.0
    return max(0.0, confirmed_at + fence_deadline + HOLD_MARGIN - now)
