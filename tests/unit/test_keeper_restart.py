"""The pure parts of keeper restarts and pause protection: the guard's modes, the
handoff file, how a keeper leaves (docs/fencing.md, "Restarts and pause")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rhizome.keeper.departure import departure, restart_job_pending, unit_of_cgroup
from rhizome.keeper.guard import DETACHED_STANDBY_GRACE, GuardState
from rhizome.keeper.guard_link import GuardStatus, parse_status
from rhizome.keeper.handover import Handoff, handoff_problem, parse_handoff, write_handoff


def test_a_normal_guard_kills_a_writable_postgres_when_its_keeper_dies():
    state = GuardState()
    state.receive("arm 10")
    assert state.keeper_left(now=5.0) == "fire"


def test_a_normal_guard_ends_when_its_keeper_dies_with_postgres_not_writable():
    assert GuardState().keeper_left(now=5.0) == "exit"


def test_a_detached_guard_keeps_the_deadline_in_force():
    state = GuardState()
    state.receive("arm 10")
    state.receive("detach")
    assert state.keeper_left(now=5.0) == "wait"
    assert state.wait_time(now=5.0) == 5.0
    assert state.due(now=9.9) == "wait"
    assert state.due(now=10.0) == "fire"
    state.keeper_attached()
    state.receive("arm 12")  # the new keeper renewed the same lease
    assert state.due(now=10.0) == "wait"


def test_a_detached_guard_of_a_standby_ends_after_its_grace():
    state = GuardState()
    state.receive("detach")
    assert state.keeper_left(now=0.0) == "wait"
    assert state.wait_time(now=0.0) == DETACHED_STANDBY_GRACE
    assert state.due(now=DETACHED_STANDBY_GRACE) == "exit"


def test_a_holding_guard_enforces_no_deadline_and_waits_for_a_keeper():
    state = GuardState()
    state.receive("arm 10")
    state.receive("hold")
    assert state.enforced_deadline is None
    assert state.wait_time(now=20.0) is None
    assert state.due(now=20.0) == "wait"
    assert state.keeper_left(now=20.0) == "wait"
    state.keeper_attached()  # the dead keeper's deadline is stale: cleared
    state.receive("normal")  # resumed
    assert state.due(now=20.0) == "wait"
    state.receive("arm 25")  # the new keeper's first heartbeat
    assert state.due(now=26.0) == "fire"


def test_a_stopped_guard_exits_whatever_its_mode():
    state = GuardState()
    state.receive("hold")
    state.receive("stop")
    assert state.keeper_left(now=1.0) == "exit"


HANDOFF = Handoff(
    lease_id=0x1234, lease_ttl=5, renew_interval=1.0, fence_deadline=3.5,
    instance_id="abc", data_dir="/var/lib/pg", guard_pid=40, postmaster_pid=41,
)  # fmt: skip


def status(**changes: object) -> GuardStatus:
    fields: dict[str, object] = {
        "mode": "detach", "armed": True, "postmaster_pid": 41, "guard_pid": 40, "peer_pid": 40,
    }  # fmt: skip
    fields.update(changes)
    return GuardStatus(**fields)  # type: ignore[arg-type]


def test_the_handoff_file_round_trips(tmp_path: Path):
    path = tmp_path / "handoff.json"
    write_handoff(path, HANDOFF)
    assert path.stat().st_mode & 0o777 == 0o600
    assert parse_handoff(path.read_text()) == HANDOFF


@pytest.mark.parametrize(
    "text",
    ["", "{}", "[]", json.dumps({**HANDOFF.__dict__, "lease_ttl": -1}),
     json.dumps({**HANDOFF.__dict__, "guard_pid": "40"}),
     json.dumps({**HANDOFF.__dict__, "extra": 1})],
)  # fmt: skip
def test_an_unreadable_handoff_is_refused_with_a_reason(text):
    with pytest.raises(ValueError, match="unreadable handoff file"):
        parse_handoff(text)


def problem(handoff: Handoff = HANDOFF, guard: GuardStatus | None = None, **kwargs: object):
    arguments: dict[str, object] = {
        "data_dir": Path("/var/lib/pg"), "instance_id": "abc", "live_postmaster": 41,
    }  # fmt: skip
    arguments.update(kwargs)
    return handoff_problem(handoff, guard, **arguments)  # type: ignore[arg-type]


def test_a_consistent_handoff_is_taken_over():
    assert problem(guard=status()) is None


@pytest.mark.parametrize(
    ("guard", "kwargs", "expected"),
    [
        (None, {}, "no fencing guard answers"),
        (status(peer_pid=99), {}, "the guard on the socket is pid 99"),
        (status(guard_pid=99, peer_pid=99), {}, "the handoff names pid 40"),
        (status(), {"instance_id": "xyz"}, "the handoff is of instance abc"),
        (status(), {"data_dir": Path("/elsewhere")}, "for data directory /var/lib/pg"),
        (status(), {"live_postmaster": 77}, "postmaster.pid names 77"),
        (status(postmaster_pid=None), {}, "the guard's postmaster is pid None"),
    ],
)
def test_an_inconsistent_handoff_is_not_taken_over(guard, kwargs, expected):
    found = problem(guard=guard, **kwargs)
    assert found is not None and expected in found


def test_a_guard_status_is_parsed_strictly():
    assert parse_status("status hold ARMED 41 40", 40) == status(mode="hold")
    assert parse_status("status normal DISARMED - 40", 40) == status(
        mode="normal", armed=False, postmaster_pid=None
    )
    for bad in ("status", "status odd ARMED 1 2", "status hold YES 1 2", "started 3"):
        assert parse_status(bad, 40) is None


@pytest.mark.parametrize(
    ("restart", "systemd", "paused", "expected"),
    [
        (False, False, False, "stop"),
        (True, False, False, "detach"),
        (False, True, False, "detach"),
        (False, False, True, "hold"),
        (True, False, True, "hold"),
    ],
)
def test_how_a_keeper_leaves(restart, systemd, paused, expected):
    assert (
        departure(restart_requested=restart, systemd_restarting=systemd, paused=paused) == expected
    )


def test_the_keepers_unit_is_read_from_its_cgroup():
    assert unit_of_cgroup("0::/system.slice/rhizome-keeper.service\n") == "rhizome-keeper.service"
    hybrid = "12:pids:/system.slice/rhizome-keeper.service\n0::/system.slice/rhizome-keeper.service"
    assert unit_of_cgroup(hybrid) == "rhizome-keeper.service"
    assert unit_of_cgroup("0::/user.slice/user-0.slice/session-3.scope\n") is None


def test_only_a_restart_job_of_our_unit_counts():
    jobs = "  812 rhizome-keeper.service restart running\n  813 other.service start waiting\n"
    assert restart_job_pending(jobs, "rhizome-keeper.service")
    assert not restart_job_pending(jobs, "other.service")
    assert not restart_job_pending(
        "  9 rhizome-keeper.service stop running\n", "rhizome-keeper.service"
    )
    assert not restart_job_pending("", "rhizome-keeper.service")


@pytest.mark.parametrize("deadline", ["nan", "inf", "-inf"])
def test_a_deadline_that_could_never_pass_is_refused(deadline):
    with pytest.raises(ValueError, match="unexpected line"):
        GuardState().receive(f"arm {deadline}")
