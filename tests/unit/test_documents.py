"""The typed store documents: strictness, consistency rules and helpers."""

import pytest
from pydantic import ValidationError

from rhizome.store.documents import (
    HISTORY_LIMIT,
    ClusterState,
    Command,
    CommandResult,
    KeeperAssignment,
    KeeperInfo,
    Operation,
    ProxyInfo,
    ProxyTarget,
    RoleChange,
    SynchronousStandbys,
)


def _keeper(**changes: object) -> KeeperInfo:
    base: dict[str, object] = {
        "name": "pg2",
        "host": "db2",
        "port": 5432,
        "observed_at": 10.0,
        "running": True,
        "role": "standby",
        "healthy": True,
    }
    return KeeperInfo.model_validate({**base, **changes})


def _state() -> ClusterState:
    return ClusterState(
        generation=5,
        initialized=True,
        master="pg1",
        assignments={
            "pg1": KeeperAssignment(role="master"),
            "pg2": KeeperAssignment(role="standby", follow="pg1"),
        },
        proxy_target=ProxyTarget(proxy_generation=2, master="pg1", host="db1", port=5432),
    )


def _change(number: int) -> RoleChange:
    return RoleChange(
        at=float(number),
        generation=number,
        kind="failover",
        old_master="pg1",
        new_master="pg2",
        reason=f"change {number}",
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"port": "5432"},
        {"running": 1},
        {"role": "master"},
        {"name": "PG2"},
        {"receive_lsn": -1},
        {"system_identifier": "abc"},
        {"observed_at": "now"},
    ],
)
def test_keeper_info_rejects_wrong_types(changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _keeper(**changes)


def test_keeper_info_from_a_newer_keeper_is_read_without_its_new_fields() -> None:
    assert _keeper(field_of_a_newer_version=1) == _keeper()


def test_keeper_wal_position_and_writability() -> None:
    standby = _keeper(receive_lsn=300, replay_lsn=200)
    assert standby.wal_position == 300
    assert not standby.accepts_writes
    primary = _keeper(role="primary", flush_lsn=500, write_lsn=600)
    assert primary.wal_position == 500
    assert primary.accepts_writes
    assert not primary.with_changes(fenced=True).accepts_writes
    assert _keeper().wal_position is None


def test_documents_are_immutable() -> None:
    keeper = _keeper()
    with pytest.raises(ValidationError):
        keeper.port = 1  # type: ignore[misc]


def test_with_changes_validates_and_leaves_original() -> None:
    keeper = _keeper()
    changed = keeper.with_changes(healthy=False)
    assert keeper.healthy and not changed.healthy
    with pytest.raises(ValidationError):
        keeper.with_changes(port=0)


def test_proxy_info_listen_addresses() -> None:
    with pytest.raises(ValidationError, match="listen address"):
        ProxyInfo(
            id="p1", listen_addresses=("nope",), acknowledged_proxy_generation=0, observed_at=1
        )


def test_command_kinds() -> None:
    command = Command(name="c1", kind="failover", target="pg2", requested_at=1, requested_by="bob")
    assert command.timeout is None
    with pytest.raises(ValidationError):
        Command.model_validate({**command.model_dump(), "kind": "reboot"})


def test_assignment_follow_matches_role() -> None:
    with pytest.raises(ValidationError, match="a standby must follow a keeper"):
        KeeperAssignment(role="standby")
    with pytest.raises(ValidationError, match="a master keeper follows nobody"):
        KeeperAssignment(role="master", follow="pg2")


def test_state_rejects_two_masters() -> None:
    with pytest.raises(ValidationError, match="several masters"):
        _state().with_changes(assignments={"pg1": {"role": "master"}, "pg2": {"role": "master"}})


def test_state_master_must_hold_the_master_role() -> None:
    with pytest.raises(ValidationError, match="not assigned the master role"):
        _state().with_changes(master="pg2")


def test_state_proxy_routes_only_to_master() -> None:
    with pytest.raises(ValidationError, match=r"proxy_target\.master"):
        _state().with_changes(
            proxy_target=ProxyTarget(proxy_generation=3, master="pg2", host="db2", port=5432)
        )


def test_state_follow_must_name_an_assigned_keeper() -> None:
    with pytest.raises(ValidationError, match=r"assignments\.pg2\.follow"):
        _state().with_changes(
            assignments={"pg1": {"role": "master"}, "pg2": {"role": "standby", "follow": "pg9"}}
        )


def test_proxy_target_address_goes_with_master() -> None:
    with pytest.raises(ValidationError, match="host"):
        ProxyTarget(master="pg1", port=5432)
    with pytest.raises(ValidationError, match="port"):
        ProxyTarget(master=None, port=5432)


def test_proxy_target_retargeting_increments_generation() -> None:
    target = _state().proxy_target
    nowhere = target.retargeted(None)
    assert nowhere.routes_nowhere and nowhere.proxy_generation == 3
    again = nowhere.retargeted("pg2", "db2", 5433)
    assert again.proxy_generation == 4 and again.master == "pg2" and not again.routes_nowhere


def test_failover_step_through_helpers() -> None:
    state = _state()
    fenced = state.with_next_generation(
        master=None,
        assignments={"pg1": {"role": "fenced"}, "pg2": {"role": "standby", "follow": "pg1"}},
        proxy_target=state.proxy_target.retargeted(None),
    )
    assert fenced.generation == 6
    assert fenced.keepers_with_role("fenced") == ["pg1"]
    assert fenced.assignment_of("pg3") is None
    assert state.master == "pg1"


def test_history_is_trimmed_to_the_limit() -> None:
    state = _state()
    for number in range(HISTORY_LIMIT + 7):
        state = state.with_history_entry(_change(number))
    assert len(state.history) == HISTORY_LIMIT
    assert state.history[0].generation == 7
    assert state.history[-1].generation == HISTORY_LIMIT + 6


def test_history_limit_can_be_given() -> None:
    state = _state()
    for number in range(5):
        state = state.with_history_entry(_change(number), limit=2)
    assert [entry.generation for entry in state.history] == [3, 4]
    assert state.with_history_entry(_change(9), limit=0).history == ()


def test_longer_stored_history_is_still_accepted() -> None:
    history = tuple(_change(number) for number in range(HISTORY_LIMIT + 10))
    assert len(_state().with_changes(history=history).history) == HISTORY_LIMIT + 10


def test_synchronous_standbys_promotable_only_in_both_sets() -> None:
    adding = SynchronousStandbys(requested=("pg2", "pg3"), confirmed=("pg2",))
    assert adding.promotable == {"pg2"} and not adding.settled
    removing = SynchronousStandbys(requested=("pg3",), confirmed=("pg2", "pg3"))
    assert removing.promotable == {"pg3"}
    assert SynchronousStandbys(requested=("pg2",), confirmed=("pg2",)).settled


def test_state_remembers_what_the_sentinel_decision_needs() -> None:
    state = _state()
    assert state.missing_keepers_since == {} and state.master_unhealthy_since is None
    assert state.master_flush_lsn is None and state.system_identifier is None
    remembered = state.with_changes(
        missing_keepers_since={"pg2": 12.5},
        master_unhealthy_since=11.0,
        master_flush_lsn=2**40,
        system_identifier="7300000000000000001",
    )
    assert ClusterState.model_validate_json(remembered.model_dump_json()) == remembered
    with pytest.raises(ValidationError, match="system_identifier"):
        state.with_changes(system_identifier="abc")
    with pytest.raises(ValidationError, match="missing_keepers_since"):
        state.with_changes(missing_keepers_since={"PG2": 1.0})


def test_operation_and_result_carry_the_decision_details() -> None:
    operation = Operation(
        kind="failover",
        phase="fencing",
        previous_master="pg1",
        started_at=1.0,
        phase_started_at=1.0,
        phase_generation=6,
        reason="the keeper of master pg1 stopped reporting",
    )
    assert operation.with_changes(phase="promoting").phase_generation == 6
    result = CommandResult(
        command="c1",
        kind="switchover",
        outcome="done",
        reason="ok",
        finished_at=2.0,
        requested_at=1.0,
    )
    assert result.requested_at == 1.0
