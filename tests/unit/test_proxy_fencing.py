"""The close deadline and fresh-view rule, on a real event loop without sockets."""

from __future__ import annotations

import asyncio
import time

from rhizome import clock
from rhizome.etcd import EventKind, KeyValue, RangeResult, WatchEvent, WatchUpdate
from rhizome.proxy.config import ListenAddress, ProxyConfig
from rhizome.proxy.dispatcher import Dispatcher
from rhizome.proxy.fencing import StoreFence
from rhizome.proxy.follower import apply_update
from rhizome.proxy.routing import Backend, Routes
from rhizome.spec import TimingSettings

PG1 = Backend("pg1", "127.0.0.1", 5432)
PG2 = Backend("pg2", "127.0.0.1", 5433)
TIMING = TimingSettings(renew_interval=0.05, proxy_close_deadline=0.4, proxy_lease_ttl=1.0)


def routes(revision: int, master: Backend | None, generation: int) -> Routes:
    return Routes(revision=revision, proxy_generation=generation, master=master, timing=TIMING)


def new_fence() -> tuple[StoreFence, list[int]]:
    config = ProxyConfig(id="p", read_write_listen=ListenAddress("127.0.0.1", 1))
    wakes: list[int] = []
    fence = StoreFence(Dispatcher(config), wake_publisher=lambda: wakes.append(1))
    return fence, wakes


def test_routes_apply_only_after_a_renewal_with_a_fresh_view():
    async def scenario() -> None:
        fence, wakes = new_fence()
        fence.offer(routes(10, PG1, 1))
        assert fence.fenced and fence.dispatcher.routes.master is None
        fence.renewed(time.monotonic(), None)
        assert fence.fenced, "a renewal without a fresh view does not end the fence"
        fence.renewed(time.monotonic(), routes(11, PG1, 1))
        assert not fence.fenced and fence.dispatcher.routes.master == PG1
        assert fence.acknowledged_generation == 1 and wakes
        fence.offer(routes(9, PG2, 2))
        assert fence.dispatcher.routes.master == PG1, "an older view is ignored"
        fence.offer(routes(12, None, 2))
        assert fence.dispatcher.routes.master is None and fence.acknowledged_generation == 2
        fence.stop()

    asyncio.run(scenario())


def test_a_missed_close_deadline_routes_nowhere_until_the_next_fresh_renewal():
    async def scenario() -> None:
        fence, _ = new_fence()
        fence.renewed(time.monotonic(), routes(5, PG1, 3))
        assert fence.dispatcher.may_forward()
        await asyncio.sleep(TIMING.proxy_close_deadline / 2)
        fence.renewed(time.monotonic(), None)  # pushes the deadline on
        await asyncio.sleep(TIMING.proxy_close_deadline / 2)
        assert not fence.fenced
        await asyncio.sleep(TIMING.proxy_close_deadline)
        assert fence.fenced and fence.dispatcher.routes.master is None
        assert not fence.dispatcher.may_forward()
        late = time.monotonic() - TIMING.proxy_close_deadline - 0.01
        fence.renewed(late, routes(6, PG1, 3))
        await asyncio.sleep(0)
        assert fence.fenced, "a renewal sent too long ago proves nothing"
        fence.renewed(time.monotonic(), routes(7, PG2, 4))
        assert not fence.fenced and fence.dispatcher.routes.master == PG2
        fence.stop()

    asyncio.run(scenario())


def item(key: str, revision: int) -> KeyValue:
    return KeyValue(key, b"v", create_revision=revision, mod_revision=revision, version=1, lease=0)


def test_watch_updates_keep_the_keys_and_the_revision_they_are_complete_to():
    keys: dict[str, KeyValue] = {}
    snapshot = RangeResult(revision=20, items=(item("/a", 3), item("/b", 4)))
    assert apply_update(keys, WatchUpdate(revision=20, snapshot=snapshot), 0) == 20
    events = (
        WatchEvent(EventKind.PUT, item("/c", 21)),
        WatchEvent(EventKind.DELETE, item("/a", 22)),
    )
    assert apply_update(keys, WatchUpdate(revision=30, events=events), 20) == 22
    assert sorted(keys) == ["/b", "/c"]


def test_a_report_run_after_a_missed_deadline_fences_even_before_the_timer_ran(monkeypatch):
    """After a freeze the loop may run a store report before the deadline timer."""

    async def scenario() -> None:
        fence, _ = new_fence()
        start = clock.monotonic()
        fence.renewed(start, routes(5, PG1, 3))
        assert not fence.fenced and fence.dispatcher.routes.master == PG1
        resumed = start + 10 * TIMING.proxy_close_deadline
        monkeypatch.setattr(clock, "monotonic", lambda: resumed)
        fence.renewed(resumed, None)  # sent after the freeze: the lease lives, the view is stale
        assert fence.fenced and fence.dispatcher.routes.master is None
        fence.renewed(resumed, routes(6, PG2, 4))  # the next one reads the store again
        assert not fence.fenced and fence.dispatcher.routes.master == PG2
        fence.stop()

    asyncio.run(scenario())


def test_a_watch_report_after_a_missed_deadline_fences_first(monkeypatch):
    async def scenario() -> None:
        fence, _ = new_fence()
        start = clock.monotonic()
        fence.renewed(start, routes(5, PG1, 3))
        monkeypatch.setattr(clock, "monotonic", lambda: start + 10 * TIMING.proxy_close_deadline)
        fence.offer(routes(6, PG1, 3))
        assert fence.fenced and fence.dispatcher.routes.master is None
        fence.stop()

    asyncio.run(scenario())


def test_a_stale_renewal_never_extends_the_deadline_past_its_send_time_plus_the_deadline():
    async def scenario() -> None:
        fence, _ = new_fence()
        start = clock.monotonic()
        fence.renewed(start, routes(5, PG1, 3))
        fence.renewed(start - 5, None)  # queued long ago, run now
        assert fence.dispatcher.forward_until == start + TIMING.proxy_close_deadline
        fence.stop()

    asyncio.run(scenario())


def test_a_halted_fence_forwards_nothing_again():
    async def scenario() -> None:
        fence, _ = new_fence()
        fence.renewed(clock.monotonic(), routes(5, PG1, 3))
        fence.halt()
        assert not fence.dispatcher.may_forward() and not fence.dispatcher.accepting
        fence.renewed(clock.monotonic(), routes(6, PG1, 3))
        fence.offer(routes(7, PG2, 4))
        assert fence.fenced and fence.dispatcher.routes.master is None
        assert not fence.dispatcher.may_forward()

    asyncio.run(scenario())
