"""Following a successor cluster: routes, the fence's switch, and the chain of successors.

The followers are stand-ins (no etcd): the tests play their reports to the
fence the way the watch and lease threads post them to the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from rhizome import clock
from rhizome.config import StoreConfig
from rhizome.etcd import EtcdSettings
from rhizome.proxy import succession as succession_module
from rhizome.proxy.config import ListenAddress, ProxyConfig
from rhizome.proxy.dispatcher import Dispatcher
from rhizome.proxy.fencing import StoreFence
from rhizome.proxy.routing import Backend, Routes, RoutingSettings, compute_routes
from rhizome.proxy.succession import Succession
from rhizome.spec import TimingSettings
from rhizome.store.documents import ClusterState, KeeperAssignment, ProxyTarget
from rhizome.store.view import ClusterView, Stored

BLUE_MASTER = Backend("blue1", "127.0.0.1", 5432)
GREEN_MASTER = Backend("green1", "127.0.0.1", 5433)
TEAL_MASTER = Backend("teal1", "127.0.0.1", 5434)
TIMING = TimingSettings(renew_interval=0.05, proxy_close_deadline=0.4, proxy_lease_ttl=1.0)
CONFIG = ProxyConfig(id="p", read_write_listen=ListenAddress("127.0.0.1", 1))


def routes(
    cluster: str,
    revision: int,
    master: Backend | None,
    generation: int,
    successor: str | None = None,
) -> Routes:
    return Routes(
        revision=revision,
        cluster=cluster,
        successor=successor,
        proxy_generation=generation,
        master=master,
        timing=TIMING,
    )


def test_a_state_naming_a_successor_routes_nowhere_and_names_it():
    target = ProxyTarget(proxy_generation=7, master="pg1", host="10.0.0.1", port=5432)
    state = ClusterState(
        generation=3,
        initialized=True,
        master="pg1",
        assignments={"pg1": KeeperAssignment(role="master")},
        proxy_target=target,
        successor="green",
    )
    view = ClusterView(revision=42, state=Stored(document=state, mod_revision=40))
    computed = compute_routes(view, RoutingSettings(fallback_to_master=True), "blue")
    assert (computed.cluster, computed.successor, computed.revision) == ("blue", "green", 42)
    assert computed.proxy_generation == 7
    assert computed.master is None and not computed.read_only_targets
    assert not computed.read_only_allowed, "not even the old master's read-only sessions stay"
    without = compute_routes(ClusterView(revision=42), RoutingSettings(), "blue")
    assert without.successor is None


class StandInFollower:
    """Records what the succession does with a follower; runs no thread."""

    def __init__(self, store_config: StoreConfig, *arguments: Any) -> None:
        self.cluster = store_config.cluster
        self.wake = threading.Event()
        self.started = False
        self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True


def new_succession(monkeypatch: pytest.MonkeyPatch) -> tuple[Succession, StoreFence]:
    monkeypatch.setattr(succession_module, "StoreFollower", StandInFollower)
    fence = StoreFence(Dispatcher(CONFIG), wake_publisher=lambda: None)
    store_config = StoreConfig(EtcdSettings(endpoints=("http://127.0.0.1:1",)), cluster="blue")
    loop = asyncio.get_running_loop()
    succession = Succession(store_config, CONFIG, fence, loop, None)  # type: ignore[arg-type]
    succession.start()
    return succession, fence


def test_the_proxy_moves_to_the_successor_and_never_applies_the_old_cluster_again(monkeypatch):
    async def scenario() -> None:
        succession, fence = new_succession(monkeypatch)
        blue_follower = succession.follower
        fence.renewed(clock.monotonic(), routes("blue", 10, BLUE_MASTER, 12), "blue")
        assert fence.dispatcher.routes.master == BLUE_MASTER
        assert fence.acknowledged_generation_of("blue") == 12
        fence.offer(routes("blue", 20, None, 13, successor="green"))
        await asyncio.gather(*succession.retiring)
        assert blue_follower.stopped and succession.follower.cluster == "green"
        assert succession.follower.started and fence.cluster == "green"
        assert fence.fenced and fence.dispatcher.routes.master is None
        assert fence.acknowledged_generation_of("green") == 0, "blue's 13 means nothing to green"
        fence.offer(routes("blue", 30, BLUE_MASTER, 14))  # a later change of blue
        fence.renewed(clock.monotonic(), routes("blue", 31, BLUE_MASTER, 14), "blue")
        fence.offer(routes("green", 25, GREEN_MASTER, 5))  # the watch, before a fresh renewal
        assert fence.fenced and fence.dispatcher.routes.master is None
        fence.renewed(clock.monotonic(), None, "green")
        assert fence.fenced, "a renewal without a fresh view does not end the switch"
        fence.renewed(clock.monotonic(), routes("green", 26, GREEN_MASTER, 5), "green")
        assert not fence.fenced and fence.dispatcher.routes.master == GREEN_MASTER
        assert fence.acknowledged_generation_of("green") == 5
        assert fence.acknowledged_generation_of("blue") == 0
        fence.offer(routes("blue", 40, BLUE_MASTER, 15))
        assert fence.dispatcher.routes.master == GREEN_MASTER
        fence.offer(routes("green", 24, None, 4))
        assert fence.dispatcher.routes.master == GREEN_MASTER, "an older view is ignored"
        fence.stop()

    asyncio.run(scenario())


def test_a_fresh_view_naming_a_successor_leaves_the_proxy_fenced_until_the_successor_renews(
    monkeypatch,
):
    """A proxy restarted on blue after the cutover: blue's renewal proves nothing about green."""

    async def scenario() -> None:
        succession, fence = new_succession(monkeypatch)
        fence.renewed(clock.monotonic(), routes("blue", 10, None, 13, successor="green"), "blue")
        assert fence.cluster == "green" and fence.fenced
        fence.offer(routes("green", 11, GREEN_MASTER, 5))  # the watch of green, first
        assert fence.fenced and fence.dispatcher.routes.master is None
        fence.renewed(clock.monotonic(), routes("green", 12, GREEN_MASTER, 5), "green")
        assert not fence.fenced and fence.dispatcher.routes.master == GREEN_MASTER
        await asyncio.gather(*succession.retiring)
        fence.stop()

    asyncio.run(scenario())


def test_a_chain_is_followed_to_its_end_and_logged_once_per_move(monkeypatch, caplog):
    """A proxy started on blue, whose state names green, whose state names teal."""

    async def scenario() -> None:
        succession, fence = new_succession(monkeypatch)
        fence.renewed(clock.monotonic(), routes("blue", 10, None, 13, successor="green"), "blue")
        fence.offer(routes("blue", 10, None, 13, successor="green"))  # the watch, same view
        fence.renewed(clock.monotonic(), routes("green", 11, None, 8, successor="teal"), "green")
        fence.renewed(clock.monotonic(), routes("teal", 12, TEAL_MASTER, 2), "teal")
        await asyncio.gather(*succession.retiring)
        assert succession.chain == ["blue", "green", "teal"] and fence.cluster == "teal"
        assert fence.dispatcher.routes.master == TEAL_MASTER
        assert fence.acknowledged_generation_of("teal") == 2
        fence.stop()

    with caplog.at_level(logging.INFO, logger="rhizome.proxy.succession"):
        asyncio.run(scenario())
    moves = [record.getMessage() for record in caplog.records]
    assert moves == [
        "following cluster green, the successor of blue",
        "following cluster teal, the successor of green",
    ]


def test_a_chain_returning_to_a_cluster_followed_is_refused_and_routes_nowhere(monkeypatch, caplog):
    async def scenario() -> None:
        succession, fence = new_succession(monkeypatch)
        fence.renewed(clock.monotonic(), routes("blue", 10, None, 13, successor="green"), "blue")
        fence.renewed(clock.monotonic(), routes("green", 11, None, 8, successor="blue"), "green")
        fence.offer(routes("green", 12, None, 8, successor="blue"))
        fence.renewed(clock.monotonic(), routes("green", 13, None, 8, successor="blue"), "green")
        assert succession.chain == ["blue", "green"] and fence.cluster == "green"
        assert fence.dispatcher.routes.master is None
        assert fence.acknowledged_generation_of("green") == 8
        fence.renewed(clock.monotonic(), routes("green", 14, None, 9, successor="teal"), "green")
        assert succession.chain == ["blue", "green", "teal"], "another successor is followed"
        await asyncio.gather(*succession.retiring)
        fence.stop()

    with caplog.at_level(logging.ERROR, logger="rhizome.proxy.succession"):
        asyncio.run(scenario())
    errors = [record.getMessage() for record in caplog.records]
    assert len(errors) == 1, errors
    assert "the successor chain blue -> green -> blue returns" in errors[0]


def test_a_cluster_naming_itself_as_successor_is_a_loop(monkeypatch):
    async def scenario() -> None:
        succession, fence = new_succession(monkeypatch)
        fence.renewed(clock.monotonic(), routes("blue", 10, None, 13, successor="blue"), "blue")
        assert succession.chain == ["blue"] and succession.refused == "blue"
        assert fence.dispatcher.routes.master is None
        fence.stop()

    asyncio.run(scenario())


def test_an_acknowledgement_counts_only_for_the_cluster_whose_routes_are_in_force():
    dispatcher = Dispatcher(CONFIG)
    dispatcher.record_applied(routes("blue", 10, None, 13))
    assert dispatcher.acknowledgement == ("blue", 13) and dispatcher.applied_generation == 13
    fence = StoreFence(dispatcher, wake_publisher=lambda: None, cluster="green")
    assert fence.acknowledged_generation_of("green") == 0
    assert fence.acknowledged_generation_of("blue") == 13
