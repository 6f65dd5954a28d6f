"""Keepers converge real PostgreSQL instances to the assignments of `state`.

No sentinel runs here: the test writes `spec` and `state` itself, as the
leader sentinel would, and checks what the keepers make of them. One scenario
walks a two-node cluster through its life (init, clone, parameters, promote,
fence, rewind, rebuild of a lost data directory), since every step needs the
one before it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from rhizome.etcd import EtcdClient, EtcdSettings
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from tests.harness.etcd import EtcdServer
from tests.harness.keeper import (
    KeeperProcess,
    StateWriter,
    remove_data_dir,
    wait_reported,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def store(etcd: EtcdServer) -> Iterator[ClusterStore]:
    client = EtcdClient(EtcdSettings(endpoints=(etcd.client_url,)))
    yield ClusterStore(client, "main")
    client.close()


@dataclass
class Cluster:
    """The scenario's two keepers, the state writer and the measured timings."""

    store: ClusterStore
    sentinel: StateWriter
    first: KeeperProcess
    second: KeeperProcess
    timings: dict[str, float] = field(default_factory=dict)
    system_identifier: str | None = None


def test_a_two_node_cluster_through_its_life(store, keeper_factory, capsys):
    assert store.write_spec(ClusterSpec(), 0)
    cluster = Cluster(store, StateWriter(store), keeper_factory("k1"), keeper_factory("k2"))
    for step in (
        initialises_a_new_instance,
        clones_a_standby,
        lists_synchronous_standbys,
        applies_parameters,
        promotes_while_the_old_master_diverges,
        rewinds_the_old_master,
        rebuilds_a_lost_data_directory,
    ):
        step(cluster)
    timings = ", ".join(f"{name} {value:.2f} s" for name, value in cluster.timings.items())
    with capsys.disabled():
        print(f"\nkeeper timings: {timings}")


def initialises_a_new_instance(cluster: Cluster) -> None:
    """A keeper assigned master initialises a new instance."""
    started = time.monotonic()
    generation = cluster.sentinel.assign("k1", initialized=False, k1="master")
    cluster.first.start()
    cluster.second.start()
    primary = wait_reported(
        cluster.store, "k1", "healthy primary", running=True, role="primary", healthy=True,
        acknowledged_state_generation=generation, fenced=False,
    )  # fmt: skip
    cluster.timings["initdb + start"] = time.monotonic() - started
    assert primary.timeline == 1 and primary.system_identifier
    cluster.system_identifier = primary.system_identifier
    assert cluster.first.execute("SHOW data_checksums") == [("on",)]
    roles = dict(
        cluster.first.execute(
            "SELECT rolname, rolpassword LIKE 'SCRAM-SHA-256$%%' FROM pg_authid"
            " WHERE rolname IN ('postgres', 'replicator') AND rolcanlogin"
        )
    )
    assert roles == {"postgres": True, "replicator": True}
    assert (
        "role postgres altered" not in cluster.first.log_path.read_text()
    )  # initdb's verifier matched
    assert cluster.first.execute(
        "SELECT rolreplication FROM pg_roles WHERE rolname = 'replicator'"
    ) == [(True,)]
    waiting = wait_reported(cluster.store, "k2", "unassigned and waiting", running=False)
    assert waiting.system_identifier is None


def clones_a_standby(cluster: Cluster) -> None:
    """A standby base-backs-up and streams."""
    started = time.monotonic()
    generation = cluster.sentinel.assign("k1", k1="master", k2="standby:k1")
    wait_reported(
        cluster.store, "k2", "streaming standby", running=True, role="standby",
        acknowledged_state_generation=generation,
        system_identifier=cluster.system_identifier,
    )  # fmt: skip
    cluster.timings["base backup + start"] = time.monotonic() - started
    wait_until(
        lambda: cluster.first.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'k2' AND active"
        ),
        60,
        "the standby streaming through its slot",
    )
    cluster.first.execute("CREATE TABLE events (id int PRIMARY KEY, note text)")
    cluster.first.execute("INSERT INTO events VALUES (1, 'written on k1')")
    wait_until(
        lambda: (
            cluster.second.execute("SELECT note FROM events WHERE id = 1") == [("written on k1",)]
        ),
        60,
        "the row on the standby",
    )
    wait_reported(cluster.store, "k1", "its standby streaming", streaming_standbys=("k2",))


def lists_synchronous_standbys(cluster: Cluster) -> None:
    """Synchronous replication: the master lists the requested standby."""
    generation = cluster.sentinel.assign("k1", synchronous=("k2",), k1="master", k2="standby:k1")
    wait_reported(
        cluster.store, "k1", "synchronous standby in effect", synchronous_standby_names=("k2",),
        acknowledged_state_generation=generation, synchronous_streaming=("k2",),
    )  # fmt: skip
    assert cluster.first.execute("SHOW synchronous_standby_names") == [('FIRST 1 ("k2")',)]
    cluster.first.execute(
        "INSERT INTO events VALUES (5, 'acknowledged by k2')"
    )  # would hang otherwise
    generation = cluster.sentinel.assign("k1", k1="master", k2="standby:k1")
    wait_reported(
        cluster.store, "k1", "no synchronous standby", synchronous_standby_names=(),
        synchronous_streaming=(),
    )  # fmt: skip


def applies_parameters(cluster: Cluster) -> None:
    """Parameters: a reloadable one applies, a restart-only one is pending."""
    spec_revision = cluster.store.read_spec().mod_revision
    spec = ClusterSpec(pg_parameters={"work_mem": "8MB", "max_connections": 120})
    assert cluster.store.write_spec(spec, spec_revision)
    wait_until(
        lambda: cluster.first.execute("SHOW work_mem") == [("8MB",)], 60, "work_mem reloaded"
    )
    wait_until(lambda: cluster.second.execute("SHOW work_mem") == [("8MB",)], 60, "on the standby")
    wait_reported(cluster.store, "k1", "pending restart", pending_restart=("max_connections",))
    assert cluster.first.execute("SHOW max_connections") == [("100",)]


def promotes_while_the_old_master_diverges(cluster: Cluster) -> None:
    """Promotion: the old master is fenced while diverging, the standby promoted."""
    os.kill(cluster.first.pid, signal.SIGSTOP)  # the keeper only: k1's PostgreSQL still runs
    try:
        started = time.monotonic()
        generation = cluster.sentinel.assign("k2", k1="fenced", k2="master")
        promoted = wait_reported(
            cluster.store, "k2", "primary on a new timeline", role="primary", timeline=2,
            acknowledged_state_generation=generation,
        )  # fmt: skip
        cluster.timings["promote"] = time.monotonic() - started
        assert promoted.system_identifier == cluster.system_identifier
        cluster.first.execute("INSERT INTO events VALUES (2, 'lost on k1 after the promotion')")
    finally:
        os.kill(cluster.first.pid, signal.SIGCONT)
    cluster.second.execute("INSERT INTO events VALUES (3, 'written on k2')")
    fenced = wait_reported(
        cluster.store, "k1", "fenced and stopped", running=False, fenced=True,
        acknowledged_state_generation=generation,
    )  # fmt: skip
    assert cluster.first.postgres_pid is None
    assert fenced.timeline == 1 and fenced.flush_lsn is not None


def rewinds_the_old_master(cluster: Cluster) -> None:
    """The diverged old master rejoins through pg_rewind."""
    started = time.monotonic()
    generation = cluster.sentinel.assign("k2", k1="standby:k2", k2="master")
    wait_reported(
        cluster.store, "k1", "rewound standby", running=True, role="standby", timeline=2,
        acknowledged_state_generation=generation,
    )  # fmt: skip
    cluster.timings["pg_rewind + start"] = time.monotonic() - started
    assert "pg_rewind from k2 done" in cluster.first.log_path.read_text()
    wait_until(
        lambda: cluster.first.execute("SELECT id FROM events ORDER BY id") == [(1,), (3,), (5,)],
        60,
        "k2's history on k1, without the diverged row",
    )
    wait_until(
        lambda: cluster.second.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'k1'"),
        60,
        "k1's slot on the new master",
    )
    assert cluster.system_identifier is not None


def rebuilds_a_lost_data_directory(cluster: Cluster) -> None:
    """A standby whose data directory was removed is cloned again."""
    started = time.monotonic()
    remove_data_dir(cluster.first.data_dir)
    wait_until(lambda: cluster.first.postgres_pid is None, 60, "the orphaned standby stopped")
    cluster.second.execute("INSERT INTO events VALUES (4, 'after the rebuild')")
    wait_until(
        lambda: (
            cluster.first.execute("SELECT id FROM events ORDER BY id") == [(1,), (3,), (4,), (5,)]
        ),
        60,
        "the rebuilt standby with every row",
    )
    cluster.timings["rebuild"] = time.monotonic() - started
    assert "base backup from k2 done" in cluster.first.log_path.read_text()
