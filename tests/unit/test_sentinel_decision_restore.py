"""decide(): a `restore` command makes the restored keeper the master, whatever ran before."""

from __future__ import annotations

import pytest

from rhizome.sentinel.decision import decide
from rhizome.store.documents import Command
from rhizome.store.state import Operation
from rhizome.store.view import Stored
from tests.unit.sentinel_builders import (
    GENERATION,
    NOW,
    later,
    observe,
    primary,
    proxy,
    spec,
    standby,
    state,
    step,
)


def restore_command(target: str = "pg3", timeline: int = 3) -> Stored[Command]:
    document = Command(
        name="r1", kind="restore", target=target, restored_timeline=timeline,
        requested_at=NOW - 1, requested_by="alice",
    )  # fmt: skip
    return Stored(document=document, mod_revision=77)


def test_a_restore_with_every_keeper_stopped_names_the_restored_keeper_master() -> None:
    failing_over = state(
        master=None, standbys=(), fenced=("pg1", "pg2", "pg3"),
        operation=Operation(kind="failover", phase="fencing", previous_master="pg1",
                            started_at=NOW - 5, phase_started_at=NOW - 5),
    )  # fmt: skip
    observation = observe(spec(), failing_over, [], [proxy("p1")],
                          commands=[restore_command()])  # fmt: skip
    decision, observation = step(observation)
    restored = decision.state
    assert restored.master == "pg3" and restored.operation is None
    assert {name: item.role for name, item in restored.assignments.items()} == {"pg3": "master"}
    assert restored.proxy_target.routes_nowhere and restored.initialized
    assert restored.master_timeline == 3
    assert restored.generation == GENERATION + 1
    assert restored.history[-1].kind == "restore" and restored.history[-1].new_master == "pg3"
    result = restored.command_results[-1]
    assert (result.kind, result.outcome, result.new_master) == ("restore", "done", "pg3")
    assert decision.finished_commands == (("r1", 77),)

    slow = [primary("pg3", running=False), standby("pg1", timeline=2), standby("pg2", timeline=2)]
    _, unhealthy = step(later(observation, 30, keepers=slow))
    waiting = decide(later(unhealthy, 30)).state
    assert waiting.master == "pg3" and waiting.operation is None  # no promotion of old data
    assert "timeline 2, the master's is 3" in (waiting.no_promotion_reason or "")

    back = later(observation, 1, keepers=[primary("pg3", ack=restored.generation, timeline=3)])
    routed = decide(back).state
    assert routed.proxy_target.master == "pg3"  # once it accepts writes
    returning = later(observation, 2, keepers=[primary("pg3", timeline=3), standby("pg1"),
                                               standby("pg2")])  # fmt: skip
    assert decide(returning).state.assignments["pg1"].role == "standby"  # the others rejoin


def test_a_restore_is_refused_while_a_keeper_runs_and_changes_nothing() -> None:
    steady = state()
    observation = observe(spec(), steady, [primary("pg1"), standby("pg2")], [proxy("p1")],
                          commands=[restore_command()])  # fmt: skip
    decision = decide(observation)
    assert decision.state.master == "pg1" and decision.state.assignments == steady.assignments
    result = decision.state.command_results[-1]
    assert (result.kind, result.outcome) == ("restore", "refused")
    assert "pg1, pg2 still run" in result.reason


def test_a_restore_command_must_name_the_restored_keeper() -> None:
    for fields in ({"target": "pg3"}, {"restored_timeline": 3}):
        with pytest.raises(ValueError, match="names the restored keeper and its new timeline"):
            Command.model_validate(
                {"name": "r", "kind": "restore", "requested_at": NOW, "requested_by": "a", **fields}
            )
    with pytest.raises(ValueError, match="applies to a restore only"):
        Command.model_validate({"name": "s", "kind": "switchover", "requested_at": NOW,
                                "requested_by": "a", "restored_timeline": 3})  # fmt: skip
