"""Failsafe decisions (rhizome.failsafe.rules), its API page and the sentinel's grace for it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from rhizome.api.requests import answer as answer_http
from rhizome.failsafe import rules
from rhizome.failsafe.peers import parse_answer
from rhizome.failsafe.responder import failsafe_page
from rhizome.sentinel.decision import decide
from rhizome.store.documents import ProxyInfo
from tests.unit.sentinel_builders import NOW, observe, primary, spec, standby, state

REQUEST = rules.FailsafeRequest("pg1", 7)
SEES_IT = rules.MemberView("keeper", failsafe=True, reaches_etcd=False, master="pg1", generation=7)


def test_the_master_asks_every_assigned_keeper_but_itself_and_every_proxy_it_saw():
    cluster = state()  # pg1 master, pg2 and pg3 standbys
    proxies = {"px": ProxyInfo(id="px", listen_addresses=("h:5432",),
                               acknowledged_proxy_generation=1, observed_at=NOW,
                               api_url="https://h:9642")}  # fmt: skip
    keepers = {"pg2": standby("pg2").with_changes(api_url="https://pg2:9643")}
    members = rules.members(cluster, keepers, proxies, "pg1")
    assert [(m.kind, m.name, m.url) for m in members] == [
        ("keeper", "pg2", "https://pg2:9643"),
        ("keeper", "pg3", None),  # assigned but not seen: it cannot confirm, so no failsafe
        ("proxy", "px", "https://h:9642"),
    ]


@pytest.mark.parametrize(
    ("view", "confirmed", "says"),
    [
        (SEES_IT, True, "cannot reach etcd either"),
        (replace(SEES_IT, failsafe=False), False, "failsafe is off"),
        (replace(SEES_IT, reaches_etcd=True), False, "reaches etcd"),
        (replace(SEES_IT, master="pg2"), False, "sees pg2 as the master"),
        (replace(SEES_IT, master=None), False, "sees no master"),
        (replace(SEES_IT, generation=8), False, "generation 8"),
        (replace(SEES_IT, kind="proxy", generation=None), True, "this proxy cannot reach"),
    ],
)
def test_a_member_confirms_only_when_nothing_speaks_against_it(view, confirmed, says):
    answer = rules.answer(REQUEST, view)
    assert answer.confirmed is confirmed and says in answer.reason


def test_a_round_is_complete_only_when_somebody_confirmed_and_nobody_refused():
    assert rules.RoundOutcome(("keeper pg2", "proxy px"), ()).complete
    assert not rules.RoundOutcome(("keeper pg2",), ("proxy px: did not answer",)).complete
    lone = rules.RoundOutcome((), ())
    assert not lone.complete and "lone master" in lone.describe()


def test_the_master_asks_once_a_renewal_is_overdue_and_only_as_a_writable_master():
    assert not rules.should_ask(True, True, 1.2, 1.0)
    assert rules.should_ask(True, True, 1.25, 1.0)
    assert not rules.should_ask(False, True, 9.0, 1.0)
    assert not rules.should_ask(True, False, 9.0, 1.0)


def test_a_keeper_that_confirmed_waits_out_the_fence_deadline_before_becoming_a_primary():
    assert rules.promotion_hold(None, 3.5, 100.0) == 0.0
    assert rules.promotion_hold(100.0, 3.5, 101.0) == pytest.approx(3.5 + rules.HOLD_MARGIN - 1)
    assert rules.promotion_hold(100.0, 3.5, 104.0 + rules.HOLD_MARGIN) == 0.0


def post(query: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"POST /failsafe?{query} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode()


def confirming(request: rules.FailsafeRequest) -> rules.Answer:
    return rules.answer(request, SEES_IT)


@pytest.mark.parametrize(
    ("raw", "authenticated", "status", "says"),
    [
        (post("master=pg1&generation=7"), False, 403, b"no authentication"),
        (post("master=pg1"), True, 400, b"needs ?master=NAME&generation=N"),
        (post("master=pg1&generation=7"), True, 200, b'"confirmed": true'),
        (post("master=pg2&generation=7"), True, 409, b"sees pg1 as the master"),
        (b"GET /failsafe?master=pg1&generation=7 HTTP/1.1\r\n\r\n", True, 405, b"only POST"),
    ],
)
def test_the_failsafe_page(raw, authenticated, status, says):
    routes = {"/failsafe": failsafe_page(authenticated, confirming)}
    got_status, _, body = answer_http(raw, routes, token=None)
    assert got_status == status and says in body


def test_an_unauthenticated_request_never_reaches_the_failsafe_page_of_a_token_api():
    routes = {"/failsafe": failsafe_page(True, confirming)}
    assert answer_http(post("master=pg1&generation=7"), routes, token="s3cret")[0] == 401
    accepted = answer_http(post("master=pg1&generation=7", "s3cret"), routes, token="s3cret")
    assert accepted[0] == 200


@pytest.mark.parametrize(
    ("status", "body", "confirmed"),
    [
        (200, json.dumps({"confirmed": True, "reason": "ok"}).encode(), True),
        (200, json.dumps({"confirmed": "yes"}).encode(), False),
        (409, json.dumps({"confirmed": True}).encode(), False),
        (200, b"<html>a load balancer</html>", False),
        (401, b"authentication required", False),
    ],
)
def test_only_an_explicit_confirmation_counts(status, body, confirmed):
    assert parse_answer(status, body).confirmed is confirmed


def test_with_failsafe_a_missing_master_gets_a_lease_ttl_after_the_sentinel_regained_etcd():
    keepers = [standby("pg2"), standby("pg3")]
    regained = replace(
        observe(spec(failsafe=True), state(), keepers), leadership_started_at=NOW - 1
    )
    decision = decide(regained)
    assert decision.state.operation is None and decision.state.master == "pg1"
    assert any("must get one keeper_lease_ttl" in note for note in decision.notes)
    settled = replace(regained, leadership_started_at=NOW - 5)  # keeper_lease_ttl 5 s
    assert decide(settled).state.operation is not None
    without = replace(regained, spec=spec())
    assert decide(without).state.operation is not None, "only with failsafe"


def test_a_present_master_is_not_affected_by_the_grace():
    observation = observe(spec(failsafe=True), state(), [primary("pg1"), standby("pg2")])
    assert decide(replace(observation, leadership_started_at=NOW)).state.operation is None
