"""StoreFollower and LeaseHolder against a real etcd."""

from __future__ import annotations

import time

import pytest

from rhizome.config import ETCD_APIS, open_client
from rhizome.etcd import EtcdSettings
from rhizome.lease import LeaseHolder
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.codec import encode_document
from rhizome.store.documents import ClusterState, KeeperInfo
from rhizome.store.follower import StoreFollower

pytestmark = [pytest.mark.integration, pytest.mark.etcd_releases]


@pytest.fixture(params=ETCD_APIS)
def store(etcd, request) -> ClusterStore:
    """The store on etcd's v3 API, then on its v2 API (python-etcd)."""
    settings = EtcdSettings(endpoints=(etcd.client_url,), request_timeout=1.0)
    return ClusterStore(open_client(settings, request.param), "main")


def keeper(name: str) -> KeeperInfo:
    return KeeperInfo(
        name=name, host="127.0.0.1", port=5432, observed_at=1.0, running=True, healthy=True
    )


def test_follower_view_tracks_the_store(store):
    store.write_spec(ClusterSpec(), 0)
    follower = StoreFollower(store, idle_timeout=1.0).start()
    try:
        revision = follower.wait_for_change(0, timeout=3)
        assert follower.synchronized and follower.view().spec is not None
        lease = LeaseHolder(store.client, ttl=2)
        assert lease.renew() and lease.granted_new
        store.publish_keeper(keeper("pg1"), lease.lease_id)
        revision = follower.wait_for_change(revision, timeout=2)
        assert list(follower.view().keepers) == ["pg1"]
        started = time.monotonic()
        lease.revoke()
        follower.wait_for_change(revision, timeout=2)
        assert follower.view().keepers == {} and time.monotonic() - started < 0.5
    finally:
        follower.stop()


def test_own_writes_are_visible_before_their_event(store):
    follower = StoreFollower(store).start()
    try:
        follower.wait_for_change(0, timeout=3)
        state = ClusterState(generation=3)
        written = store.write_state(state, 0)
        follower.record_own_write("/rhizome/main/state", encode_document(state), written)
        view = follower.view()
        assert view.state is not None and view.state.document.generation == 3
        assert view.state.mod_revision == written
    finally:
        follower.stop()


def test_follower_survives_an_etcd_restart(etcd, store):
    follower = StoreFollower(store, idle_timeout=1.0).start()
    try:
        follower.wait_for_change(0, timeout=3)
        etcd.restart()
        store.write_spec(ClusterSpec(), 0)
        deadline = time.monotonic() + 10
        while follower.view().spec is None:
            assert time.monotonic() < deadline, "follower never saw the write after restart"
            time.sleep(0.05)
        assert follower.connected
    finally:
        follower.stop()


def test_lease_holder_reports_time_since_renewal_and_regrants(store):
    lease = LeaseHolder(store.client, ttl=1.2)
    assert lease.ttl == 2
    assert lease.seconds_since_renewal() == float("inf")
    assert lease.renew() and lease.granted_new
    first = lease.lease_id
    time.sleep(0.2)
    assert lease.renew() and not lease.granted_new
    assert lease.seconds_since_renewal() < 0.1
    store.client.revoke_lease(first)
    assert not lease.renew(), "renewing a revoked lease must fail"
    assert lease.renew() and lease.granted_new and lease.lease_id != first
