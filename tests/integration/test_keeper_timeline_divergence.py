"""A standby that holds more of the old timeline than the new master reports the old
timeline (real PostgreSQL): the divergence is then seen and the standby rewound.

Found by the fault campaign (seed 31203, fault #14): the standby's WAL receiver had
fetched the new timeline's history file and its WAL lay past the switch point, so
the keeper took it for a standby on the new timeline; PostgreSQL refused to follow
("new timeline 8 forked off current database system timeline 7 before current
recovery point") and the standby stayed unusable until another failover.
"""

from __future__ import annotations

import pytest

from rhizome.keeper.database import KeptSession
from rhizome.keeper.observe import observe_sql
from tests.harness.cluster import wait_for
from tests.harness.postgres import PostgresFactory, PostgresInstance
from tests.integration.test_keeper_session import keeper_for

pytestmark = pytest.mark.integration
REPLAYED = "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn"


def standby_of(postgres_factory: PostgresFactory, primary: PostgresInstance,
               name: str) -> PostgresInstance:  # fmt: skip
    standby = postgres_factory(name, initdb=False, start=False)
    standby.base_backup_from(primary)
    standby.start()
    return standby


def replayed(standby: PostgresInstance, primary: PostgresInstance) -> None:
    (position,) = primary.execute("SELECT pg_current_wal_flush_lsn()::text")[0]
    wait_for(lambda: standby.execute(REPLAYED, (position,))[0][0], 30, f"{standby.name} replayed")


def test_a_standby_ahead_of_the_new_master_on_the_old_timeline_reports_the_old_one(
    postgres_factory: PostgresFactory,
) -> None:
    primary = postgres_factory("tl-primary")
    behind = standby_of(postgres_factory, primary, "tl-behind")
    ahead = standby_of(postgres_factory, primary, "tl-ahead")
    primary.execute("CREATE TABLE numbers (n integer)")
    replayed(behind, primary)
    behind.stop()
    primary.execute("INSERT INTO numbers SELECT generate_series(1, 1000)")
    replayed(ahead, primary)
    primary.stop()
    behind.start()
    behind.execute("SELECT pg_promote()")  # timeline 2 starts where `behind` stopped
    conninfo = f"host=127.0.0.1 port={behind.port} user=postgres"
    ahead.execute(f"ALTER SYSTEM SET primary_conninfo = '{conninfo}'")
    ahead.execute("SELECT pg_reload_conf()")
    wait_for(
        lambda: (
            ahead.execute("SELECT count(*) FROM pg_ls_waldir() WHERE name = '00000002.history'")
            == [(1,)]
        ),
        30,
        "the new timeline's history fetched by the standby ahead",
    )
    session = KeptSession(keeper_for(ahead))
    try:
        observation = observe_sql(keeper_for(ahead), session)
    finally:
        session.close()
    assert observation is not None and observation.role == "standby"
    assert observation.timeline == 1, "WAL of the old timeline past the switch taken for the new"
