"""The keeper unit's ExecStopPost decision and how it finds the unit's processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rhizome.keeper.unit_cleanup import to_kill, unit_processes

GUARD, POSTMASTER, BACKEND, BASEBACKUP = 10, 11, 12, 20
"""A guard, its postmaster and a backend, and an orphan of the keeper (its parent gone: 1)."""


def unit(guard_state: str = "S") -> dict[int, tuple[str, int]]:
    return {
        GUARD: (guard_state, 1), POSTMASTER: ("S", GUARD), BACKEND: ("S", POSTMASTER),
        BASEBACKUP: ("S", 1),
    }  # fmt: skip


@pytest.mark.parametrize("service_result", ["watchdog", "signal", "timeout"])
def test_an_unclean_end_with_a_stopped_guard_kills_everything(service_result):
    assert to_kill(service_result, unit("T"), {GUARD}) == {GUARD, POSTMASTER, BACKEND, BASEBACKUP}


@pytest.mark.parametrize(("service_result", "guard_state"), [("watchdog", "S"), ("success", "T")])
def test_a_live_guard_or_a_clean_end_keeps_guard_and_postgres_but_kills_orphans(
    service_result, guard_state
):
    assert to_kill(service_result, unit(guard_state), {GUARD}) == {BASEBACKUP}


def test_without_a_guard_every_leftover_is_an_orphan():
    processes = {POSTMASTER: ("S", 1), BASEBACKUP: ("S", 1)}
    assert to_kill("watchdog", processes, set()) == {POSTMASTER, BASEBACKUP}


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
