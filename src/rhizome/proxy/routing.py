"""Where connections go: a pure function of the cluster view.

`compute_routes` turns what the store says (state, keeper observations, spec)
into `Routes`: the read-write backend (the published proxy target, or none),
the standbys that qualify for new read-only connections, and the backends
whose existing connections may stay. `choose_backend` balances read-only
connections. Nothing here does I/O, so every rule is unit tested.

A cluster whose state names a `successor` (the end of a major-upgrade
cutover) routes nowhere at all: its proxies move to the successor's routes
(succession.py) and never forward to the old cluster's servers again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from rhizome.spec import ClusterSpec, TimingSettings
from rhizome.store.documents import ClusterState, KeeperInfo
from rhizome.store.positions import reference_position, standby_lag
from rhizome.store.state import DRAINING_PHASE
from rhizome.store.view import ClusterView


@dataclass(frozen=True)
class Backend:
    """A PostgreSQL server connections are forwarded to."""

    keeper: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.keeper} ({self.host}:{self.port})"


@dataclass(frozen=True)
class RoutingSettings:
    """The proxy's own routing options (from its configuration)."""

    max_standby_lag_bytes: int = 16 * 1024 * 1024
    fallback_to_master: bool = False


@dataclass(frozen=True)
class Routes:
    """Where new connections go, and which existing ones may stay."""

    revision: int = 0
    """Store revision these routes were computed from (newer views win)."""
    cluster: str = ""
    """The cluster whose view these routes come from (generations are that cluster's)."""
    successor: str | None = None
    """The cluster that replaced this one (state.successor): follow its routes instead."""
    proxy_generation: int = 0
    """The proxy target generation these routes apply."""
    master: Backend | None = None
    """Read-write target; None routes nowhere (hold new connections)."""
    read_only_targets: tuple[Backend, ...] = ()
    """Backends for new read-only connections (standbys, or the master as fallback)."""
    read_only_allowed: frozenset[Backend] = frozenset()
    """Backends whose existing read-only connections may stay open."""
    standby_exclusions: tuple[tuple[str, str], ...] = ()
    """(keeper, reason) of keepers left out of the read-only targets."""
    hold_new_read_write: bool = False
    """A planned switchover is about to move the master: new read-write clients
    are held while the sessions to the master go on (operation phase `draining`)."""
    timing: TimingSettings = field(default_factory=TimingSettings)
    failsafe: bool = False
    """The spec's failsafe setting (rhizome.failsafe)."""

    def nowhere(self) -> Routes:
        """The same routes with every target removed (a proxy cut off from the store)."""
        return replace(
            self,
            master=None,
            read_only_targets=(),
            read_only_allowed=frozenset(),
            hold_new_read_write=False,
        )

    def same_targets(self, other: Routes) -> bool:
        """True when only the revision label differs."""
        return replace(self, revision=other.revision) == other

    def permits(self, read_only: bool, backend: Backend) -> bool:
        """May an existing connection of that port to `backend` stay open?"""
        if read_only:
            return backend in self.read_only_allowed
        return backend == self.master


def compute_routes(view: ClusterView, settings: RoutingSettings, cluster: str = "") -> Routes:
    """The routes the store's `view` (of `cluster`) asks for."""
    spec = view.spec.document if view.spec is not None else ClusterSpec()
    state = view.state.document if view.state is not None else None
    master = read_write_backend(state)
    keepers = {name: stored.document for name, stored in view.keepers.items()}
    targets, exclusions = qualifying_standbys(state, keepers, spec, settings)
    allowed = set(standbys_kept(state, keepers, spec))
    if settings.fallback_to_master and master is not None:
        allowed.add(master)
        if not targets:
            targets = (master,)
    routes = Routes(
        revision=view.revision,
        cluster=cluster,
        successor=state.successor if state is not None else None,
        proxy_generation=state.proxy_target.proxy_generation if state is not None else 0,
        master=master,
        read_only_targets=targets,
        read_only_allowed=frozenset(allowed),
        standby_exclusions=exclusions,
        hold_new_read_write=holds_new_read_write(state),
        timing=spec.timing,
        failsafe=spec.failsafe,
    )
    return routes if routes.successor is None else routes.nowhere()


def holds_new_read_write(state: ClusterState | None) -> bool:
    """Whether a planned switchover asks proxies to hold new read-write clients."""
    operation = state.operation if state is not None else None
    return operation is not None and operation.phase == DRAINING_PHASE


def read_write_backend(state: ClusterState | None) -> Backend | None:
    """The published proxy target; None before any state or while it routes nowhere."""
    if state is None:
        return None
    target = state.proxy_target
    if target.master is None or target.host is None or target.port is None:
        return None
    return Backend(target.master, target.host, target.port)


def backend_of(keeper: KeeperInfo) -> Backend:
    return Backend(keeper.name, keeper.host, keeper.port)


def standby_exclusion(
    name: str,
    state: ClusterState,
    keeper: KeeperInfo,
    spec: ClusterSpec,
    max_lag_bytes: int,
    lag: int | None,
) -> str | None:
    """Why `name` may not take new read-only connections; None when it qualifies."""
    assignment = state.assignment_of(name)
    checks = (
        (name in (state.master, state.proxy_target.master), "is the master"),
        (assignment is None or assignment.role != "standby", "is not assigned standby"),
        (spec.keeper_settings(name).maintenance, "is in maintenance"),
        (not keeper.running, "is not running"),
        (keeper.role != "standby", f"reports role {keeper.role}"),
        (not keeper.healthy, "is unhealthy"),
        (lag is None, "has no known WAL position"),
        (lag is not None and lag > max_lag_bytes, f"lags {lag} bytes (bound {max_lag_bytes})"),
    )
    for failed, reason in checks:
        if failed:
            return reason
    return None


def qualifying_standbys(
    state: ClusterState | None,
    keepers: Mapping[str, KeeperInfo],
    spec: ClusterSpec,
    settings: RoutingSettings,
) -> tuple[tuple[Backend, ...], tuple[tuple[str, str], ...]]:
    """Standbys for new read-only connections, and why the others are left out."""
    if state is None:
        return (), tuple((name, "no state published yet") for name in sorted(keepers))
    targets: list[Backend] = []
    exclusions: list[tuple[str, str]] = []
    reference = reference_position(state, keepers)
    bound = settings.max_standby_lag_bytes
    for name in sorted(keepers):
        keeper = keepers[name]
        lag = standby_lag(keeper, reference)
        reason = standby_exclusion(name, state, keeper, spec, bound, lag)
        if reason is None:
            targets.append(backend_of(keeper))
        else:
            exclusions.append((name, reason))
    return tuple(targets), tuple(exclusions)


def standbys_kept(
    state: ClusterState | None, keepers: Mapping[str, KeeperInfo], spec: ClusterSpec
) -> list[Backend]:
    """Standbys whose existing read-only connections stay open.

    Lag and health come and go, so they only steer new connections; a keeper
    that is gone, no longer a standby, the master or in maintenance loses its
    read-only connections.
    """
    if state is None:
        return []
    kept = []
    for name, keeper in keepers.items():
        assignment = state.assignment_of(name)
        if (
            assignment is not None
            and assignment.role == "standby"
            and name not in (state.master, state.proxy_target.master)
            and keeper.role != "primary"
            and not spec.keeper_settings(name).maintenance
        ):
            kept.append(backend_of(keeper))
    return kept


def choose_backend(
    candidates: tuple[Backend, ...], active: Mapping[Backend, int], turn: int
) -> Backend | None:
    """The candidate with the fewest active connections; `turn` rotates among equals."""
    if not candidates:
        return None
    fewest = min(active.get(backend, 0) for backend in candidates)
    least_loaded = [backend for backend in candidates if active.get(backend, 0) == fewest]
    return least_loaded[turn % len(least_loaded)]
