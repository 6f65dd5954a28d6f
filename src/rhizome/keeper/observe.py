"""Observations of the local PostgreSQL (SQL) and of an upstream's timeline history."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from rhizome.keeper.conffiles import Upstream
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.database import (
    KEEPER_APPLICATION_NAME,
    DatabaseError,
    KeptSession,
    Unresponsive,
    upstream_session,
)
from rhizome.keeper.passwords import verifier_matches
from rhizome.keeper.timelines import (
    TimelineSwitch,
    history_file_name,
    parse_history,
    parse_lsn,
    timeline_reached,
)
from rhizome.store.fields import KEEPER_NAME_PATTERN
from rhizome.upgrade.sequences import confirmed_lsn

SYNCHRONOUS_METHOD = re.compile(r"^\s*(?:(?:FIRST|ANY)\s+)?\d+\s*\((.*)\)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class SqlObservation:
    """What a running PostgreSQL answers about itself."""

    role: Literal["primary", "standby"]
    system_identifier: str
    timeline: int | None
    version: int
    write_lsn: int | None = None
    flush_lsn: int | None = None
    receive_lsn: int | None = None
    replay_lsn: int | None = None
    synchronous_standby_names: tuple[str, ...] = ()
    streaming_standbys: tuple[str, ...] = ()
    synchronous_streaming: tuple[str, ...] = ()
    """Standbys whose WAL senders count as synchronous (pg_stat_replication.sync_state)."""
    pending_restart: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()
    roles_current: bool = True
    file_errors: tuple[tuple[str, str], ...] = ()
    """(parameter, error) PostgreSQL finds in its configuration files now (pg_file_settings)."""
    client_sessions: int = 0
    """Primary: client backends other than the keeper's own (a sealed master has none)."""
    upgrade_confirmed_lsn: int | None = None
    """Primary: the least confirmed_flush_lsn of the major upgrade's logical slots."""

    @property
    def position(self) -> int | None:
        """The furthest WAL this instance holds."""
        if self.role == "primary":
            return self.flush_lsn
        known = [lsn for lsn in (self.receive_lsn, self.replay_lsn) if lsn is not None]
        return max(known) if known else None


def observe_sql(keeper: KeeperConfig, session: KeptSession) -> SqlObservation | None:
    """Query the local instance through `session`; None when it does not answer."""
    try:
        return session.run(lambda cursor: _observe(cursor, keeper))
    except DatabaseError:
        return None


PROBE_QUERY = (
    "SELECT pg_is_in_recovery(),"
    " (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()"
    "  ELSE pg_current_wal_lsn() END)::text,"
    " (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
    "  ELSE pg_current_wal_flush_lsn() END)::text,"
    " (SELECT max(received_tli) FROM pg_stat_wal_receiver),"
    " ARRAY(SELECT application_name || ' ' || state || ' ' || sync_state"
    "  FROM pg_stat_replication ORDER BY 1),"
    " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
)
"""What a running PostgreSQL changes on its own, in one round trip: its role, WAL
positions, WAL receiver and senders, and client sessions (rhizome.keeper.pace)."""

Probe = tuple[Any, ...]


def probe_sql(session: KeptSession) -> Probe | None:
    """PROBE_QUERY's answer through `session`; None when the instance did not answer in
    time. An answer that is an error (or a refused connection) raises DatabaseError."""
    try:
        return session.run(lambda cursor: _fetch_one(cursor, PROBE_QUERY))
    except Unresponsive:
        return None


def _fetch_one(cursor: Any, query: str) -> Probe:
    cursor.execute(query)
    return tuple(cursor.fetchone())


FILE_ERRORS = (
    "FROM pg_file_settings"
    " WHERE error IS NOT NULL AND error <> 'setting could not be applied' ORDER BY seqno"
)
"""Errors of the configuration files as PostgreSQL reads them now; a changed parameter
that needs a restart ("setting could not be applied") is pending, not an error."""
FILE_ERRORS_QUERY = f"SELECT coalesce(name, ''), error {FILE_ERRORS}"

OBSERVATION_QUERY = (
    "SELECT pg_is_in_recovery(), current_setting('server_version_num')::int,"  # noqa: S608
    " (SELECT system_identifier FROM pg_control_system())::text,"
    " current_setting('synchronous_standby_names'),"
    " ARRAY(SELECT name FROM pg_settings WHERE pending_restart ORDER BY name),"
    f" ARRAY(SELECT ARRAY[coalesce(name, ''), error] {FILE_ERRORS})"
)
"""What every observation asks, in one round trip (each costs the keeper CPU time)."""


def _observe(cursor: Any, keeper: KeeperConfig) -> SqlObservation:
    cursor.execute(OBSERVATION_QUERY)
    in_recovery, version, system_identifier, synchronous_names, pending, errors = cursor.fetchone()
    common = {
        "system_identifier": system_identifier,
        "version": version,
        "pending_restart": tuple(pending),
        "file_errors": tuple((name, error) for name, error in errors),
    }
    if in_recovery:
        return SqlObservation(role="standby", **common, **_standby_positions(cursor))
    return SqlObservation(
        role="primary",
        **common,
        synchronous_standby_names=parse_synchronous_names(synchronous_names),
        **_primary_details(cursor, keeper),
    )


def file_errors(cursor: Any) -> tuple[tuple[str, str], ...]:
    cursor.execute(FILE_ERRORS_QUERY)
    return tuple((name, error) for name, error in cursor.fetchall())


def _standby_positions(cursor: Any) -> dict[str, Any]:
    cursor.execute(
        "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,"
        " (SELECT max(received_tli) FROM pg_stat_wal_receiver),"
        " (SELECT timeline_id FROM pg_control_checkpoint()),"
        " (SELECT min_recovery_end_timeline FROM pg_control_recovery())"
    )
    receive, replay, received_timeline, checkpoint_timeline, recovery_timeline = cursor.fetchone()
    positions = {
        "receive_lsn": parse_lsn(receive) if receive else None,
        "replay_lsn": parse_lsn(replay) if replay else None,
    }
    timelines = [tl for tl in (received_timeline, checkpoint_timeline, recovery_timeline) if tl]
    known = [lsn for lsn in positions.values() if lsn is not None]
    if known and (reached := _newest_timeline_reached(cursor, max(known))):
        timelines.append(reached)
    return {"timeline": max(timelines) if timelines else None, **positions}


def _newest_timeline_reached(cursor: Any, position: int) -> int | None:
    """The newest timeline in pg_wal's history files if WAL up to `position` reached it.

    The control file names the replayed timeline only from the next
    restartpoint on, and pg_stat_wal_receiver only while streaming: between
    the two (an upstream just shut down or died after a timeline switch) the
    history file the WAL receiver fetched, and the segment files of that
    timeline it wrote, are the only witnesses.
    """
    cursor.execute(
        "SELECT h.name, pg_read_file('pg_wal/' || h.name), EXISTS (SELECT 1 FROM pg_ls_waldir() s"
        "  WHERE s.name ~ ('^' || left(h.name, 8) || '[0-9A-F]{16}'))"
        " FROM pg_ls_waldir() h"
        " WHERE h.name ~ '^[0-9A-F]{8}\\.history$' ORDER BY h.name DESC LIMIT 1"
    )
    row = cursor.fetchone()
    if row is None:
        return None
    timeline = int(row[0][:8], 16)
    reached = timeline_reached(timeline, parse_history(row[1]), position, holds_its_wal=row[2])
    return timeline if reached else None


CLIENT_SESSIONS = (
    "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
    " AND pid <> pg_backend_pid() AND application_name IS DISTINCT FROM %s"
)
"""The client sessions a sealed master must not have (seal.py terminates them): every
client backend but the keeper's; its one parameter is KEEPER_APPLICATION_NAME."""

PRIMARY_QUERY = (
    "SELECT pg_current_wal_lsn()::text, pg_current_wal_flush_lsn()::text,"  # noqa: S608
    " pg_walfile_name(pg_current_wal_lsn()),"
    " ARRAY(SELECT ARRAY[application_name, (sync_state IN ('sync', 'quorum'))::text]"
    "  FROM pg_stat_replication WHERE state = 'streaming' ORDER BY application_name),"
    " ARRAY(SELECT slot_name::text FROM pg_replication_slots"
    "  WHERE slot_type = 'physical' ORDER BY 1),"
    f" (SELECT count(*) FROM ({CLIENT_SESSIONS}) sessions)"
)
"""A primary's positions, WAL senders, slots and client sessions in one round trip."""


def _primary_details(cursor: Any, keeper: KeeperConfig) -> dict[str, Any]:
    cursor.execute(PRIMARY_QUERY, (KEEPER_APPLICATION_NAME,))
    write, flush, wal_file, senders, slots, sessions = cursor.fetchone()
    synchronous = tuple(name for name, is_synchronous in senders if is_synchronous == "true")
    return {
        "timeline": int(wal_file[:8], 16),
        "write_lsn": parse_lsn(write),
        "flush_lsn": parse_lsn(flush),
        "streaming_standbys": tuple(name for name, _ in senders),
        "synchronous_streaming": synchronous,
        "slots": tuple(slots),
        "client_sessions": sessions,
        "roles_current": roles_current(cursor, keeper),
        "upgrade_confirmed_lsn": confirmed_lsn(cursor),
    }


def roles_current(cursor: Any, keeper: KeeperConfig) -> bool:
    """Both roles exist with their privileges and the passwords of the password files."""
    cursor.execute(
        "SELECT rolname, rolsuper, rolreplication, rolcanlogin, rolpassword"
        " FROM pg_authid WHERE rolname IN (%s, %s)",
        (keeper.superuser, keeper.replication_user),
    )
    roles = {row[0]: row[1:] for row in cursor.fetchall()}
    superuser = roles.get(keeper.superuser)
    replication = roles.get(keeper.replication_user)
    return (
        superuser is not None
        and bool(superuser[0])
        and verifier_matches(superuser[3], keeper.superuser_password)
        and replication is not None
        and bool(replication[1] and replication[2])
        and verifier_matches(replication[3], keeper.replication_password)
    )


def parse_synchronous_names(setting: str) -> tuple[str, ...]:
    """Keeper names listed in a synchronous_standby_names value ('' → none)."""
    if not setting.strip():
        return ()
    match = SYNCHRONOUS_METHOD.match(setting)
    listed = match.group(1) if match else setting
    names = (name.strip().strip('"') for name in listed.split(","))
    return tuple(name for name in names if KEEPER_NAME_PATTERN.fullmatch(name))


def fetch_history(
    keeper: KeeperConfig, upstream: Upstream, timeline: int
) -> tuple[TimelineSwitch, ...] | None:
    """The upstream's history of `timeline` (() for timeline 1); None when unreachable."""
    if timeline <= 1:
        return ()
    try:
        with upstream_session(keeper, upstream) as cursor:
            cursor.execute("SELECT pg_read_file(%s)", ("pg_wal/" + history_file_name(timeline),))
            (text,) = cursor.fetchone()
    except DatabaseError:
        return None
    return parse_history(text)
