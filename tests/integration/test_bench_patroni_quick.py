"""Smoke run of bench/side_by_side.py: rhizome and Patroni side by side, one trial each.

Real etcd, PostgreSQL, Patroni (installed from PyPI into build/patroni-venv on
first use) and HAProxy; the cheapest fault only, so that it fits in ~3 minutes.
docs/ is left alone (--no-report).
"""

from __future__ import annotations

import json

import pytest

from bench.side_by_side import SCRATCH_RAW_RESULTS
from tests.integration.bench_support import run_bench

pytestmark = pytest.mark.integration

ARGUMENTS = ["--trials", "1", "--switchovers", "1", "--cost-seconds", "5"]
ARGUMENTS += ["--faults", "PostgreSQL crash", "--no-report"]


def test_side_by_side_bench_measures_both_systems():
    SCRATCH_RAW_RESULTS.unlink(missing_ok=True)
    output = run_bench("side_by_side.py", ARGUMENTS, timeout=280)
    for system in ("rhizome", "Patroni"):
        assert f"failover round 1/1 PostgreSQL crash {system}" in output, output[-3000:]
        assert f"switchover round 1/1 {system}" in output, output[-3000:]
    results = json.loads(SCRATCH_RAW_RESULTS.read_text())
    assert {trial["system"] for trial in results["failovers"]} == {"rhizome", "Patroni"}
    assert all(trial["seconds"] is not None for trial in results["failovers"]), output[-3000:]
    for switchover in results["switchovers"]:
        assert all(client["lost"] == 0 for client in switchover["clients"].values()), switchover
    components = {(cost["system"], cost["component"]) for cost in results["costs"]}
    assert ("rhizome", "keeper") in components and ("Patroni", "patroni") in components
    assert ("rhizome", "fencing guard") in components
    scratch = SCRATCH_RAW_RESULTS.parent
    assert (scratch / "failover-side-by-side.png").stat().st_size > 0
    assert (scratch / "switchover-timeline.png").stat().st_size > 0
