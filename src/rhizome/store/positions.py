"""How far standbys are behind, from the WAL positions keepers report."""

from __future__ import annotations

from collections.abc import Mapping

from rhizome.store.documents import ClusterState, KeeperInfo


def reference_position(state: ClusterState, keepers: Mapping[str, KeeperInfo]) -> int | None:
    """The WAL position standbys are measured against: the master's, else the best known."""
    master = keepers.get(state.master) if state.master is not None else None
    if master is not None and master.role == "primary":
        position = master.write_lsn if master.write_lsn is not None else master.flush_lsn
        if position is not None:
            return position
    positions = [keeper.wal_position for keeper in keepers.values()]
    known = [position for position in positions if position is not None]
    return max(known) if known else None


def standby_lag(keeper: KeeperInfo, reference: int | None) -> int | None:
    """Bytes a standby's queries are behind: its own report, else computed from positions."""
    if keeper.lag_bytes is not None:
        return keeper.lag_bytes
    position = keeper.replay_lsn if keeper.replay_lsn is not None else keeper.receive_lsn
    if reference is None or position is None:
        return None
    return max(0, reference - position)


def standby_lags(state: ClusterState, keepers: Mapping[str, KeeperInfo]) -> dict[str, int | None]:
    """Each standby's distance to the master's last published position (None: unknown)."""
    reference = reference_position(state, keepers)
    return {
        name: standby_lag(info, reference)
        for name, info in keepers.items()
        if info.role == "standby"
    }
