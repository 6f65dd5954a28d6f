"""Pause holds (sentinel/decision/pause_holds.py): a master held while paused.

While paused, a master keeper that dies leaves its PostgreSQL running,
unfenced. After the resume its absent keeper document proves nothing: the
sentinel must not promote anybody until that instance reports it fences
normally again, or the operator confirms the old master stopped.
"""

from __future__ import annotations

import json
from dataclasses import replace

from rhizome.sentinel.decision import ClusterObservation, decide
from rhizome.sentinel.decision.decide import PAUSED_NOTE
from rhizome.store.codec import decode_document, encode_document
from rhizome.store.documents import Command
from rhizome.store.state import ClusterState
from rhizome.store.view import Stored
from tests.unit.sentinel_builders import (
    GENERATION,
    NOW,
    PROXY_GENERATION,
    command,
    later,
    observe,
    primary,
    proxy,
    spec,
    standby,
    state,
    step,
    stopped,
)

STANDBYS = [standby("pg2", instance_id="data-2"), standby("pg3", instance_id="data-3")]
HELD_REASON = (
    "master pg1 was held while paused: its PostgreSQL may still run unfenced (its keeper "
    "(instance data-a) does not report); start its keeper, or confirm it is stopped with "
    "`rhizomectl failover --to STANDBY --old-master-stopped`"
)


def held_master(**changes: object) -> object:
    return primary("pg1", instance_id="data-a", holding=True, **changes)


def paused_cluster() -> ClusterObservation:
    """pg1 master, its keeper holding under pause rules; the decision applied."""
    keepers = [held_master(), *STANDBYS]
    observation = observe(spec(paused=True), state(), keepers, [proxy("p1")])
    decision, after = step(observation)
    assert decision.state.paused_holds == {"pg1": "data-a"}
    return after


def resumed_without_pg1(observation: ClusterObservation, seconds: float) -> ClusterObservation:
    """Resumed, pg1's keeper gone (killed while paused, its lease expired)."""
    return replace(later(observation, seconds, keepers=STANDBYS), spec=spec())


def failover_command(target: str, *, old_master_stopped: bool) -> Stored[Command]:
    document = command("cmd1", "failover", target).document.with_changes(
        old_master_stopped=old_master_stopped
    )
    return Stored(document=document, mod_revision=77)


def test_the_master_is_held_while_paused_as_bookkeeping_only() -> None:
    observation = observe(
        spec(paused=True), state(), [primary("pg1", instance_id="data-a"), *STANDBYS]
    )
    decision = decide(observation)
    assert decision.state.paused_holds == {"pg1": "data-a"}
    assert decision.state.generation == GENERATION
    assert decision.state.with_changes(paused_holds={}) == observation.state
    assert PAUSED_NOTE in decision.notes


def test_standbys_and_keepers_without_instance_id_are_not_held() -> None:
    keepers = [primary("pg1"), standby("pg2", instance_id="data-2", holding=True)]
    observation = observe(spec(paused=True), state(), keepers)
    assert decide(observation).state is observation.state  # nothing to write


def test_a_holding_keeper_that_may_accept_writes_is_held_even_if_not_master() -> None:
    keepers = [held_master(), *STANDBYS]
    cluster = state("pg2", ("pg3",), fenced=("pg1",))
    decision = decide(observe(spec(paused=True), cluster, keepers))
    assert decision.state.paused_holds == {"pg1": "data-a", "pg2": "data-2"}


def test_no_failover_after_resume_while_the_held_master_keeper_is_absent() -> None:
    observation = resumed_without_pg1(paused_cluster(), 1.0)
    for seconds in (0.0, 10.0, 600.0):
        decision, observation = step(later(observation, seconds))
        assert decision.state.master == "pg1"
        assert decision.state.operation is None
        assert decision.state.proxy_target.proxy_generation == PROXY_GENERATION
        assert decision.state.paused_holds == {"pg1": "data-a"}
    reason = decision.state.no_promotion_reason or ""
    assert reason.startswith("the keeper of master pg1 stopped reporting")
    assert HELD_REASON in reason


def test_the_hold_stays_while_paused_even_when_the_keeper_reports_not_holding() -> None:
    observation = paused_cluster()
    keepers = [primary("pg1", instance_id="data-a"), *STANDBYS]
    assert decide(later(observation, 1.0, keepers=keepers)).state.paused_holds == {"pg1": "data-a"}
    assert decide(later(observation, 1.0, keepers=STANDBYS)).state.paused_holds == {"pg1": "data-a"}


def test_released_when_the_same_instance_reports_it_fences_normally_again() -> None:
    observation = resumed_without_pg1(paused_cluster(), 1.0)
    decision, observation = step(observation)
    still_holding = [held_master(), *STANDBYS]
    assert decide(later(observation, 1.0, keepers=still_holding)).state.paused_holds
    rearmed = [primary("pg1", instance_id="data-a"), *STANDBYS]
    decision = decide(later(observation, 1.0, keepers=rearmed))
    assert decision.state.paused_holds == {}
    assert decision.state.no_promotion_reason is None
    assert decision.state.generation == GENERATION
    assert any("pause hold of pg1 ended" in note for note in decision.notes)


def test_failover_follows_once_the_hold_ended_and_the_keeper_is_gone_again() -> None:
    observation = resumed_without_pg1(paused_cluster(), 1.0)
    rearmed = [primary("pg1", instance_id="data-a"), *STANDBYS]
    _, observation = step(later(observation, 1.0, keepers=rearmed))
    decision = decide(later(observation, 1.0, keepers=STANDBYS))
    assert decision.state.operation is not None
    assert decision.state.operation.kind == "failover"


def test_not_released_by_another_instance_under_the_same_name() -> None:
    observation = resumed_without_pg1(paused_cluster(), 1.0)
    other_host = stopped("pg1", instance_id="data-b")
    _, observation = step(later(observation, 5.0, keepers=[other_host, *STANDBYS]))
    decision, observation = step(later(observation, 5.0))  # past master_recovery_grace
    assert decision.state.paused_holds == {"pg1": "data-a"}
    assert decision.state.master == "pg1" and decision.state.operation is None
    reason = decision.state.no_promotion_reason or ""
    assert "reported by another instance (data-b) than the held one (data-a)" in reason


def test_a_failover_command_without_confirmation_is_refused_while_held() -> None:
    observation = resumed_without_pg1(paused_cluster(), 1.0)
    pending = failover_command("pg2", old_master_stopped=False)
    decision = decide(replace(later(observation, 1.0), commands={"cmd1": pending}))
    assert decision.state.master == "pg1" and decision.state.operation is None
    result = decision.state.command_results[-1]
    assert result.outcome == "refused"
    assert HELD_REASON in result.reason
    assert "--old-master-stopped only once you made sure" in result.reason


def test_released_by_a_failover_command_confirming_the_old_master_stopped() -> None:
    observation = resumed_without_pg1(paused_cluster(), 1.0)
    confirmed = failover_command("pg2", old_master_stopped=True)
    decision, observation = step(replace(observation, commands={"cmd1": confirmed}))
    operation = decision.state.operation
    assert decision.state.paused_holds == {}
    assert operation is not None and operation.phase == "fencing"
    assert operation.reason is not None and "confirmed the old master" in operation.reason
    acknowledged = later(observation, 1.0, proxies=[proxy("p1", PROXY_GENERATION + 1)])
    decision = decide(acknowledged)
    assert decision.state.master == "pg2"


def test_a_hold_blocks_the_promotion_of_a_failover_in_progress() -> None:
    """Paused while fencing: the old master, not yet fenced, dies holding."""
    fencing = decide(
        observe(
            spec(),
            state(master_unhealthy_since=NOW - 2),
            [stopped("pg1", instance_id="data-a"), *STANDBYS],
            [proxy("p1")],
        )
    )
    assert fencing.state.operation is not None
    cluster = fencing.state.with_changes(paused_holds={"pg1": "data-a"})
    nowhere = [proxy("p1", PROXY_GENERATION + 1)]
    decision = decide(observe(spec(), cluster, STANDBYS, nowhere, now=NOW + 1))
    assert decision.state.master is None
    assert any(HELD_REASON in note for note in decision.notes)
    released = cluster.with_changes(paused_holds={})
    assert decide(observe(spec(), released, STANDBYS, nowhere, now=NOW + 1)).state.master == "pg2"


def test_a_state_without_holds_encodes_as_before() -> None:
    encoded = encode_document(state())
    assert "paused_holds" not in json.loads(encoded)
    decoded = decode_document("state", encoded, ClusterState)
    assert encode_document(decoded) == encoded
    held = state(paused_holds={"pg1": "data-a"})
    assert json.loads(encode_document(held))["paused_holds"] == {"pg1": "data-a"}
    assert decode_document("state", encode_document(held), ClusterState) == held


def test_a_command_without_confirmation_encodes_as_before() -> None:
    plain = command("cmd1", "failover", "pg2").document
    assert "old_master_stopped" not in json.loads(encode_document(plain))
    confirmed = plain.with_changes(old_master_stopped=True)
    assert json.loads(encode_document(confirmed))["old_master_stopped"] is True
