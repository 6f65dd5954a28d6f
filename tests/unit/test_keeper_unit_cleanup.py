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


UNIT = "system.slice/rhizome-keeper.service"


@pytest.mark.parametrize(
    ("cgroup_text", "directory"),
    [
        (f"0::/{UNIT}\n", UNIT),  # cgroup v2
        (f"1:name=systemd:/{UNIT}\n0::/{UNIT}\n", f"unified/{UNIT}"),  # hybrid
        (f"9:name=systemd:/libpod-1/{UNIT}\n1:cpu:/libpod-1\n0::/libpod-1\n",
         f"systemd/libpod-1/{UNIT}"),  # cgroup v1, in a container
    ],
)  # fmt: skip
def test_the_unit_cgroup_is_found_under_each_hierarchy(tmp_path: Path, cgroup_text, directory):
    cgroup_file = tmp_path / "cgroup"
    cgroup_file.write_text(cgroup_text)
    unit = tmp_path / "root" / directory
    unit.mkdir(parents=True)
    (unit / "cgroup.procs").write_text(f"1\n{os.getpid()}\n77\n")
    assert unit_processes(cgroup_file, tmp_path / "root") == [1, 77]


def test_a_process_outside_a_service_finds_no_unit_to_kill(tmp_path: Path):
    cgroup_file = tmp_path / "cgroup"
    cgroup_file.write_text("0::/libpod-1\n")
    root = tmp_path / "root" / "libpod-1"
    root.mkdir(parents=True)
    (root / "cgroup.procs").write_text("1\n2\n")
    with pytest.raises(ValueError, match="no service cgroup"):
        unit_processes(cgroup_file, tmp_path / "root")
