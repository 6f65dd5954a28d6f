"""The sentinel process: election, handover, and refusing to act on corrupt input."""

from __future__ import annotations

import time

import pytest

from rhizome.etcd import EtcdClient, EtcdSettings
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import KeeperInfo
from tests.harness.agents import SentinelProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def store(etcd) -> ClusterStore:
    return ClusterStore(EtcdClient(EtcdSettings(endpoints=(etcd.client_url,))), "main")


def wait_for_leader(store: ClusterStore, timeout: float, not_id: str | None = None) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = store.read_leader()
        if leader is not None and leader.document.sentinel_id != not_id:
            return leader.document.sentinel_id
        time.sleep(0.05)
    raise AssertionError(f"no new leader within {timeout} s")


def start_sentinels(tmp_path, etcd, count: int) -> dict[str, SentinelProcess]:
    sentinels = {}
    for index in range(count):
        name = f"sentinel{index}"
        sentinels[name] = SentinelProcess.for_etcd(tmp_path / "sentinels", name, etcd).start()
    return sentinels


def test_one_leader_and_a_fast_handover_on_clean_stop(tmp_path, etcd, store):
    store.write_spec(ClusterSpec(), 0)
    sentinels = start_sentinels(tmp_path, etcd, 2)
    try:
        leader = wait_for_leader(store, timeout=10)
        time.sleep(0.5)
        assert store.read_leader().document.sentinel_id == leader, "leadership flapped"
        assert sorted(store.read_view().sentinels) == ["sentinel0", "sentinel1"]
        stopped_at = time.monotonic()
        sentinels[leader].stop()  # SIGTERM: revokes its lease
        successor = wait_for_leader(store, timeout=3, not_id=leader)
        assert time.monotonic() - stopped_at < 2.0
        assert successor != leader
    finally:
        for sentinel in sentinels.values():
            sentinel.stop()


def test_a_killed_leader_is_replaced_after_its_lease_expires(tmp_path, etcd, store):
    store.write_spec(ClusterSpec(), 0)
    sentinels = start_sentinels(tmp_path, etcd, 2)
    try:
        leader = wait_for_leader(store, timeout=10)
        killed_at = time.monotonic()
        sentinels[leader].kill()
        wait_for_leader(store, timeout=10, not_id=leader)
        ttl = ClusterSpec().timing.sentinel_lease_ttl
        assert time.monotonic() - killed_at < ttl + 2.0
    finally:
        for sentinel in sentinels.values():
            sentinel.stop()


def test_a_corrupt_state_is_reported_and_never_overwritten(tmp_path, etcd, store):
    store.write_spec(ClusterSpec(), 0)
    store.client.put("/rhizome/main/state", b'{"format_version": 1, "generation": "x"}')
    sentinel = SentinelProcess.for_etcd(tmp_path / "sentinels", "sentinel0", etcd).start()
    try:
        wait_for_leader(store, timeout=10)
        time.sleep(1.0)
        raw = store.client.get("/rhizome/main/state")
        assert raw is not None and raw.value == b'{"format_version": 1, "generation": "x"}'
        log = sentinel.log_text()
        assert "/rhizome/main/state" in log and "generation" in log
    finally:
        sentinel.stop()


def test_an_unreadable_keeper_document_stops_all_decisions(tmp_path, etcd, store):
    store.write_spec(ClusterSpec(), 0)
    lease = store.client.grant_lease(30)
    store.publish_keeper(
        KeeperInfo(
            name="pg2", host="127.0.0.1", port=5432, observed_at=1.0, running=True, healthy=True
        ),
        lease.id,
    )
    store.client.put("/rhizome/main/keepers/pg1", b'{"format_version": 99}', lease=lease.id)
    sentinel = SentinelProcess.for_etcd(tmp_path / "sentinels", "sentinel0", etcd).start()
    try:
        wait_for_leader(store, timeout=10)
        time.sleep(1.5)
        assert store.read_state() is None, "the sentinel decided without reading pg1"
        assert "deciding nothing" in sentinel.log_text()
        store.client.delete("/rhizome/main/keepers/pg1")
        deadline = time.monotonic() + 10
        while store.read_state() is None:
            assert time.monotonic() < deadline, "no decision once the document was gone"
            time.sleep(0.1)
    finally:
        sentinel.stop()
