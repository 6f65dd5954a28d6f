"""What only the v2 backend (rhizome.etcd_v2, python-etcd) has to get right, against real
etcd (3.4 and 3.5 with --enable-v2): the event history running out, members answering
v2 errors, lease markers, refreshes that change indexes, and the deposed leader's write."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import urllib3

from rhizome.config import open_client
from rhizome.etcd import (
    EtcdAuthError,
    EtcdConfigurationError,
    EtcdLeaseExpired,
    EtcdRequestError,
    EtcdSettings,
)
from rhizome.etcd_v2 import EtcdV2Client
from rhizome.lease import LeaseHolder
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import ClusterState, LeaderInfo
from rhizome.store.keys import KeyKind

pytestmark = [pytest.mark.integration, pytest.mark.etcd_releases]

HISTORY = 1000
"""Events etcd's v2 store keeps for watches that ask for an index in the past."""


def v2_client(*urls: str, **options) -> EtcdV2Client:
    settings = EtcdSettings(endpoints=urls, endpoint_order="listed", request_timeout=1.0, **options)
    client = open_client(settings, "v2")
    assert isinstance(client, EtcdV2Client)
    return client


def test_a_watch_whose_index_left_the_history_reads_everything(etcd):
    client = v2_client(etcd.client_url)
    client.put("/h/kept", b"old")
    client.put("/h/removed", b"doomed")
    watcher = client.watcher("/h/", idle_timeout=2.0)
    updates = watcher.updates()
    first = next(updates)
    assert first.snapshot is not None and len(first.snapshot.items) == 2
    # While the consumer is away, keys change and more events than etcd keeps happen.
    client.put("/h/kept", b"new")
    client.delete("/h/removed")
    for index in range(HISTORY + 10):
        client.put("/elsewhere/busy", str(index).encode())
    client.put("/h/added", b"fresh")
    second = next(updates)
    watcher.close()
    assert second.snapshot is not None, "expected a full re-read after the index was cleared"
    state = {kv.key: kv.value for kv in second.snapshot.items}
    assert state == {"/h/kept": b"new", "/h/added": b"fresh"}


class ElectingMember(http.server.BaseHTTPRequestHandler):
    """A v2 member in the middle of an election: it answers every request with an error."""

    def do_GET(self) -> None:
        self._refuse()

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._refuse()

    def do_POST(self) -> None:
        self.do_PUT()

    def _refuse(self) -> None:
        data = json.dumps({"errorCode": 300, "message": "Raft Internal Error", "index": 9}).encode()
        self.send_response(500)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *arguments) -> None:
        pass


def test_a_member_answering_raft_errors_is_skipped_by_calls_and_watches(etcd):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ElectingMember)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = v2_client(f"http://127.0.0.1:{server.server_address[1]}", etcd.client_url)
        client.put("/electing/a", b"1")
        watcher = client.watcher("/electing/", idle_timeout=1.0)
        updates = watcher.updates()
        assert next(updates).snapshot is not None
        client.put("/electing/b", b"2")
        event = next(updates).events[0]
        watcher.close()
        assert (event.item.key, event.item.value) == ("/electing/b", b"2")
    finally:
        server.shutdown()


def test_leased_keys_carry_their_lease_and_refreshes_keep_compare_and_swap(etcd):
    client = v2_client(etcd.client_url)
    lease = client.grant_lease(3)
    written = client.put_if_unchanged("/l/doc", b"{}", 0, lease=lease.id)
    assert written is not None
    item = client.get("/l/doc")
    assert item is not None and item.lease == lease.id and item.value == b"{}"
    client.keepalive(lease.id)
    refreshed = client.get("/l/doc")
    assert refreshed is not None and refreshed.mod_revision > written, "a refresh moves the index"
    assert client.put_if_unchanged("/l/doc", b'{"a": 1}', written, lease=lease.id) is not None
    other = v2_client(etcd.client_url)
    assert other.put_if_unchanged("/l/doc", b"{}", written) is None, "another's stale index won"


def test_a_lease_is_adopted_by_another_process_and_only_its_own_keys_are_refreshed(etcd):
    first = v2_client(etcd.client_url)
    holder = LeaseHolder(first, ttl=2)
    assert holder.renew() and holder.lease_id is not None
    first.put("/a/mine", b"1", lease=holder.lease_id)
    first.put("/a/taken", b"2", lease=holder.lease_id)
    second = v2_client(etcd.client_url)
    second.put("/a/taken", b"somebody else's")  # on no lease now
    adopter = LeaseHolder(v2_client(etcd.client_url), ttl=2)
    assert adopter.adopt(holder.lease_id)
    for _ in range(4):  # 3 s: longer than the TTL
        assert adopter.renew(within=1.0)
        threading.Event().wait(0.75)
    assert first.get("/a/mine") is not None, "the adopted lease did not keep its key"
    taken = first.get("/a/taken")
    assert taken is not None and taken.lease == 0
    adopter.revoke()
    assert first.get("/a/mine") is None
    assert first.get("/a/taken") is not None, "revoking deleted a key not on the lease"
    with pytest.raises(EtcdLeaseExpired):
        first.keepalive(holder.lease_id)


def test_a_deposed_leader_that_checked_its_key_before_the_new_election_cannot_write(etcd):
    """The guard of write_state reads the leader key before the write (v2 has no
    transaction); a new leader's campaign rewrites state, so a write that passed the check
    before the election fails its compare-and-swap."""
    store = ClusterStore(v2_client(etcd.client_url), "main")
    old = store.client.grant_lease(5)
    assert store.campaign(LeaderInfo(sentinel_id="s1", elected_at=1.0), old.id)
    tenure = store.read_leader().mod_revision
    first = store.write_state(ClusterState(generation=1), 0, leader_revision=tenure)
    assert first is not None
    # s1 has checked its leader key and is about to write (generation 2) when it freezes;
    # meanwhile its lease expires and s2 is elected.
    store.client.revoke_lease(old.id)
    rival = ClusterStore(v2_client(etcd.client_url), "main")
    assert rival.campaign(
        LeaderInfo(sentinel_id="s2", elected_at=2.0), rival.client.grant_lease(5).id
    )
    state_key = store.keys.single(KeyKind.STATE)
    late = store.client.put_if_unchanged(state_key, b'{"late": true}', first)
    assert late is None, "the deposed leader's write landed after the new election"
    assert store.read_state().document.generation == 1


def test_a_leader_that_has_led_for_long_still_writes_state(etcd):
    """A watcher never sees a refresh, so the leader's view keeps its leader key's creation
    index for as long as it leads; its guarded writes of state compare on it. (The
    refreshes once remembered a minute of indexes: after 64 keepalives the leader could
    no longer write state, and no failover happened.)"""
    store = ClusterStore(v2_client(etcd.client_url), "main")
    lease = store.client.grant_lease(5)
    assert store.campaign(LeaderInfo(sentinel_id="s1", elected_at=1.0), lease.id)
    elected = store.read_leader().mod_revision
    for _ in range(100):  # a keepalive a second: 100 s of leadership
        store.client.keepalive(lease.id)
    assert store.read_leader().mod_revision > elected
    written = store.write_state(ClusterState(generation=1), 0, leader_revision=elected)
    assert written is not None, "the leader's view of its own key was refused"


def test_values_that_are_not_text_and_prefixes_that_are_not_directories_are_refused(etcd):
    client = v2_client(etcd.client_url)
    with pytest.raises(EtcdRequestError, match="UTF-8"):
        client.put("/bytes", b"\xff\xfe")
    assert client.get("/bytes") is None
    with pytest.raises(EtcdConfigurationError, match="must end with '/'"):
        client.get_prefix("/no-trailing-slash")


def v2_auth(url: str, method: str, path: str, body: dict, password: str | None = None) -> None:
    headers = {"Content-Type": "application/json"}
    if password is not None:
        headers |= urllib3.make_headers(basic_auth=f"root:{password}")
    response = urllib3.request(method, url + path, body=json.dumps(body), headers=headers)
    assert response.status in (200, 201), (path, response.status, response.data)


def enable_v2_auth(url: str, password: str) -> None:
    """A root user, a user "rhizome" that may read and write /rhizome/*, no guest access."""
    v2_auth(url, "PUT", "/v2/auth/users/root", {"user": "root", "password": password})
    v2_auth(url, "PUT", "/v2/auth/roles/rhizome",
            {"role": "rhizome", "permissions": {"kv": {"read": ["/rhizome/*"],
                                                       "write": ["/rhizome/*"]}}})  # fmt: skip
    v2_auth(url, "PUT", "/v2/auth/users/rhizome",
            {"user": "rhizome", "password": password, "roles": ["rhizome"]})  # fmt: skip
    v2_auth(url, "PUT", "/v2/auth/enable", {})
    revoke = {"role": "guest", "revoke": {"kv": {"read": ["/*"], "write": ["/*"]}}}
    v2_auth(url, "PUT", "/v2/auth/roles/guest", revoke, password)


def test_v2_users_and_roles_are_honoured_and_a_wrong_password_is_named(etcd):
    enable_v2_auth(etcd.client_url, "secret-1")
    right = ClusterStore(v2_client(etcd.client_url, username="rhizome", password="secret-1"),
                         "main")  # fmt: skip
    lease = LeaseHolder(right.client, ttl=2)
    assert lease.renew(), "the lease markers under /rhizome/_leases need the role's permission"
    assert right.write_state(ClusterState(generation=1), 0) is not None
    wrong = v2_client(etcd.client_url, username="rhizome", password="wrong")
    with pytest.raises(EtcdAuthError, match="check the etcd user, its password"):
        wrong.get("/rhizome/main/state")
    anonymous = v2_client(etcd.client_url)
    with pytest.raises(EtcdAuthError):
        anonymous.get("/rhizome/main/state")
    secret = "secret-1"
    assert secret not in repr(right.client.settings)
