"""The keeper's kept observation session on a real PostgreSQL: restarts and a frozen server."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from types import SimpleNamespace
from typing import Any

import pytest

from rhizome.keeper.database import OBSERVATION_TIMEOUT, KeptSession, Unresponsive
from rhizome.keeper.observe import observe_sql
from tests.harness.postgres import PostgresFactory, PostgresInstance
from tests.harness.processes import descendant_pids

pytestmark = pytest.mark.integration


def keeper_for(instance: PostgresInstance) -> Any:
    """The KeeperConfig fields a session and an observation use (trust authentication)."""
    return SimpleNamespace(
        socket_dir=instance.socket_dir, port=instance.port, superuser="postgres",
        superuser_password="", replication_user="replicator", replication_password="",
    )  # fmt: skip


def backend_pid(session: KeptSession) -> int:
    def query(cursor: Any) -> int:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])

    return session.run(query)


def test_the_session_is_kept_and_survives_a_postgresql_restart(postgres_factory: PostgresFactory):
    instance = postgres_factory()
    keeper = keeper_for(instance)
    session = KeptSession(keeper)
    try:
        first = backend_pid(session)
        assert backend_pid(session) == first, "a new connection for every observation"

        instance.restart()  # kills the kept connection's backend
        observation = observe_sql(keeper, session)
        assert observation is not None, "the first observation after a restart failed"
        assert observation.role == "primary"
        assert backend_pid(session) != first
    finally:
        session.close()


def test_a_frozen_postgresql_is_not_answering_after_the_time_limit(
    postgres_factory: PostgresFactory,
):
    instance = postgres_factory()
    session = KeptSession(keeper_for(instance))
    backend_pid(session)
    os.kill(instance.pid, signal.SIGSTOP)  # no new child from here on
    frozen = {instance.pid} | descendant_pids(instance.pid)
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):  # a worker that just ended
            os.kill(pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        with pytest.raises(Unresponsive):
            backend_pid(session)
        waited = time.monotonic() - began
        assert OBSERVATION_TIMEOUT - 0.1 <= waited < OBSERVATION_TIMEOUT + 1.0
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert backend_pid(session) > 0, "no fresh connection once PostgreSQL answers again"
    session.close()
