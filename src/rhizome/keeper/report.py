"""The keeper's published document, built from its observation (pure)."""

from __future__ import annotations

from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.plan import LocalStatus
from rhizome.store.documents import KeeperInfo

ERROR_LIMIT = 4000


def keeper_info(
    keeper: KeeperConfig,
    local: LocalStatus,
    *,
    observed_at: float,
    acknowledged_generation: int,
    may_accept_writes: bool,
    last_error: str | None,
    instance_id: str | None = None,
    holding: bool = False,
    api_url: str | None = None,
) -> KeeperInfo:
    """What the keeper publishes about itself and its PostgreSQL."""
    sql = local.sql
    control = local.control
    system_identifier = sql.system_identifier if sql else None
    timeline = sql.timeline if sql else None
    if sql is None and control is not None and local.data == "present":
        system_identifier = control.system_identifier
        timeline = control.latest_timeline
    final_flush_lsn = None
    if sql is None and control is not None and local.data == "present":
        final_flush_lsn = control.known_end  # a cleanly stopped primary: its shutdown checkpoint
    primary = sql is not None and sql.role == "primary"
    unfenced = local.process_running and (primary or (sql is None and may_accept_writes))
    return KeeperInfo(
        name=keeper.name,
        host=keeper.host,
        port=keeper.port,
        observed_at=observed_at,
        running=local.process_running and sql is not None,
        role=sql.role if sql else "unknown",
        healthy=sql is not None and local.data == "present",
        timeline=timeline,
        system_identifier=system_identifier,
        postgres_version=sql.version if sql else None,
        write_lsn=sql.write_lsn if sql else None,
        flush_lsn=sql.flush_lsn if sql else final_flush_lsn,
        receive_lsn=sql.receive_lsn if sql else None,
        replay_lsn=sql.replay_lsn if sql else None,
        synchronous_standby_names=sql.synchronous_standby_names if primary and sql else (),
        streaming_standbys=sql.streaming_standbys if sql else (),
        synchronous_streaming=sql.synchronous_streaming if primary and sql else None,
        pending_restart=sql.pending_restart if sql else (),
        last_error=last_error[:ERROR_LIMIT] if last_error else None,
        acknowledged_state_generation=acknowledged_generation,
        fenced=not unfenced,
        instance_id=instance_id,
        holding=holding,
        api_url=api_url,
        sealed_lsn=local.sealed_lsn if primary else None,
        upgrade_confirmed_lsn=sql.upgrade_confirmed_lsn if primary and sql else None,
    )


def same_report(first: KeeperInfo | None, second: KeeperInfo) -> bool:
    """Equal but for the observation time (field by field: asked on every pass, it
    validates no copy)."""
    if first is None:
        return False
    return all(
        getattr(first, name) == getattr(second, name)
        for name in KeeperInfo.model_fields
        if name != "observed_at"
    )
