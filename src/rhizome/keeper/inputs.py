"""Gathers the planner's inputs: the store's view and the local observation."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rhizome.keeper import datadir
from rhizome.keeper.conffiles import ConfigRequest, Upstream, slot_name
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.config_check import ConfigurationCheck
from rhizome.keeper.controldata import ControlData, has_data, read_control_data
from rhizome.keeper.observe import SqlObservation, fetch_history
from rhizome.keeper.plan import (
    ClusterFacts,
    DataState,
    LocalStatus,
    RewindOutcome,
    UpstreamStatus,
)
from rhizome.keeper.start_backoff import NO_FAILURES, StartFailures
from rhizome.spec import ClusterSpec
from rhizome.store.documents import ClusterState, KeeperAssignment, KeeperInfo
from rhizome.store.follower import StoreFollower
from rhizome.store.view import ClusterView

log = logging.getLogger(__name__)

RELAY_IDLE_WAIT = 30.0
"""The watch relay's longest sleep without a change: it notices a stop at the next change
(the follower's own stop is one) or after this."""


@dataclass(frozen=True)
class Desired:
    """The store's wishes for this keeper, as of one view."""

    spec: ClusterSpec
    state: ClusterState | None
    assignment: KeeperAssignment | None
    upstream_info: KeeperInfo | None
    request: ConfigRequest

    @property
    def role(self) -> str | None:
        return self.assignment.role if self.assignment is not None else None


def desired(keeper: KeeperConfig, view: ClusterView) -> Desired:
    spec = view.spec.document if view.spec is not None else ClusterSpec()
    state = view.state.document if view.state is not None else None
    assignment = state.assignment_of(keeper.name) if state is not None else None
    upstream_info = None
    if assignment is not None and assignment.follow is not None:
        stored = view.keepers.get(assignment.follow)
        upstream_info = stored.document if stored is not None else None
    return Desired(
        spec, state, assignment, upstream_info, config_request(assignment, state, upstream_info)
    )


class RewindMemory:
    """What pg_rewind said against which upstream (name and timeline)."""

    def __init__(self) -> None:
        self.result: tuple[str, RewindOutcome] | None = None

    def outcome(self, wish: Desired) -> RewindOutcome | None:
        key = upstream_key(wish.upstream_info)
        return self.result[1] if self.result is not None and self.result[0] == key else None

    def record(self, wish: Desired, outcome: RewindOutcome) -> None:
        self.result = (upstream_key(wish.upstream_info), outcome)

    def forget(self) -> None:
        self.result = None


def relay_changes(
    name: str,
    follower: StoreFollower,
    stopping: threading.Event,
    wake: Callable[[], None],
    own_document_lease: Callable[[int | None], None],
) -> None:
    """Call `wake` when the spec, the state or the keeper `name` follows changed (a thread).

    Every change also passes the lease our own document is stored on (None:
    it is gone) to `own_document_lease`.
    """
    revision = 0
    seen: object = None
    while not stopping.is_set():
        latest = follower.wait_for_change(revision, RELAY_IDLE_WAIT)
        if latest == revision:
            continue
        revision = latest
        view = follower.view()
        own = view.keepers.get(name)
        own_document_lease(own.lease if own is not None else None)
        relevant = relevant_to(name, view)
        if relevant != seen:
            seen = relevant
            wake()


def relevant_to(name: str, view: ClusterView) -> object:
    """What in the view can change this keeper's plan (not its own document, nor heartbeats)."""
    spec = view.spec.mod_revision if view.spec is not None else None
    state = view.state.document if view.state is not None else None
    assignment = state.assignment_of(name) if state is not None else None
    upstream = None
    if assignment is not None and assignment.follow is not None:
        stored = view.keepers.get(assignment.follow)
        if stored is not None:
            document = stored.document
            upstream = (document.host, document.port, document.running, document.timeline,
                        document.system_identifier)  # fmt: skip
    return (spec, view.state.mod_revision if view.state is not None else None, upstream)


def config_request(
    assignment: KeeperAssignment | None, state: ClusterState | None, upstream: KeeperInfo | None
) -> ConfigRequest:
    if assignment is None or assignment.role != "standby":
        names = state.synchronous_standbys.requested if state is not None else ()
        sealed = assignment is not None and assignment.sealed
        return ConfigRequest(synchronous_standbys=tuple(names), sealed=sealed)
    return ConfigRequest(upstream=upstream_address(upstream), standby=True)


def upstream_key(info: KeeperInfo | None) -> str:
    """Names the upstream's history: a rewind's outcome holds until its timeline changes."""
    return f"{info.name}:{info.timeline}" if info is not None else ""


def upstream_address(info: KeeperInfo | None) -> Upstream | None:
    return Upstream(info.name, info.host, info.port) if info is not None else None


def data_state(keeper: KeeperConfig) -> DataState:
    if datadir.is_marked(keeper, datadir.INCOMPLETE_MARKER):
        return "incomplete"
    return "present" if has_data(keeper.data_dir) else "missing"


def observe_local(
    keeper: KeeperConfig,
    wish: Desired,
    sql: SqlObservation | None,
    unresponsive_for: float,
    configuration: ConfigurationCheck,
    *,
    process_running: bool,
    recovering_since: float | None,
    rewind_outcome: RewindOutcome | None,
    lease_fresh: bool,
    may_accept_writes: bool = False,
    fencing_problem: str | None = None,
    start_failures: StartFailures = NO_FAILURES,
    promotion_hold: str | None = None,
    sealed_lsn: int | None = None,
) -> LocalStatus:
    """Everything the keeper can see of its own PostgreSQL now, with what it answered
    (`sql`, None when it did not run or answer, then for `unresponsive_for` seconds)."""
    data = data_state(keeper)
    control = None
    if data == "present" and not process_running:
        control = control_data(keeper)
    fresh_copy = (keeper.data_dir / "backup_label").exists()
    differs = False
    if data == "present" and wish.role in ("master", "standby"):
        differs = configuration.differs(wish.spec, wish.request)
    return LocalStatus(
        data=data,
        control=control,
        process_running=process_running,
        sql=sql,
        config_differs=differs,
        removed=datadir.is_marked(keeper, datadir.REMOVED_MARKER),
        recovering_since=recovering_since,
        rewind_outcome=rewind_outcome,
        lease_fresh=lease_fresh,
        unresponsive_for=unresponsive_for if sql is None else 0.0,
        may_accept_writes=may_accept_writes,
        fresh_copy=fresh_copy,
        restored_end=datadir.restored_end(keeper) if fresh_copy else None,
        fencing_problem=fencing_problem,
        start_failures=start_failures,
        promotion_hold=promotion_hold,
        sealed_lsn=sealed_lsn,
    )


def control_data(keeper: KeeperConfig) -> ControlData | None:
    try:
        return read_control_data(keeper.program("pg_controldata"), keeper.data_dir)
    except (RuntimeError, OSError) as error:
        log.warning("cannot read the control file: %s", error)
        return None


def cluster_facts(
    keeper: KeeperConfig, wish: Desired, local: LocalStatus, now: float
) -> ClusterFacts:
    """The store's side of the planner's input."""
    spec, state = wish.spec, wish.state
    assignments = state.assignments if state is not None else {}
    standbys = sorted(name for name, item in assignments.items() if item.role == "standby")
    wanted = {slot_name(name) for name in standbys if name != keeper.name}
    others = {slot_name(name) for name, item in assignments.items() if item.role != "standby"}
    unwanted = (others | datadir.managed_slots(keeper)) - wanted
    return ClusterFacts(
        assignment=wish.assignment,
        initialized=state.initialized if state is not None else False,
        init_mode=spec.init_mode,
        use_pg_rewind=spec.use_pg_rewind,
        upstream=upstream_status(keeper, wish.upstream_info, local),
        wanted_slots=tuple(sorted(wanted)),
        unwanted_slots=tuple(sorted(unwanted)),
        restart_delay=spec.timing.master_recovery_grace + spec.timing.keeper_lease_ttl,
        now=now,
    )


def upstream_status(
    keeper: KeeperConfig, info: KeeperInfo | None, local: LocalStatus
) -> UpstreamStatus | None:
    """The followed keeper's status, with its timeline history when ours differs."""
    address = upstream_address(info)
    if info is None or address is None:
        return None
    history = None
    own_timeline = local_timeline(local)
    if info.running and info.timeline is not None and own_timeline not in (None, info.timeline):
        history = fetch_history(keeper, address, info.timeline)
    return UpstreamStatus(
        address=address,
        running=info.running,
        system_identifier=info.system_identifier,
        timeline=info.timeline,
        history=history,
    )


def local_timeline(local: LocalStatus) -> int | None:
    if local.sql is not None:
        return local.sql.timeline
    return local.control.latest_timeline if local.control is not None else None
