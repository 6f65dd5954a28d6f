"""ClusterStore: typed documents in a real etcd."""

from __future__ import annotations

import pytest

from rhizome.config import ETCD_APIS, open_client
from rhizome.etcd import EtcdSettings
from rhizome.spec import ClusterSpec, parse_spec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import ClusterState, Command, KeeperInfo, LeaderInfo
from rhizome.store.errors import StoreDocumentError

pytestmark = [pytest.mark.integration, pytest.mark.etcd_releases]


@pytest.fixture(params=ETCD_APIS)
def store(etcd, request) -> ClusterStore:
    """The store on etcd's v3 API, then on its v2 API (python-etcd)."""
    return ClusterStore(
        open_client(EtcdSettings(endpoints=(etcd.client_url,)), request.param), "main"
    )


def keeper(name: str) -> KeeperInfo:
    return KeeperInfo(
        name=name, host="127.0.0.1", port=5432, observed_at=1.0, running=True, healthy=True
    )


def test_spec_is_written_with_compare_and_swap(store):
    assert store.read_spec() is None
    first = store.write_spec(ClusterSpec(), expected_revision=0)
    assert first is not None
    assert store.write_spec(ClusterSpec(), expected_revision=0) is None, "created twice"
    paused = parse_spec({"paused": True})
    second = store.write_spec(paused, expected_revision=first)
    assert second is not None
    assert store.write_spec(ClusterSpec(), expected_revision=first) is None, "stale revision won"
    current = store.read_spec()
    assert current is not None and current.document.paused and current.mod_revision == second


def test_state_round_trips_through_the_store(store):
    state = ClusterState(generation=1)
    revision = store.write_state(state, expected_revision=0)
    assert revision is not None
    read = store.read_state()
    assert read is not None and read.document == state and read.mod_revision == revision


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"[1, 2]", "JSON array, not an object"),
        (b'{"paused": true}', "format_version"),
        (b'{"format_version": 1, "paused": "yes"}', "paused"),
        (b'{"format_version": 1, "colour": "blue"}', "colour"),
    ],
)
def test_corrupt_or_foreign_spec_is_rejected_naming_the_key(store, raw, problem):
    if problem == "UTF-8" and not store.client.multi_key_compare:
        pytest.skip("etcd's v2 API stores text only: test_etcd_v2 checks the refusal")
    store.client.put("/rhizome/main/spec", raw)
    with pytest.raises(StoreDocumentError) as raised:
        store.read_spec()
    assert "/rhizome/main/spec" in str(raised.value)
    assert problem in str(raised.value)
    assert store.client.get("/rhizome/main/spec").value == raw, "reading changed nothing"


def test_view_reads_everything_at_one_revision_and_isolates_bad_documents(store):
    lease = store.client.grant_lease(5)
    store.publish_keeper(keeper("pg1"), lease.id)
    store.publish_keeper(keeper("pg2"), lease.id)
    store.client.put("/rhizome/main/keepers/pg3", b"garbage")
    store.write_spec(ClusterSpec(), expected_revision=0)
    view = store.read_view()
    assert sorted(view.keepers) == ["pg1", "pg2"]
    assert view.keepers["pg1"].lease == lease.id
    assert [problem.key for problem in view.problems] == ["/rhizome/main/keepers/pg3"]
    assert view.spec is not None and view.state is None
    store.client.revoke_lease(lease.id)
    assert store.read_view().keepers == {}


def test_leader_election_and_commands_are_create_if_absent(store):
    lease_one = store.client.grant_lease(5)
    lease_two = store.client.grant_lease(5)
    assert store.campaign(LeaderInfo(sentinel_id="s1", elected_at=1.0), lease_one.id)
    assert not store.campaign(LeaderInfo(sentinel_id="s2", elected_at=2.0), lease_two.id)
    leader = store.read_leader()
    assert leader is not None and leader.document.sentinel_id == "s1"
    store.client.revoke_lease(lease_one.id)
    assert store.campaign(LeaderInfo(sentinel_id="s2", elected_at=3.0), lease_two.id)

    command = Command(name="switchover", kind="switchover", requested_at=1.0, requested_by="t")
    assert store.submit_command(command)
    assert not store.submit_command(command), "a pending command is not replaced"
    pending = store.read_view().commands["switchover"]
    assert store.finish_command("switchover", pending.mod_revision)
    assert store.read_view().commands == {}


def test_a_deposed_leader_cannot_write_state(store):
    lease = store.client.grant_lease(5)
    assert store.campaign(LeaderInfo(sentinel_id="s1", elected_at=1.0), lease.id)
    tenure = store.read_leader().mod_revision
    first = store.write_state(ClusterState(generation=1), 0, leader_revision=tenure)
    assert first is not None
    store.client.revoke_lease(lease.id)  # leadership lost (lease expired)
    other = store.client.grant_lease(5)
    assert store.campaign(LeaderInfo(sentinel_id="s2", elected_at=2.0), other.id)
    stale = store.write_state(ClusterState(generation=2), first, leader_revision=tenure)
    assert stale is None, "the old leader wrote state after losing leadership"
    assert store.read_state().document.generation == 1
