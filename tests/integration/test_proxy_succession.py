"""After a major-upgrade cutover the proxies of the old cluster follow its successor.

Cluster "main" (blue, the proxy's configured cluster) routes to pg1; its
successor "main-17" (green) routes to pg2. When blue's state names green as
its successor and routes nowhere, a client held by the proxy reaches pg2; the
proxy's document moves from blue's proxies/ to green's, acknowledging green's
generation (a smaller number than blue's), and green's later switchovers are
followed like those of the proxy's own cluster. A proxy restarted with blue
in its configuration goes straight on to green.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rhizome.etcd import EtcdClient, EtcdSettings, EventKind, PrefixWatcher
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.codec import decode_document
from rhizome.store.documents import ProxyInfo
from rhizome.store.keys import KeyKind
from tests.integration.test_proxy_support import (
    FAST_TIMING,
    ProxyProcess,
    StandInSentinel,
    port_through,
    server_port,
    wait_for,
)

pytestmark = pytest.mark.integration

SUCCESSOR = "main-17"
HELD_READ_WRITE = 'rhizome_proxy_held_connections{port="read_write"}'


class SuccessorSentinel(StandInSentinel):
    """The stand-in sentinel of the successor cluster (StandInSentinel writes "main")."""

    def __init__(self, etcd_url: str, cluster: str) -> None:
        self.client = EtcdClient(EtcdSettings(endpoints=(etcd_url,)))
        self.store = ClusterStore(self.client, cluster)
        self.lease = self.client.grant_lease(60)
        self.members = {}
        assert self.store.write_spec(ClusterSpec(timing=FAST_TIMING), 0) is not None


@pytest.fixture
def green(etcd):
    stand_in = SuccessorSentinel(etcd.client_url, SUCCESSOR)
    yield stand_in
    stand_in.close()


class AcknowledgementRecorder:
    """Every acknowledgement a cluster's proxies publish, from a watch (none is missed)."""

    def __init__(self, store: ClusterStore) -> None:
        prefix = store.keys.member_prefix(KeyKind.PROXY)
        self.watcher = PrefixWatcher(store.client, prefix, idle_timeout=1.0)
        self.acknowledged: list[int] = []
        self.thread = threading.Thread(target=self.record, daemon=True)
        self.thread.start()

    def record(self) -> None:
        for update in self.watcher.updates():
            for event in update.events:
                if event.kind is EventKind.PUT:
                    info = decode_document(event.item.key, event.item.value, ProxyInfo)
                    self.acknowledged.append(info.acknowledged_proxy_generation)

    def stop(self) -> list[int]:
        self.watcher.close()
        self.thread.join(timeout=5)
        return self.acknowledged


def hand_over(blue: StandInSentinel, successor: str) -> int:
    """Blue's leader ends a cutover: routes nowhere (a new generation), names the successor."""
    stored = blue.store.read_state()
    assert stored is not None
    previous = stored.document
    target = previous.proxy_target.retargeted(None)
    state = previous.with_next_generation(proxy_target=target, successor=successor)
    assert blue.store.write_state(state, stored.mod_revision) is not None
    return target.proxy_generation


def connect_in_background(proxy: ProxyProcess) -> tuple[threading.Thread, dict[str, Any]]:
    """A client connection through the proxy, kept open; `result` gets its server's port."""
    result: dict[str, Any] = {}

    def connect() -> None:
        try:
            connection = proxy.connect()
            result["connection"] = connection
            result["port"] = server_port(connection)
        except Exception as error:
            result["error"] = error

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    return thread, result


def test_proxies_follow_the_successor_and_its_switchovers(postgres_factory, sentinel, green, proxy):
    pg1, pg2 = postgres_factory("pg1"), postgres_factory("pg2")
    sentinel.members.update(pg1=pg1, pg2=pg2)
    green.members.update(pg1=pg1, pg2=pg2)
    for _ in range(5):  # blue's generations are larger numbers than green's
        sentinel.route_to("pg1")
    green_generation = green.route_to("pg2")
    recorder = AcknowledgementRecorder(green.store)
    proxy.start()
    assert port_through(proxy) == pg1.port
    assert proxy.health()[1]["cluster"] == "main"

    blue_nowhere = sentinel.route_to(None)  # the cutover's blocking phase
    wait_for(lambda: sentinel.acknowledged() == blue_nowhere, what="acknowledgement of 'none'")
    held, result = connect_in_background(proxy)
    wait_for(lambda: proxy.metric(HELD_READ_WRITE) == 1, what="the client to be held")
    assert green_generation < hand_over(sentinel, SUCCESSOR)
    held.join(timeout=20)
    assert result.get("port") == pg2.port, result

    wait_for(lambda: green.acknowledged() == green_generation, what="the proxy under green")
    wait_for(lambda: sentinel.acknowledged() is None, what="the proxy's key under blue to go")
    assert proxy.health()[1]["cluster"] == SUCCESSOR
    assert "following cluster main-17, the successor of main" in proxy.log_tail()

    # Blue's later changes are not applied; green's switchover is followed.
    sentinel.route_to("pg1")
    green_nowhere = green.route_to(None)
    wait_for(lambda: green.acknowledged() == green_nowhere, what="green's 'none' acknowledged")
    with pytest.raises(Exception, match="closed"):
        server_port(result["connection"])  # the session to green's old master was closed
    green_switched = green.route_to("pg1")
    wait_for(lambda: green.acknowledged() == green_switched, what="green's new target")
    assert port_through(proxy) == pg1.port
    assert sentinel.acknowledged() is None, "nothing is published under blue again"
    published = recorder.stop()
    assert published and set(published) <= {0, green_generation, green_nowhere, green_switched}
    assert published == sorted(published), "never a blue generation, never backwards"


def test_a_restarted_proxy_follows_the_chain_at_start(postgres_factory, sentinel, green, proxy):
    pg1, pg2 = postgres_factory("pg1"), postgres_factory("pg2")
    sentinel.members.update(pg1=pg1, pg2=pg2)
    green.members.update(pg1=pg1, pg2=pg2)
    sentinel.route_to("pg1")
    green_generation = green.route_to("pg2")
    sentinel.route_to(None)
    hand_over(sentinel, SUCCESSOR)
    proxy.start()
    assert proxy.health()[1]["cluster"] == SUCCESSOR
    assert port_through(proxy) == pg2.port
    wait_for(lambda: green.acknowledged() == green_generation, what="the proxy under green")
    wait_for(lambda: sentinel.acknowledged() is None, what="no key under blue")
    proxy.stop()
    assert green.acknowledged() is None, "a stopped proxy revokes its lease under green"
