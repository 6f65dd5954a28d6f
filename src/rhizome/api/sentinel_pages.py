"""The sentinel's health checks and metrics, and the cluster seen through its store view (pure).

Every sentinel reports the cluster's metrics from its own view of the store,
so that a scrape of any one of them suffices; `rhizome_sentinel_leader`
tells which one decides (alert rules take the leader's, or the max).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from rhizome.api.exposition import Sample, sample
from rhizome.api.requests import Handler, Page, Request, json_page
from rhizome.store.backups import BackupRecord
from rhizome.store.positions import standby_lags
from rhizome.store.state import ClusterState
from rhizome.store.view import ClusterView

LIVENESS_BUDGET = 5.0
"""Seconds without a pass of the sentinel's loop (one a second at least) before it is not alive."""
ROLE_CHANGE_KINDS = ("failover", "switchover")


@dataclass(frozen=True)
class SentinelSnapshot:
    sentinel_id: str
    view: ClusterView | None
    """None until the first full read of the store."""
    leader: bool
    lease_age: float
    """Seconds since the sentinel's lease was last renewed (inf: none)."""
    lease_ttl: float
    loop_age: float


def checks(snapshot: SentinelSnapshot) -> dict[str, bool]:
    return {
        "health": snapshot.view is not None and snapshot.lease_age < snapshot.lease_ttl,
        "liveness": snapshot.loop_age <= LIVENESS_BUDGET,
        "readiness": snapshot.view is not None,
        "leader": snapshot.leader,
    }


def check_page(snapshot_of: Callable[[], SentinelSnapshot], check: str, request: Request) -> Page:
    snapshot = snapshot_of()
    passed = checks(snapshot)[check]
    body = {
        "check": check,
        "passed": passed,
        "sentinel": snapshot.sentinel_id,
        "leader": snapshot.leader,
        "store_synchronized": snapshot.view is not None,
        "lease_age_seconds": round(snapshot.lease_age, 3) if snapshot.lease_age < 1e9 else None,
    }
    return json_page(200 if passed else 503, body)


def sentinel_routes(snapshot_of: Callable[[], SentinelSnapshot]) -> dict[str, Handler]:
    """/health (store read, lease held), /liveness, /readiness, /leader."""
    return {
        f"/{check}": functools.partial(check_page, snapshot_of, check)
        for check in ("health", "liveness", "readiness", "leader")
    }


def sentinel_samples(snapshot: SentinelSnapshot) -> list[Sample]:
    samples = [
        sample("rhizome_sentinel_leader", "gauge", "1 while this sentinel leads.", snapshot.leader),
        sample("rhizome_sentinel_store_synchronized", "gauge",
               "1 once this sentinel has read the whole store.", snapshot.view is not None),
        sample("rhizome_sentinel_loop_age_seconds", "gauge",
               "Seconds since the sentinel's loop last ran.", round(snapshot.loop_age, 3)),
    ]  # fmt: skip
    if snapshot.lease_age < 1e9:
        samples.append(sample("rhizome_sentinel_lease_age_seconds", "gauge",
                              "Seconds since the sentinel's lease was last renewed.",
                              round(snapshot.lease_age, 3)))  # fmt: skip
    if snapshot.view is not None:
        samples += cluster_samples(snapshot.view)
    return samples


def cluster_samples(view: ClusterView) -> list[Sample]:
    """The cluster as this sentinel's view of the store shows it."""
    state = view.state.document if view.state is not None else None
    spec = view.spec.document if view.spec is not None else None
    keepers = [stored.document for stored in view.keepers.values()]
    master = state.master if state is not None else None
    master_info = next((info for info in keepers if info.name == master), None)
    bound = spec.max_standby_lag_bytes if spec is not None else None
    lags = standby_lags(state, {info.name: info for info in keepers}) if state else {}
    lagging = [name for name, lag in lags.items()
               if lag is not None and bound is not None and lag > bound]  # fmt: skip
    samples = [
        sample("rhizome_cluster_master_writable", "gauge",
               "1 while the state's master reports a primary that accepts writes.",
               master_info is not None and master_info.accepts_writes),
        sample("rhizome_cluster_keepers", "gauge", "Keepers with a live lease.", len(keepers)),
        sample("rhizome_cluster_healthy_keepers", "gauge", "Keepers reporting healthy.",
               sum(info.healthy for info in keepers)),
        sample("rhizome_cluster_standbys_over_lag_bound", "gauge",
               "Standbys further behind than the spec's max_standby_lag_bytes.", len(lagging)),
        sample("rhizome_cluster_master_fenced", "gauge",
               "1 while the state's master reports its PostgreSQL fenced (it lost its lease).",
               master_info is not None and master_info.fenced),
        sample("rhizome_cluster_paused", "gauge", "1 while the spec pauses the sentinels.",
               spec is not None and spec.paused),
    ]  # fmt: skip
    if state is not None:
        samples += state_samples(state)
    if view.last_backup is not None:
        samples += backup_samples(view.last_backup.document)
    return samples


def backup_samples(record: BackupRecord) -> list[Sample]:
    """The last backup attempt (`rhizomectl backup run`): its result, end and duration."""
    samples = [
        sample("rhizome_backup_last_ok", "gauge",
               "1 when the last backup attempt succeeded, 0 when it failed.", record.ok),
        sample("rhizome_backup_last_finished_timestamp_seconds", "gauge",
               "Unix time the last backup attempt ended (ok or not).", record.finished_at),
        sample("rhizome_backup_last_duration_seconds", "gauge",
               "Duration of the last backup attempt.", round(record.duration, 3)),
    ]  # fmt: skip
    if record.size_bytes is not None:
        size = "Database size the last backup covers."
        samples.append(sample("rhizome_backup_last_size_bytes", "gauge", size, record.size_bytes))
    return samples


def state_samples(state: ClusterState) -> list[Sample]:
    counts = {kind: 0 for kind in ROLE_CHANGE_KINDS}
    last = {kind: 0.0 for kind in ROLE_CHANGE_KINDS}
    for change in state.history:
        if change.kind in counts:
            counts[change.kind] += 1
            last[change.kind] = max(last[change.kind], change.at)
    operation = state.operation.kind if state.operation is not None else None
    paused = [result for result in state.command_results if result.write_pause is not None]
    samples = [
        sample("rhizome_cluster_state_generation", "gauge", "Generation of the store's state.",
               state.generation),
        Sample("rhizome_cluster_role_changes", "gauge",
               "Failovers and switchovers recorded in the state's history.",
               tuple(({"kind": kind}, float(count)) for kind, count in counts.items())),
        Sample("rhizome_cluster_last_role_change_timestamp_seconds", "gauge",
               "Unix time of the last failover or switchover in the history (0: none).",
               tuple(({"kind": kind}, moment) for kind, moment in last.items())),
        sample("rhizome_cluster_operation_in_progress", "gauge",
               "1 while a failover, switchover or initialisation is under way.",
               operation is not None),
    ]  # fmt: skip
    if paused:
        latest = max(paused, key=lambda result: result.finished_at)
        samples.append(sample("rhizome_cluster_last_write_pause_seconds", "gauge",
                              "Write pause of the last switchover or failover command.",
                              latest.write_pause or 0.0))  # fmt: skip
    return samples
