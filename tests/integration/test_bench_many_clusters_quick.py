"""Smoke run of bench/many_clusters.py: N=2 (one load cluster, the real one), one failover.

Real three-member etcd, a real rhizome-sentinel and fake keepers for the load
cluster, three keepers with PostgreSQL for the real one; ~30 s. docs/ is left
alone (--no-report).
"""

from __future__ import annotations

import json

import pytest

from tests.integration.bench_support import REPOSITORY, run_bench

pytestmark = pytest.mark.integration

SCRATCH = REPOSITORY / "build" / "many-clusters-scratch"


def test_many_clusters_bench_measures_load_and_failover():
    (SCRATCH / "results.json").unlink(missing_ok=True)
    output = run_bench("many_clusters.py", ["--quick", "--no-report"], timeout=240)
    results = json.loads((SCRATCH / "results.json").read_text())
    assert results["context"]["unmeasured"] is None, results["context"]
    [step] = results["steps"]
    assert step["clusters"] == 2 and step["healthy_load_clusters"] == 1, step
    assert step["saturated"] is None, step
    assert step["requests_per_second"] > 0 and step["etcd_cpu_percent"] > 0, step
    assert step["keepalive_p99_ms"] is not None, step
    assert step["keeper_errors"] == 0 and step["fences"] == 0, step
    assert step["load_failovers"] == 0 and step["dead_processes"] == 0, step
    assert [seconds is not None for seconds in step["failover_seconds"]] == [True], step
    assert "## Many clusters on one etcd" in output
    assert (SCRATCH / "many-clusters.png").stat().st_size > 0
