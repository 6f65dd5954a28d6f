"""A small simulation of keepers, proxies, faults and operators for decide().

Keepers follow a simplified protocol: a master is promoted or started, a
standby streams from its upstream (re-cloned on another timeline), a fenced
or removed keeper shuts PostgreSQL down cleanly (a shutdown checkpoint
streamed to its standbys). A host death takes PostgreSQL with it (as the
keeper's self-fencing guarantees before its lease expires); a proxy that
dies closes its connections; a proxy that comes back reads the state first.

A promotion takes a keeper-specific number of steps, or never completes: the
keeper acknowledges the generation that told it to promote only once its
PostgreSQL is a primary. While a promotion is under way the keeper is busy
waiting for it (pg_ctl promote --wait) and sees no new assignment, so a
promotion completes even after the keeper was told to fence it; the keeper
stops PostgreSQL afterwards. A promotion that never completes leaves a
healthy standby whose keeper acknowledges nothing until it is told to fence.
A keeper can freeze while its PostgreSQL runs: its last document stays
until its lease expires (keeper_lease_ttl), then disappears, while its
PostgreSQL still accepts writes. A keeper that thaws after fence_deadline
stops a primary first (its lease is lost).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from rhizome.sentinel.decision import ClusterObservation
from rhizome.spec import ClusterSpec
from rhizome.store.documents import Command, KeeperInfo, ProxyInfo
from rhizome.store.state import ClusterState
from rhizome.store.view import Stored
from tests.unit.sentinel_builders import MIB, SYSTEM_ID, command, spec

KEEPERS = ("pg1", "pg2", "pg3", "pg4")
PROXIES = ("p1", "p2")


@dataclass
class SimulatedKeeper:
    name: str
    alive: bool = True
    running: bool = False
    primary: bool = False
    has_data: bool = False
    position: int = 0
    timeline: int = 1
    acknowledged: int = 0
    synchronous_names: tuple[str, ...] = ()
    checkpoint: int | None = None
    """Start of the shutdown checkpoint record after a clean stop; None after a crash."""
    promotion_steps: int | None = 0
    """Steps a promotion of this keeper takes; None: it never completes."""
    promotion_left: int | None = None
    """Steps until the promotion under way completes (-1: never); None: none under way."""
    frozen_at: float | None = None
    """When the keeper process froze (its PostgreSQL runs on); None: not frozen."""
    frozen_document: KeeperInfo | None = None
    """Its last document, in the store until its lease expires."""

    @property
    def accepts_writes(self) -> bool:
        return self.alive and self.running and self.primary


@dataclass
class SimulatedProxy:
    name: str
    alive: bool = True
    acknowledged: int = 0
    routes_to: str | None = None


@dataclass
class World:
    random: random.Random
    spec: ClusterSpec
    keepers: dict[str, SimulatedKeeper]
    proxies: dict[str, SimulatedProxy]
    state: ClusterState | None = None
    commands: dict[str, Stored[Command]] = field(default_factory=dict)
    now: float = 1_700_000_000.0
    counter: int = 0

    def observation(self) -> ClusterObservation:
        keepers = {}
        for keeper in self.keepers.values():
            document = published_document(self, keeper)
            if document is not None:
                keepers[keeper.name] = document
        proxies = {p.name: proxy_document(p) for p in self.proxies.values() if p.alive}
        return ClusterObservation(
            self.spec, self.state, keepers, proxies, dict(self.commands), self.now
        )


def published_document(world: World, keeper: SimulatedKeeper) -> KeeperInfo | None:
    """What the store holds for `keeper`: nothing once its lease expired."""
    if not keeper.alive:
        return None
    if keeper.frozen_at is None:
        return keeper_document(world, keeper)
    if world.now - keeper.frozen_at >= world.spec.timing.keeper_lease_ttl:
        return None
    return keeper.frozen_document


def keeper_document(world: World, keeper: SimulatedKeeper) -> KeeperInfo:
    running = keeper.running
    streaming = tuple(
        other.name
        for other in world.keepers.values()
        if keeper.primary and streams_from(world, other, keeper.name)
    )
    position = keeper.position if keeper.has_data else None
    final = keeper.checkpoint if not running else None
    return KeeperInfo(
        name=keeper.name,
        host=f"db-{keeper.name}",
        port=5432,
        observed_at=world.now,
        running=running,
        healthy=running,
        role=("primary" if keeper.primary else "standby") if running else "unknown",
        timeline=keeper.timeline if keeper.has_data else None,
        system_identifier=SYSTEM_ID if keeper.has_data else None,
        flush_lsn=position if keeper.primary and running else final,
        receive_lsn=position if running and not keeper.primary else None,
        replay_lsn=position if running and not keeper.primary else None,
        synchronous_standby_names=keeper.synchronous_names if running and keeper.primary else (),
        streaming_standbys=streaming,
        acknowledged_state_generation=keeper.acknowledged,
        fenced=not keeper.accepts_writes,
    )


def proxy_document(proxy: SimulatedProxy) -> ProxyInfo:
    return ProxyInfo(
        id=proxy.name,
        listen_addresses=("127.0.0.1:6432",),
        acknowledged_proxy_generation=proxy.acknowledged,
        observed_at=0.0,
    )


def streams_from(world: World, keeper: SimulatedKeeper, upstream: str) -> bool:
    running_standby = keeper.alive and keeper.running and not keeper.primary
    return running_standby and following(world, keeper.name) == upstream


def following(world: World, name: str) -> str | None:
    assignment = world.state.assignment_of(name) if world.state else None
    return assignment.follow if assignment is not None else None


def converge_keeper(world: World, keeper: SimulatedKeeper) -> None:
    """What a keeper does with its assignment (a simplified protocol keeper)."""
    state = world.state
    if state is None:
        return
    assignment = state.assignment_of(keeper.name)
    role = assignment.role if assignment is not None else None
    if role != "master" and keeper.promotion_left is not None:
        shut_down(world, keeper)  # stopping PostgreSQL ends the promotion under way
        keeper.promotion_left = None
    if role == "master":
        if not converge_master(world, keeper, state):
            return  # promoting: the generation is acknowledged once it is a primary
    elif role == "standby" and assignment is not None and assignment.follow is not None:
        converge_standby(world, keeper, world.keepers[assignment.follow])
    elif role in ("fenced", "removed") or keeper.primary:
        shut_down(world, keeper)
    keeper.acknowledged = state.generation


def shut_down(world: World, keeper: SimulatedKeeper) -> None:
    """A clean stop: a shutdown checkpoint record, streamed to connected standbys."""
    if not keeper.running:
        return
    keeper.running = False
    if keeper.primary:
        keeper.checkpoint = keeper.position
        keeper.position += 114
        for other in world.keepers.values():
            if streams_from(world, other, keeper.name) and world.random.random() < 0.8:
                other.position = keeper.position


def converge_master(world: World, keeper: SimulatedKeeper, state: ClusterState) -> bool:
    """Make the keeper's PostgreSQL a primary; False while a promotion is under way."""
    if not keeper.has_data:
        if state.initialized:
            return False
        keeper.has_data, keeper.position = True, MIB
    if keeper.running and not keeper.primary and state.initialized:
        if keeper.promotion_left is None:
            steps = keeper.promotion_steps
            keeper.promotion_left = -1 if steps is None else steps
        if keeper.promotion_left != 0:
            return False
        keeper.promotion_left = None
        keeper.timeline += 1
    keeper.running = keeper.primary = True
    keeper.checkpoint = None
    keeper.synchronous_names = state.synchronous_standbys.requested
    return True


def advance_promotions(world: World) -> None:
    """PostgreSQL completes a promotion on its own, whatever its keeper does meanwhile."""
    for keeper in world.keepers.values():
        if keeper.promotion_left is None or not keeper.running:
            continue
        if keeper.promotion_left > 0:
            keeper.promotion_left -= 1
        if keeper.promotion_left == 0:
            keeper.promotion_left = None
            keeper.primary, keeper.checkpoint = True, None
            keeper.timeline += 1


def converge_standby(world: World, keeper: SimulatedKeeper, upstream: SimulatedKeeper) -> None:
    if keeper.primary:
        shut_down(world, keeper)
        keeper.primary = False
    if not upstream.accepts_writes:
        return
    if not keeper.has_data or keeper.timeline != upstream.timeline:
        keeper.has_data, keeper.timeline, keeper.position = True, upstream.timeline, 0
    keeper.running, keeper.checkpoint = True, None
    lag = world.random.choice([0, 0, 0, MIB, 40 * MIB])
    keeper.position = max(keeper.position, upstream.position - lag)


def simulate_agents(world: World) -> None:
    chance = world.random.random
    advance_promotions(world)
    for keeper in world.keepers.values():
        busy = keeper.promotion_left is not None and keeper.promotion_left > 0
        if keeper.alive and keeper.frozen_at is None and not busy and chance() < 0.7:
            converge_keeper(world, keeper)
    target = world.state.proxy_target if world.state else None
    for simulated in world.proxies.values():
        if simulated.alive and target is not None and chance() < 0.7:
            simulated.acknowledged = target.proxy_generation
            simulated.routes_to = target.master
    routed = world.state.proxy_target.master if world.state else None
    if routed is not None and world.keepers[routed].accepts_writes:
        world.keepers[routed].position += world.random.choice([0, MIB // 2, 3 * MIB])


def inject_faults(world: World) -> None:
    """Host deaths and returns, PostgreSQL crashes, proxy losses, commands, time."""
    chance = world.random.random
    for keeper in world.keepers.values():
        if keeper.frozen_at is not None:
            if chance() < 0.25:
                thaw(world, keeper)
        elif keeper.alive and chance() < 0.04:
            keeper.alive = keeper.running = False  # host death: PostgreSQL goes with it
            keeper.checkpoint, keeper.promotion_left = None, None
        elif not keeper.alive and chance() < 0.3:
            keeper.alive = True
        elif keeper.running and chance() < 0.03:
            keeper.running, keeper.checkpoint = False, None  # PostgreSQL crash
            keeper.promotion_left = None
        elif keeper.alive and chance() < 0.02:
            keeper.frozen_at = world.now  # the keeper freezes; PostgreSQL runs on
            keeper.frozen_document = keeper_document(world, keeper)
    for simulated in world.proxies.values():
        if simulated.alive and chance() < 0.03:
            simulated.alive, simulated.routes_to = False, None  # closes its connections
        elif not simulated.alive and chance() < 0.3 and world.state is not None:
            target = world.state.proxy_target  # a proxy reads the state before it serves
            simulated.alive = True
            simulated.acknowledged = target.proxy_generation
            simulated.routes_to = target.master
    if chance() < 0.06:
        add_command(world)
    world.now += world.random.choice([0.1, 0.5, 1.0, 2.0, 5.0])


def thaw(world: World, keeper: SimulatedKeeper) -> None:
    """The keeper runs again; past fence_deadline its lease is lost: it stops a primary."""
    assert keeper.frozen_at is not None
    if world.now - keeper.frozen_at >= world.spec.timing.fence_deadline and keeper.primary:
        keeper.running, keeper.checkpoint, keeper.promotion_left = False, None, None
    keeper.frozen_at, keeper.frozen_document = None, None


def add_command(world: World) -> None:
    """An operator asks for a switchover or a failover, to a random keeper or none."""
    world.counter += 1
    kind = world.random.choice(["switchover", "switchover", "failover"])
    keeper = world.random.choice([None, *KEEPERS])
    timeout = world.random.choice([None, 3.0, 20.0])
    stored = command(
        f"c{world.counter}",
        kind,
        keeper,
        timeout=timeout,
        revision=world.counter,
        requested_at=world.now,
    )
    world.commands[stored.document.name] = stored


def new_world(seed: int) -> World:
    generator = random.Random(seed)
    cluster_spec = spec(
        sync=generator.random() < 0.4,
        max_standbys=generator.choice([1, 2]),
        dead_keeper_removal_after=generator.choice([0.0, 60.0]),
        timing={"failover_delay": generator.choice([0.0, 2.0])},
    )
    return World(
        random=generator,
        spec=cluster_spec,
        keepers={
            name: SimulatedKeeper(name, promotion_steps=generator.choice([0, 0, 1, 3, 12, None]))
            for name in KEEPERS
        },
        proxies={name: SimulatedProxy(name) for name in PROXIES},
    )
