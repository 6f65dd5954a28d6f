"""The campaign's fault schedule (chaos/plan.py) and namespace commands (chaos/network.py)."""

from __future__ import annotations

import pytest

from chaos.network import Layout, setup_commands, teardown_commands
from chaos.operations import chosen_standby, next_restart_value
from chaos.plan import ALL_KINDS, DURATION_BOUNDS, NETWORK_KINDS, OPERATIONS_DURING, Fault, plan


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    assert plan(7, 40) == plan(7, 40)
    assert plan(7, 40) != plan(8, 40)


def test_every_kind_appears_once_per_round_in_a_short_run() -> None:
    faults = plan(3, len(ALL_KINDS))
    assert sorted(fault.kind for fault in faults) == sorted(ALL_KINDS)


def test_only_the_requested_kinds_are_drawn_and_numbered_in_order() -> None:
    faults = plan(11, 9, kinds=["proxy-kill", "etcd-outage"])
    assert {fault.kind for fault in faults} == {"proxy-kill", "etcd-outage"}
    assert [fault.number for fault in faults] == list(range(1, 10))


def test_durations_stay_within_their_kind_bounds_and_the_outage_within_5_to_60_s() -> None:
    for fault in plan(5, 300):
        low, high = DURATION_BOUNDS[fault.kind]
        assert low <= fault.duration <= high, fault
    outages = [fault.duration for fault in plan(5, 300, kinds=["etcd-outage"])]
    assert min(outages) >= 5.0 and max(outages) <= 60.0 and max(outages) > 30.0


def test_a_duration_scale_shortens_durations_but_keeps_lower_bounds() -> None:
    for fault in plan(5, 100, kinds=["etcd-outage"], duration_scale=0.1):
        assert 5.0 <= fault.duration <= 10.5


def test_targets_are_the_master_or_a_standby_and_operations_only_during_other_faults() -> None:
    faults = plan(9, 400)
    assert {fault.target for fault in faults} == {"master", "standby1", "standby2"}
    assert {fault.operation_during for fault in faults} == {None, *OPERATIONS_DURING}
    excluded = ("switchover", "etcd-outage", "etcd-no-quorum")
    assert not any(f.operation_during for f in faults if f.kind in excluded)


def test_operations_during_faults_are_reproducible_and_about_one_in_five() -> None:
    kinds = ["node-kill", "proxy-master-cut"]
    operations = [fault.operation_during for fault in plan(21, 1000, kinds)]
    assert operations == [fault.operation_during for fault in plan(21, 1000, kinds)]
    assert 150 < sum(1 for operation in operations if operation) < 250


def test_the_new_network_kinds_are_planned_with_their_targets() -> None:
    assert {"proxy-master-cut", "etcd-no-quorum", "node-inbound-drop"} <= set(NETWORK_KINDS)
    cuts = plan(4, 60, kinds=["proxy-master-cut"])
    assert {fault.target for fault in cuts} == {"standby1", "standby2"}
    assert {fault.target for fault in plan(4, 20, kinds=["etcd-no-quorum"])} == {"master"}
    drops = plan(4, 60, kinds=["node-inbound-drop"])
    assert {fault.target for fault in drops} == {"master", "standby1", "standby2"}
    assert max(fault.duration for fault in plan(4, 100, kinds=["etcd-no-quorum"])) > 30.0


def test_a_fault_describes_its_operation() -> None:
    assert Fault(3, "node-kill", "master", 4.0).describe() == "#3 node-kill on master for 4.0 s"
    with_maintenance = Fault(4, "node-inbound-drop", "standby2", 5.5, "maintenance")
    assert with_maintenance.describe().endswith("for 5.5 s + maintenance")


def test_the_standby_for_an_operation_avoids_the_faults_node_when_it_can() -> None:
    names = ["n1", "n2", "n3"]
    assert chosen_standby("n1", names, avoid="n2") == "n3"
    assert chosen_standby("n1", names, avoid="n1") == "n2"
    assert chosen_standby("n2", ["n1", "n2"], avoid="n1") == "n1"
    assert chosen_standby(None, names, avoid="n3") is None


def test_the_restart_parameter_alternates_between_two_values() -> None:
    assert next_restart_value(None) == "144MB"
    assert next_restart_value("128MB") == "144MB"
    assert next_restart_value("144MB") == "128MB"


@pytest.mark.parametrize("kinds", [[], ["reboot-the-moon"]])
def test_unknown_or_no_kinds_are_refused(kinds: list[str]) -> None:
    with pytest.raises(ValueError, match="kinds"):
        plan(1, 3, kinds=kinds)


def test_the_layout_puts_every_address_inside_its_own_namespaces() -> None:
    layout = Layout(prefix="rz-chaos-42", subnet=62)
    commands = setup_commands(layout)
    address_commands = [command for command in commands if "addr" in command]
    assert [command[2] for command in address_commands] == [
        "rz-chaos-42-n1", "rz-chaos-42-n2", "rz-chaos-42-n3", "rz-chaos-42-c",
    ]  # fmt: skip
    assert all(command[:2] == ["ip", "-n"] for command in commands if "link" in command)
    assert {command[3] for command in teardown_commands(layout)} == {
        "rz-chaos-42-sw", "rz-chaos-42-n1", "rz-chaos-42-n2", "rz-chaos-42-n3", "rz-chaos-42-c",
    }  # fmt: skip
    assert layout.node_address(2) == "10.250.62.12"
