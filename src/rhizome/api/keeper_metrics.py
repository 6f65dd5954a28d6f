"""The keeper's Prometheus metrics, from one snapshot (pure)."""

from __future__ import annotations

import math

from rhizome.api.exposition import Sample, sample
from rhizome.api.keeper_checks import KeeperSnapshot, is_primary

ROLES = ("primary", "standby", "unknown")


def keeper_samples(snapshot: KeeperSnapshot) -> list[Sample]:
    info = snapshot.info
    role = info.role if info is not None and info.running else "unknown"
    samples = [
        sample("rhizome_keeper_postgres_up", "gauge", "1 while PostgreSQL runs and answers.",
               bool(info and info.running)),
        Sample("rhizome_keeper_postgres_role", "gauge",
               "1 for the role PostgreSQL reports (primary, standby, unknown).",
               tuple(({"role": name}, float(name == role)) for name in ROLES)),
        sample("rhizome_keeper_master", "gauge",
               "1 while the store's state names this keeper master.", snapshot.assigned_master),
        sample("rhizome_keeper_primary", "gauge",
               "1 while this keeper passes /primary: master of the state, lease fresh, writable.",
               is_primary(snapshot)),
        sample("rhizome_keeper_accepts_writes", "gauge",
               "1 while this keeper's PostgreSQL may accept writes.", snapshot.may_accept_writes),
        sample("rhizome_keeper_fenced", "gauge",
               "1 while the keeper keeps PostgreSQL from accepting writes (every standby; a"
               " master that lost its lease).",
               bool(info and info.fenced)),
        sample("rhizome_keeper_synchronous_standby", "gauge",
               "1 while this keeper is a synchronous standby every commit waits for.",
               snapshot.synchronous),
        sample("rhizome_keeper_loop_age_seconds", "gauge",
               "Seconds since the keeper's loop last observed PostgreSQL.",
               round(snapshot.loop_age, 3)),
    ]  # fmt: skip
    if math.isfinite(snapshot.lease_age):
        samples.append(sample("rhizome_keeper_lease_age_seconds", "gauge",
                              "Seconds since the keeper's lease was last renewed.",
                              round(snapshot.lease_age, 3)))  # fmt: skip
    return samples + failsafe_samples(snapshot) + observation_samples(snapshot)


def failsafe_samples(snapshot: KeeperSnapshot) -> list[Sample]:
    counts = snapshot.failsafe
    rounds = (({"outcome": "confirmed"}, float(counts.complete_rounds)),
              ({"outcome": "refused"}, float(counts.refused_rounds)))  # fmt: skip
    return [
        sample("rhizome_keeper_failsafe_active", "gauge",
               "1 while PostgreSQL stays writable on failsafe confirmations (etcd unreachable).",
               counts.active),
        Sample("rhizome_keeper_failsafe_rounds_total", "counter",
               "Failsafe rounds this master ran: every member confirmed, or not.", rounds),
        sample("rhizome_keeper_failsafe_confirmations_total", "counter",
               "Failsafe confirmations this keeper gave to a master.",
               counts.confirmations_given),
    ]  # fmt: skip


def observation_samples(snapshot: KeeperSnapshot) -> list[Sample]:
    """Positions and counters of the last observation (absent while unknown)."""
    info = snapshot.info
    if info is None:
        return []
    positions = tuple(
        ({"position": name}, float(value))
        for name, value in (("write", info.write_lsn), ("flush", info.flush_lsn),
                            ("receive", info.receive_lsn), ("replay", info.replay_lsn))
        if value is not None
    )  # fmt: skip
    samples = [
        Sample("rhizome_keeper_wal_position_bytes", "gauge",
               "WAL positions of PostgreSQL as byte offsets (LSN).", positions),
        sample("rhizome_keeper_state_generation", "gauge",
               "Generation of the store's state this keeper has applied.",
               info.acknowledged_state_generation),
        sample("rhizome_keeper_pending_restart", "gauge",
               "Parameters changed that apply only after a restart.", len(info.pending_restart)),
        sample("rhizome_keeper_error", "gauge", "1 while the last reconcile step failed.",
               info.last_error is not None),
    ]  # fmt: skip
    if info.timeline is not None:
        samples.append(sample("rhizome_keeper_timeline", "gauge", "PostgreSQL's timeline.",
                              info.timeline))  # fmt: skip
    if snapshot.lag_bytes is not None:
        samples.append(sample("rhizome_keeper_lag_bytes", "gauge",
                              "Bytes this standby is behind the master's last published position.",
                              snapshot.lag_bytes))  # fmt: skip
    return samples
