"""The etcd clients against real etcd (3.4 and 3.5): KV, CAS, leases and watches, each on
etcd's v3 API (rhizome.etcd) and on its v2 API (rhizome.etcd_v2, python-etcd)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from dataclasses import replace

import pytest
import urllib3

from rhizome.config import ETCD_APIS, open_client
from rhizome.etcd import (
    EtcdLeaseExpired,
    EtcdSettings,
    EtcdUnavailable,
    EventKind,
    WatchUpdate,
)
from rhizome.etcd.client import EtcdClient
from rhizome.etcd.interface import StoreClient, Watcher

pytestmark = [pytest.mark.integration, pytest.mark.etcd_releases]


@pytest.fixture(params=ETCD_APIS)
def api(request) -> str:
    return request.param


def client_for(*urls: str, request_timeout: float = 1.0, api: str = "v3") -> StoreClient:
    """A client trying `urls` in the order given (tests choose which member comes first)."""
    settings = EtcdSettings(endpoints=urls, request_timeout=request_timeout)
    return open_client(replace(settings, endpoint_order="listed"), api)


def wait_for(condition, timeout: float, interval: float = 0.02) -> float:
    """Seconds until `condition()` held; fails the test after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - started


def test_get_put_delete_and_prefix_reads(etcd, api):
    client = client_for(etcd.client_url, api=api)
    assert client.get("/p/missing") is None
    first = client.put("/p/a", b"one")
    client.put("/p/b", b"two")
    client.put("/q/c", b"other prefix")
    item = client.get("/p/a")
    assert item is not None and item.value == b"one" and item.mod_revision == first
    listing = client.get_prefix("/p/")
    assert [(kv.key, kv.value) for kv in listing.items] == [("/p/a", b"one"), ("/p/b", b"two")]
    assert listing.revision >= first
    assert client.delete("/p/a") is True
    assert client.delete("/p/a") is False
    assert client.delete_prefix("/p/") == 1
    assert client.get_prefix("/p/").items == ()
    assert client.get("/q/c") is not None


def test_compare_and_swap_conflicts(etcd, api):
    client = client_for(etcd.client_url, api=api)
    assert client.put_if_unchanged("/cas", b"created", mod_revision=0) is not None
    assert client.put_if_unchanged("/cas", b"again", mod_revision=0) is None, "create twice"
    current = client.get("/cas")
    assert current is not None
    winner = client.put_if_unchanged("/cas", b"first writer", current.mod_revision)
    loser = client.put_if_unchanged("/cas", b"second writer", current.mod_revision)
    assert winner is not None and loser is None
    final = client.get("/cas")
    assert final is not None and final.value == b"first writer" and final.mod_revision == winner
    assert client.delete_if_unchanged("/cas", current.mod_revision) is False
    assert client.delete_if_unchanged("/cas", winner) is True
    assert client.get("/cas") is None


def test_lease_expiry_deletes_keys_within_ttl_plus_one_second(etcd, api):
    client = client_for(etcd.client_url, api=api)
    lease = client.grant_lease(2)
    client.put("/leased", b"alive", lease=lease.id)
    granted = time.monotonic()
    wait_for(lambda: client.get("/leased") is None, timeout=lease.ttl + 1.0)
    assert time.monotonic() - granted > lease.ttl - 0.5, "key deleted before its TTL"
    with pytest.raises(EtcdLeaseExpired):
        client.keepalive(lease.id)


def test_keepalive_keeps_leased_keys(etcd, api):
    client = client_for(etcd.client_url, api=api)
    lease = client.grant_lease(2)
    client.put("/kept", b"alive", lease=lease.id)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        assert client.keepalive(lease.id) == lease.ttl
        assert client.get("/kept") is not None
        time.sleep(0.5)
    client.revoke_lease(lease.id)
    assert client.get("/kept") is None
    client.revoke_lease(lease.id)  # revoking twice is harmless


def assert_renewed_by_the_channel_alone(client: EtcdClient, lease_id: int, ttl: int, monkeypatch):
    """Three renewals of `lease_id` that never reach the transport."""

    def not_through_the_transport(*arguments, **keywords):
        raise AssertionError("a renewal went through the transport")

    with monkeypatch.context() as patched:
        patched.setattr(client.transport, "call", not_through_the_transport)
        for _ in range(3):
            assert client.keepalive(lease_id, time.monotonic() + 2.0) == ttl


def test_renewals_go_through_the_keepalive_channel_until_the_lease_expires(etcd, monkeypatch):
    """After the first call the transport knows the member: renewals are the channel's
    (rhizome.etcd.keepalive); an expired lease is still reported as one."""
    client = EtcdClient(EtcdSettings(endpoints=(etcd.client_url,)))
    lease = client.grant_lease(2)
    assert_renewed_by_the_channel_alone(client, lease.id, 2, monkeypatch)
    assert client.keepalive_channel.endpoint == etcd.client_url
    assert client.transport.stats.failed == 0
    client.revoke_lease(lease.id)
    with pytest.raises(EtcdLeaseExpired):
        client.keepalive(lease.id)


class Collector:
    """Consumes a watcher in a thread, resuming after errors, as agents do."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.updates: list[WatchUpdate] = []
        self.errors: list[Exception] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.watcher.closed:
            try:
                for update in self.watcher.updates():
                    self.updates.append(update)
            except Exception as error:
                self.errors.append(error)
                time.sleep(0.1)

    def put_events(self) -> list[tuple[str, bytes]]:
        return [
            (event.item.key, event.item.value)
            for update in self.updates
            for event in update.events
            if event.kind is EventKind.PUT
        ]

    def stop(self) -> None:
        self.watcher.close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive(), "watcher did not stop on close()"


def test_watch_delivers_every_change_in_order(etcd, api):
    client = client_for(etcd.client_url, api=api)
    client.put("/w/before", b"0")
    collector = Collector(client.watcher("/w/", idle_timeout=2.0))
    wait_for(lambda: collector.updates, timeout=2)
    snapshot = collector.updates[0].snapshot
    assert snapshot is not None and [kv.key for kv in snapshot.items] == ["/w/before"]
    expected = [(f"/w/{index % 7}", str(index).encode()) for index in range(200)]
    for key, value in expected:
        client.put(key, value)
    client.delete("/w/before")
    wait_for(lambda: len(collector.put_events()) == len(expected), timeout=5)
    wait_for(lambda: collector.updates[-1].events[-1].kind is EventKind.DELETE, timeout=5)
    collector.stop()
    assert collector.put_events() == expected
    last_events = collector.updates[-1].events
    assert last_events[-1].kind is EventKind.DELETE and last_events[-1].item.key == "/w/before"
    revisions = [event.item.mod_revision for update in collector.updates for event in update.events]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)
    assert not collector.errors


def test_a_quiet_watch_lives_on_etcds_progress_notifications(etcd):
    """etcd runs as roles/etcd sets it up (a progress notification every 2 s): a watch
    that sees no event is neither probed nor opened again after its 3 s idle timeout,
    and it knows how far it has seen (it resumes from there, not from its last event)."""
    client = client_for(etcd.client_url)
    assert isinstance(client, EtcdClient)
    collector = Collector(client.watcher("/quiet/", idle_timeout=3.0))
    wait_for(lambda: collector.updates, timeout=2)
    calls_before = client.transport.stats.succeeded
    elsewhere = client.put("/not-watched", b"x")
    time.sleep(5.0)
    next_revision = collector.watcher.next_revision
    collector.stop()
    assert client.transport.stats.succeeded == calls_before + 1, "the quiet watch was probed"
    assert next_revision == elsewhere + 1
    assert not collector.errors


def test_unreachable_etcd_fails_within_one_second(etcd, api):
    etcd.stop()
    client = client_for(etcd.client_url, api=api)
    started = time.monotonic()
    with pytest.raises(EtcdUnavailable) as raised:
        client.get("/anything")
    assert time.monotonic() - started < 1.0
    assert etcd.client_url in str(raised.value)


def test_frozen_etcd_times_out_within_the_configured_bound(etcd, api):
    client = client_for(etcd.client_url, request_timeout=1.0, api=api)
    client.put("/frozen", b"before")
    etcd.freeze()
    try:
        started = time.monotonic()
        with pytest.raises(EtcdUnavailable, match="timed out"):
            client.get("/frozen")
        elapsed = time.monotonic() - started
    finally:
        etcd.thaw()
    assert 0.9 <= elapsed <= 1.0 + 0.5 + 0.5, elapsed  # request + connect timeout + slack
    assert client.get("/frozen") is not None, "client works again after thaw"


def test_watch_on_frozen_etcd_is_detected_by_the_idle_timeout(etcd, api):
    client = client_for(etcd.client_url, request_timeout=1.0, api=api)
    watcher = client.watcher("/idle/", idle_timeout=1.0)
    failures: list[tuple[float, Exception]] = []
    frozen_at: list[float] = []

    def consume() -> None:
        try:
            for _update in watcher.updates():
                pass
        except Exception as error:
            failures.append((time.monotonic(), error))

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.5)
    frozen_at.append(time.monotonic())
    etcd.freeze()
    try:
        thread.join(timeout=5)
    finally:
        etcd.thaw()
    assert failures, "the watch did not notice the frozen etcd"
    noticed_at, error = failures[0]
    assert isinstance(error, EtcdUnavailable), error
    assert noticed_at - frozen_at[0] <= 1.0 + 1.0 + 1.0  # idle + probe request + slack


def test_restart_resumes_calls_and_watches_without_losing_events(etcd, api):
    client = client_for(etcd.client_url, api=api)
    collector = Collector(client.watcher("/r/", idle_timeout=1.0))
    wait_for(lambda: collector.updates, timeout=2)
    written: list[tuple[str, bytes]] = []

    def write(index: int) -> None:
        key, value = f"/r/{index % 5}", str(index).encode()
        deadline = time.monotonic() + 20
        while True:
            try:
                client.put(key, value)
                written.append((key, value))
                return
            except EtcdUnavailable:
                assert time.monotonic() < deadline, "etcd did not come back"
                time.sleep(0.1)

    for index in range(30):
        write(index)
    etcd.restart()
    for index in range(30, 60):
        write(index)
    wait_for(lambda: len(collector.put_events()) >= len(written), timeout=10)
    collector.stop()
    assert collector.put_events() == written
    assert all(update.snapshot is None for update in collector.updates[1:])


def test_compaction_during_a_watch_forces_a_full_reread(etcd):
    client = client_for(etcd.client_url)
    client.put("/c/kept", b"old")
    client.put("/c/removed", b"doomed")
    watcher = client.watcher("/c/", idle_timeout=2.0)
    updates = watcher.updates()
    first = next(updates)
    assert first.snapshot is not None and len(first.snapshot.items) == 2
    # While the consumer is away, keys change and etcd compacts their history.
    client.put("/c/kept", b"new")
    client.delete("/c/removed")
    revision = client.put("/c/added", b"fresh")
    etcd.compact(revision)
    second = next(updates)
    watcher.close()
    assert second.snapshot is not None, "expected a full re-read after compaction"
    state = {kv.key: kv.value for kv in second.snapshot.items}
    assert state == {"/c/kept": b"new", "/c/added": b"fresh"}
    assert second.revision >= revision


def leader_index(cluster) -> int:
    """Which member is the raft leader, from each member's own status."""
    for index, url in enumerate(cluster.client_urls):
        response = urllib3.request("POST", url + "/v3/maintenance/status", body=b"{}", timeout=2)
        status = json.loads(response.data)
        if status["header"]["member_id"] == status["leader"]:
            return index
    raise AssertionError("no member reports itself as the leader")


def cluster_client_preferring(cluster, first: int, api: str) -> StoreClient:
    urls = cluster.client_urls
    return client_for(urls[first], *(url for i, url in enumerate(urls) if i != first), api=api)


def test_killing_the_preferred_member_is_transparent(etcd_cluster, api):
    follower = (leader_index(etcd_cluster) + 1) % 3
    client = cluster_client_preferring(etcd_cluster, follower, api)
    client.put("/ha/before", b"1")
    collector = Collector(client.watcher("/ha/", idle_timeout=1.0))
    wait_for(lambda: collector.updates, timeout=2)
    etcd_cluster[follower].kill()
    for index in range(10):
        started = time.monotonic()
        client.put(f"/ha/{index}", str(index).encode())  # no error: no retry in the test
        assert time.monotonic() - started < 1.0
    item = client.get("/ha/9")
    assert item is not None and item.value == b"9"
    wait_for(lambda: len(collector.put_events()) >= 10, timeout=10)
    collector.stop()
    assert collector.put_events() == [(f"/ha/{index}", str(index).encode()) for index in range(10)]


def test_killing_the_leader_member_recovers_within_an_election(etcd_cluster, api):
    leader = leader_index(etcd_cluster)
    client = cluster_client_preferring(etcd_cluster, leader, api)
    collector = Collector(client.watcher("/ha/", idle_timeout=1.0))
    wait_for(lambda: collector.updates, timeout=2)
    etcd_cluster[leader].kill()
    killed_at = time.monotonic()
    while True:
        try:
            client.put("/ha/after-election", b"1")
            break
        except EtcdUnavailable:
            assert time.monotonic() - killed_at < 5.0, "no write accepted after the election"
    assert time.monotonic() - killed_at < 5.0
    wait_for(lambda: collector.put_events() == [("/ha/after-election", b"1")], timeout=5)
    collector.stop()


class NoLeaderMember(http.server.BaseHTTPRequestHandler):
    """An etcd member in the middle of an election: it answers, but refuses requests."""

    def do_GET(self) -> None:
        self._answer(200, {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(503, {"error": "etcdserver: no leader", "code": 14})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *arguments) -> None:
        pass


def test_a_member_without_leader_is_skipped_by_calls_and_watches(etcd):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NoLeaderMember)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        electing = f"http://127.0.0.1:{server.server_address[1]}"
        # A fresh client tries the electing member first, for the stream too.
        stream = EtcdClient(client_for(electing, etcd.client_url).settings).transport.open_stream(
            "/watch", {"create_request": {"key": "L3g="}}, idle_timeout=1.0
        )
        stream.close()
        client = client_for(electing, etcd.client_url)
        assert isinstance(client, EtcdClient)
        client.put("/leaderless/a", b"1")
        collector = Collector(client.watcher("/leaderless/", idle_timeout=1.0))
        wait_for(lambda: collector.updates, timeout=3)
        client.put("/leaderless/b", b"2")
        wait_for(lambda: ("/leaderless/b", b"2") in collector.put_events(), timeout=3)
        collector.stop()
        assert collector.updates[0].snapshot is not None
    finally:
        server.shutdown()
