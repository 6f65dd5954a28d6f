"""decide(): a major-upgrade cutover, phase by phase, its refusals and its rollback."""

from __future__ import annotations

from rhizome.sentinel.decision import ClusterObservation, decide
from rhizome.store.documents import Command, KeeperInfo
from rhizome.store.view import Stored
from tests.unit.sentinel_builders import (
    GENERATION,
    MIB,
    NOW,
    PROXY_GENERATION,
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

CONFIRMED = 100 * MIB - 4096
"""How far the successor confirmed when the cutover is asked for."""


def cutover_command(timeout: float | None = 30.0) -> Stored[Command]:
    document = Command(
        name="up1", kind="cutover", successor="main-17", requested_at=NOW - 1,
        requested_by="alice", timeout=timeout,
    )  # fmt: skip
    return Stored(document=document, mod_revision=77)


def master(confirmed: int | None = CONFIRMED, **changes: object) -> KeeperInfo:
    return primary("pg1", 100 * MIB, upgrade_confirmed_lsn=confirmed, **changes)


def requested(keepers: list[KeeperInfo] | None = None) -> ClusterObservation:
    keepers = keepers or [master(), standby("pg2"), standby("pg3")]
    return observe(spec(), state(), keepers, [proxy("p1")], commands=[cutover_command()])


def sealing() -> ClusterObservation:
    """From the request through draining and blocking to sealing (p1 acknowledges at once)."""
    decision, observation = step(requested())
    assert decision.state.operation is not None
    assert decision.state.operation.phase == "draining"
    assert decision.state.proxy_target.master == "pg1"
    decision, observation = step(
        later(observation, 0.1, proxies=[proxy("p1", PROXY_GENERATION + 1)])
    )
    assert decision.state.operation is not None
    assert decision.state.operation.phase == "blocking"
    assert decision.state.proxy_target.routes_nowhere
    decision, observation = step(
        later(observation, 0.1, proxies=[proxy("p1", PROXY_GENERATION + 2)])
    )
    assert decision.state.operation is not None
    assert decision.state.operation.phase == "sealing"
    assert decision.state.assignments["pg1"].sealed
    assert decision.state.master == "pg1" and decision.state.proxy_target.routes_nowhere
    return observation


def test_cutover_hands_over_once_the_successor_confirmed_the_sealed_position() -> None:
    observation = sealing()
    generation = GENERATION + 3
    unsealed = later(observation, 0.1, keepers=[master(ack=generation)])
    assert decide(unsealed).state.successor is None  # no seal reported yet

    early = master(sealed_lsn=100 * MIB, ack=generation - 1)
    assert decide(later(observation, 0.1, keepers=[early])).state.successor is None

    behind = master(sealed_lsn=100 * MIB + 200, ack=generation, confirmed=100 * MIB)
    decision = decide(later(observation, 0.2, keepers=[behind]))
    assert decision.state.successor is None
    assert any("to confirm" in note for note in decision.notes)

    caught_up = master(sealed_lsn=100 * MIB + 200, ack=generation, confirmed=100 * MIB + 200)
    decision, observation = step(later(observation, 0.3, keepers=[caught_up]))
    handed = decision.state
    assert handed.successor == "main-17" and handed.operation is None
    assert handed.proxy_target.routes_nowhere and handed.assignments["pg1"].sealed
    result = handed.command_results[-1]
    assert (result.kind, result.outcome) == ("cutover", "done")
    assert "main-17 took over at position" in result.reason
    assert decision.finished_commands == (("up1", 77),)

    gone = later(observation, 60, keepers=[])  # blue's master stopped: no failover here
    assert decide(gone).state is handed


def test_cutover_times_out_while_sealing_and_gives_the_master_back() -> None:
    observation = sealing()
    stuck = master(sealed_lsn=100 * MIB + 200, ack=GENERATION + 3, confirmed=100 * MIB)
    decision, observation = step(later(observation, 31, keepers=[stuck]))
    restored = decision.state
    assert restored.operation is None and restored.successor is None
    assert not restored.assignments["pg1"].sealed and restored.master == "pg1"
    assert restored.proxy_target.master == "pg1"  # routing repaired
    assert restored.command_results[-1].outcome == "abandoned"


def test_cutover_is_refused_without_the_upgrade_slot_or_with_a_lagging_successor() -> None:
    without = decide(requested([master(confirmed=None), standby("pg2")]))
    assert without.state.operation is None
    assert "rhizomectl upgrade prepare" in without.state.command_results[-1].reason

    lagging = decide(requested([master(confirmed=10 * MIB), standby("pg2")]))
    assert lagging.state.operation is None
    assert "90 MiB" in lagging.state.command_results[-1].reason or (
        "bytes behind" in lagging.state.command_results[-1].reason
    )


def test_a_cutover_command_must_name_its_successor_and_nothing_else_may() -> None:
    problems = []
    for fields in (
        {"kind": "cutover"},
        {"kind": "switchover", "successor": "main-17"},
        {"kind": "cutover", "successor": "main-17", "target": "pg2"},
    ):
        try:
            Command.model_validate(
                {"name": "c", "requested_at": NOW, "requested_by": "a", **fields}
            )
        except ValueError as error:
            problems.append(str(error))
    assert len(problems) == 3


def link_command(timeout: float | None = 30.0) -> Stored[Command]:
    document = Command(
        name="up2", kind="cutover", successor="main-17", method="link",
        requested_at=NOW - 1, requested_by="alice", timeout=timeout,
    )  # fmt: skip
    return Stored(document=document, mod_revision=78)


def stopping() -> ClusterObservation:
    """A link cutover through draining and blocking to stopping (no upgrade slot needed)."""
    keepers = [master(confirmed=None), standby("pg2"), standby("pg3")]
    observation = observe(spec(), state(), keepers, [proxy("p1")], commands=[link_command()])
    decision, observation = step(observation)
    for generation in (PROXY_GENERATION + 1, PROXY_GENERATION + 2):
        decision, observation = step(later(observation, 0.1, proxies=[proxy("p1", generation)]))
    operation = decision.state.operation
    assert operation is not None and (operation.phase, operation.method) == ("stopping", "link")
    assert decision.state.master is None and decision.state.assignments["pg1"].role == "fenced"
    return observation


def test_a_link_cutover_hands_over_once_every_standby_has_the_shutdown_checkpoint() -> None:
    observation = stopping()
    end = 100 * MIB + 114
    stopped_master = stopped("pg1", 100 * MIB, ack=GENERATION + 3)
    lagging = [stopped_master, standby("pg2", end), standby("pg3", 100 * MIB)]
    decision = decide(later(observation, 0.1, keepers=lagging))
    assert decision.state.successor is None
    assert any("pg3 to receive the shutdown checkpoint" in note for note in decision.notes)
    caught_up = [stopped_master, standby("pg2", end), standby("pg3", end)]
    decision, _ = step(later(observation, 0.2, keepers=caught_up))
    assert decision.state.successor == "main-17" and decision.state.operation is None
    assert decision.state.command_results[-1].outcome == "done"


def test_a_link_cutover_that_does_not_stop_cleanly_gives_the_master_back() -> None:
    observation = stopping()
    unclean = stopped("pg1", None, ack=GENERATION + 3)
    decision, observation = step(later(observation, 0.1, keepers=[unclean, standby("pg2")]))
    restoring = decision.state
    assert restoring.successor is None and restoring.master == "pg1"
    assert restoring.command_results[-1].outcome == "abandoned"
    assert "without a clean shutdown" in restoring.command_results[-1].reason
