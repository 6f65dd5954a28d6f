"""The keeper unit's ExecStopPost decision and how it finds the unit's processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rhizome.keeper.unit_cleanup import must_kill, unit_processes


@pytest.mark.parametrize(
    ("service_result", "guard_states", "kill"),
    [
        ("watchdog", ["T"], True),  # keeper and guard frozen together: systemd killed the keeper
        ("signal", ["t"], True),
        ("timeout", ["T"], True),
        ("watchdog", ["S"], False),  # a live guard fences (or holds, paused) by itself
        ("success", ["T"], False),  # the keeper left on purpose or stopped PostgreSQL
        ("watchdog", [], False),  # no guard left: PostgreSQL got its parent-death signal
    ],
)
def test_an_unclean_end_with_a_stopped_guard_kills_the_unit(service_result, guard_states, kill):
    assert must_kill(service_result, guard_states) is kill


def test_the_unit_cgroup_is_read_from_the_unified_hierarchy_line(tmp_path: Path):
    cgroup_file = tmp_path / "cgroup"
    cgroup_file.write_text("1:name=systemd:/ignored\n0::/system.slice/rhizome-keeper.service\n")
    unit = tmp_path / "root" / "system.slice" / "rhizome-keeper.service"
    unit.mkdir(parents=True)
    (unit / "cgroup.procs").write_text(f"1\n{os.getpid()}\n77\n")
    assert unit_processes(cgroup_file, tmp_path / "root") == [1, 77]
