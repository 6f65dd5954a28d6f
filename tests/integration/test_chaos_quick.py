"""A quick fault-injection campaign (chaos/): ten faults on three namespaced nodes, sync mode.

Needs root (network namespaces, iptables). Asserts the campaign's targets:
no acknowledged write lost, no dual-writable interval through the proxies,
the bank total intact, every fault followed by convergence.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaos.analysis import dual_writable
from chaos.plan import plan
from chaos.report import Section, render
from chaos.run import run
from chaos.workload import ACCOUNTS, INITIAL_BALANCE

QUICK_KINDS = [
    "node-kill", "keeper-kill", "keeper-freeze", "postgres-kill", "proxy-kill",
    "etcd-kill", "node-isolate", "node-etcd-cut", "etcd-blackhole", "switchover",
]  # fmt: skip

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def test_a_quick_sync_campaign_loses_nothing_and_never_has_two_writable_masters(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("CHAOS_SEED", "20261203"))
    faults = plan(seed, int(os.environ.get("CHAOS_FAULTS", "10")), QUICK_KINDS, 0.25)
    result = run(tmp_path, seed, faults, "sync", print)
    print(render([Section(result, f"pytest seed {seed}")]))
    proxied = dual_writable(sample for sample in result.samples if sample.via == "proxy")
    assert len(result.inserts.acknowledged) > 100, "the workload barely ran"
    assert result.lost == [], f"seed {seed}: acknowledged writes lost"
    assert proxied == [], f"seed {seed}: two servers writable through proxies"
    assert result.bank_total == ACCOUNTS * INITIAL_BALANCE
    unconverged = [r.fault.describe() for r in result.records if r.converged is None]
    assert unconverged == [], f"seed {seed}: not converged after {unconverged}"
