"""Sealing a master for a major-upgrade cutover (docs/design/major-upgrade.md).

A sealed master keeps running so that its logical replication slots can
stream everything to the successor cluster, but no client session can commit
on it: its configuration (conffiles.py, in force before `Seal` is planned)
lets in only the keeper, replication and the superuser's pg_hba.conf entries
and makes transactions read-only by default (`default_transaction_read_only`;
the keeper's own sessions turn it off), and `seal` terminates every client
backend but the keeper's. Then it records each
sequence's last value into the replicated `rhizome_upgrade.sequence_values`
table (the successor's trigger moves its sequences past them) and takes the
position after that: once the successor confirmed it, it has every commit.

The read-only default closes what termination cannot see: a login still
being authenticated when the sessions were terminated is not in
pg_stat_activity yet, and would otherwise commit after the sealed position
(a transaction the successor might not have when it takes over). A session
that gets in anyway is seen by the next observation and terminated, the
master sealed again at a later position; only a superuser that turns
read-only off itself could still write.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.database import KEEPER_APPLICATION_NAME, local_session
from rhizome.keeper.observe import CLIENT_SESSIONS
from rhizome.keeper.timelines import parse_lsn
from rhizome.store.documents import KeeperAssignment
from rhizome.upgrade.sequences import confirmed_lsn, record_sequences, upgrade_databases

log = logging.getLogger(__name__)

TERMINATE_WAIT_MS = 2000
"""How long pg_terminate_backend waits for each session to end."""
TERMINATE_ROUNDS = 10
ROUND_PAUSE = 0.1
CONFIRMATION_WAIT = 2.0
CONFIRMATION_POLL = 0.01


class SealRecord:
    """The position of the last seal, kept while the assignment says sealed."""

    def __init__(self) -> None:
        self.lsn: int | None = None

    def current(self, assignment: KeeperAssignment | None) -> int | None:
        """The sealed position; forgotten as soon as the seal is lifted (a rollback)."""
        if assignment is None or not assignment.sealed:
            self.lsn = None
        return self.lsn


def seal(keeper: KeeperConfig, record: SealRecord) -> None:
    """Terminate the client sessions, record the sequences, and remember the position."""
    terminated = terminate_client_sessions(keeper)
    with local_session(keeper) as cursor:
        databases = upgrade_databases(cursor.connection)
    recorded = 0
    for database in databases:
        with local_session(keeper, database=database) as cursor:
            recorded += record_sequences(cursor.connection)
    with local_session(keeper) as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (position,) = cursor.fetchone()
    record.lsn = parse_lsn(position)
    log.info(
        "sealed for the cutover at %s: %d client sessions terminated, %d sequences recorded",
        position, terminated, recorded,
    )  # fmt: skip
    wait_for_confirmation(keeper, record.lsn)


def wait_for_confirmation(keeper: KeeperConfig, position: int) -> None:
    """Watch the successor confirm `position` for a moment, so that the observation
    right after this action reports it (instead of the next one, a publish interval on)."""
    deadline = time.monotonic() + CONFIRMATION_WAIT
    with local_session(keeper) as cursor:
        while time.monotonic() < deadline:
            confirmed = confirmed_lsn(cursor)
            if confirmed is not None and confirmed >= position:
                return
            time.sleep(CONFIRMATION_POLL)


def terminate_client_sessions(keeper: KeeperConfig) -> int:
    """End every client backend but the keeper's; raises when they keep coming."""
    total = 0
    with local_session(keeper) as cursor:
        for _ in range(TERMINATE_ROUNDS):
            ended = terminate_round(cursor)
            if ended == 0:
                return total
            total += ended
            time.sleep(ROUND_PAUSE)
    raise RuntimeError(
        f"client sessions kept arriving after {TERMINATE_ROUNDS} rounds of termination:"
        " check that pg_hba.conf was reloaded and who logs in as the superuser"
    )


def terminate_round(cursor: Any) -> int:
    """Terminate the client sessions found now; returns how many there were."""
    query = f"SELECT count(pg_terminate_backend(pid, %s)) FROM ({CLIENT_SESSIONS}) sessions"  # noqa: S608 - constants only
    cursor.execute(query, (TERMINATE_WAIT_MS, KEEPER_APPLICATION_NAME))
    (ended,) = cursor.fetchone()
    return int(ended)
