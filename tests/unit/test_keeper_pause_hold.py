"""When a keeper lets its guard hold PostgreSQL unfenced (pause_hold.py), and in what order."""

from __future__ import annotations

from rhizome.keeper.pause_hold import HoldSwitch, departs_holding, hold_allowed
from rhizome.store.documents import KeeperInfo
from rhizome.store.view import ClusterView, Stored
from tests.unit.sentinel_builders import primary

HELD = {"k1": "instance-a"}


def test_a_master_holds_only_once_the_sentinel_recorded_its_own_instance():
    allowed = {"paused": True, "master": True, "name": "k1"}
    assert hold_allowed(**allowed, own_instance="instance-a", held=HELD)
    assert not hold_allowed(**allowed, own_instance="instance-a", held={})  # not recorded (yet)
    assert not hold_allowed(**allowed, own_instance="instance-b", held=HELD)  # another host
    assert not hold_allowed(**allowed, own_instance=None, held=HELD)


def test_nothing_holds_in_a_running_cluster_and_a_standby_may_hold_while_paused():
    assert not hold_allowed(paused=False, master=True, name="k1", own_instance="instance-a",
                            held=HELD)  # fmt: skip
    assert hold_allowed(paused=True, master=False, name="k2", own_instance=None, held={})


def test_holding_is_published_before_the_guard_holds_and_after_it_stopped():
    switch = HoldSwitch()
    assert switch.mode(allowed=True, holding_stored=False) == "normal"
    assert switch.holding("normal")  # announced first: publish holding true
    assert switch.mode(allowed=True, holding_stored=True) == "hold"  # stored: now hold
    assert switch.holding("hold")
    assert switch.mode(allowed=False, holding_stored=True) == "normal"  # resumed: normal first
    assert switch.holding("hold")  # until the guard was told, the report stays true
    assert not switch.holding("normal")


def view_of(*keepers: KeeperInfo) -> ClusterView:
    return ClusterView(revision=1, keepers={info.name: Stored(info, 1) for info in keepers})


def test_a_keeper_departs_holding_once_its_holding_is_stored_even_before_its_guard_holds():
    switch = HoldSwitch()
    switch.mode(allowed=True, holding_stored=False)  # announced, not stored yet
    assert not departs_holding(switch, "normal", view_of(primary("k1")), "k1")
    stored = view_of(primary("k1", holding=True))
    assert departs_holding(switch, "normal", stored, "k1")  # stored; the guard would hold next
    assert departs_holding(switch, "hold", stored, "k1")
    switch.mode(allowed=False, holding_stored=True)  # resumed: no longer announced
    assert not departs_holding(switch, "normal", stored, "k1")
    assert departs_holding(switch, "hold", stored, "k1")  # the guard still holds: it stays so
