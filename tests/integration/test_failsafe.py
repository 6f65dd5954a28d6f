"""Failsafe (rhizome.failsafe) on three namespaced nodes, each with an etcd member, a keeper,
a sentinel and a proxy; inserts and bank transfers through the proxies all along.

With failsafe on: every etcd member SIGSTOPped for 60 s, writes go on and no failover
follows; the master's node cut off from etcd alone (a real partition, iptables in its
namespace), the master fences and a standby takes over; every etcd member frozen with
one proxy frozen too, the master fences (a member did not confirm). With failsafe off:
the same outage stops writes. Throughout: no acknowledged write lost, never two
servers writable through the proxies. Needs root (network namespaces, iptables).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import urllib3

from chaos.analysis import count_between, dual_writable, longest_gap
from chaos.api_security import KEEPER_API_PORT, PROXY_API_PORT
from chaos.campaign import FaultRecord, run_campaign
from chaos.cluster import ChaosCluster
from chaos.plan import Fault
from chaos.workload import ACCOUNTS, INITIAL_BALANCE

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]

OUTAGE = 60.0
FAULTS = [
    Fault(1, "etcd-freeze-all", "master", OUTAGE),
    Fault(2, "node-etcd-cut", "master", 15.0),
    Fault(3, "etcd-freeze-all-and-proxy", "standby1", 20.0),
    Fault(4, "etcd-freeze-all", "master", OUTAGE),  # with failsafe off
]
FIRST_SECOND = 1.0
"""The goal: no failed write after the first second of a whole-etcd outage."""


def post_failsafe(cluster: ChaosCluster, url: str, token: str | None) -> int:
    assert cluster.api is not None
    pool = urllib3.PoolManager(ca_certs=str(cluster.api.ca_file), retries=False, timeout=5.0)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return pool.request("POST", f"{url}/failsafe?master=n1&generation=1", headers=headers).status


def check_every_api_refuses_an_unauthenticated_failsafe_request(cluster: ChaosCluster) -> None:
    assert cluster.api is not None
    for node in cluster.nodes:
        for port in (KEEPER_API_PORT, PROXY_API_PORT):
            url = f"https://{node.address}:{port}"
            assert post_failsafe(cluster, url, None) == 401, url
            assert post_failsafe(cluster, url, "not-the-token") == 401, url
            # Authenticated, but every member reaches etcd: declined (409), never confirmed.
            assert post_failsafe(cluster, url, cluster.api.token) == 409, url


class Masters:
    """The published master before each fault (the spec switched off before the last)."""

    def __init__(self, cluster: ChaosCluster) -> None:
        self.cluster = cluster
        self.before: dict[int, str | None] = {}

    def __call__(self, fault: Fault) -> None:
        if fault.number == 4:
            stored = self.cluster.store.read_spec()
            assert stored is not None
            spec = stored.document.model_copy(update={"failsafe": False})
            assert self.cluster.store.write_spec(spec, stored.mod_revision) is not None
        self.before[fault.number] = self.cluster.master_name()


def write_figures(record: FaultRecord, successes: list[float], failures: list[float]) -> str:
    start, end = record.started, record.healed
    gap = longest_gap(successes, start, end)
    failed_late = count_between(failures, start + FIRST_SECOND, end)
    return (
        f"{record.fault.describe()}: longest write pause {gap:.2f} s, "
        f"{count_between(failures, start, end)} failed inserts "
        f"({failed_late} after the first second), "
        f"{count_between(successes, start, end)} acknowledged"
    )


def test_failsafe_serves_through_an_etcd_outage_and_fences_on_a_partition(tmp_path: Path):
    with ChaosCluster(tmp_path, "sync", failsafe=True) as cluster:
        cluster.start()
        check_every_api_refuses_an_unauthenticated_failsafe_request(cluster)
        masters = Masters(cluster)
        result = run_campaign(cluster, 0, FAULTS, print, before_fault=masters)
    records = {record.fault.number: record for record in result.records}
    inserts = result.inserts
    for record in result.records:
        print(write_figures(record, inserts.successes, inserts.failures))
    master_after = {number: masters.before.get(number + 1) for number in records}
    master_after[len(FAULTS)] = None  # not needed after the last fault

    outage = records[1]
    assert longest_gap(inserts.successes, outage.started, outage.healed) < 3.0, (
        "failsafe on: writes must go on through a whole-etcd outage"
    )
    assert master_after[1] == masters.before[1], "failsafe on: no failover after etcd returned"
    assert master_after[2] not in (None, masters.before[2]), (
        "failsafe on, the master alone cut off from etcd: it fences and a standby takes over"
    )
    unconfirmed = records[3]
    assert longest_gap(inserts.successes, unconfirmed.started, unconfirmed.healed) > 8.0, (
        "a frozen proxy cannot confirm: the master must fence during the outage"
    )
    off = records[4]
    assert longest_gap(inserts.successes, off.started, off.healed) > OUTAGE - 10, (
        "failsafe off: a whole-etcd outage stops writes (docs/protocol.md)"
    )
    assert [r.fault.describe() for r in result.records if r.converged is None] == []
    assert result.lost == [], "acknowledged writes lost"
    assert dual_writable(s for s in result.samples if s.via == "proxy") == []
    assert result.bank_total == ACCOUNTS * INITIAL_BALANCE
