"""The keeper's safety rules on real processes: fencing, crash handling, the lock, bad config."""

from __future__ import annotations

import re
import time

import pytest

from rhizome.etcd import EtcdClient
from rhizome.spec import ClusterSpec, TimingSettings
from rhizome.store.cluster_store import ClusterStore
from tests.harness.keeper import KeeperFactory, StateWriter, reported, wait_reported, wait_until
from tests.harness.processes import is_alive

pytestmark = pytest.mark.integration

FENCED_LINE = re.compile(r"FENCED: PostgreSQL stopped ([0-9.]+) s after the last lease renewal")


def start_master(store: ClusterStore, keeper_factory: KeeperFactory, spec: ClusterSpec):
    assert store.write_spec(spec, 0)
    generation = StateWriter(store).assign("k1", initialized=False, k1="master")
    keeper = keeper_factory("k1")
    keeper.start()
    wait_reported(
        store, "k1", "healthy primary", role="primary", running=True,
        acknowledged_state_generation=generation,
    )  # fmt: skip
    return keeper


def test_a_master_cut_off_from_etcd_fences_before_the_deadline(etcd, store, keeper_factory, capsys):
    spec = ClusterSpec()
    deadline = spec.timing.fence_deadline
    keeper = start_master(store, keeper_factory, spec)
    postmaster = keeper.postgres_pid
    assert postmaster is not None

    etcd.freeze()
    frozen_at = time.monotonic()
    try:
        wait_until(lambda: not is_alive(postmaster), 2 * deadline, "PostgreSQL fenced")
        fenced_after_freeze = time.monotonic() - frozen_at
        assert not keeper.accepts_connections()
    finally:
        etcd.thaw()
    logged = wait_until(lambda: FENCED_LINE.search(keeper.log_path.read_text()), 5, "log line")
    since_renewal = float(logged.group(1))
    with capsys.disabled():
        print(
            f"\nfenced {fenced_after_freeze:.2f} s after the etcd freeze,"
            f" {since_renewal:.2f} s after the last successful renewal (deadline {deadline} s)"
        )
    assert fenced_after_freeze < deadline
    assert since_renewal < deadline
    # The lease outlived the freeze and the state still says master: PostgreSQL comes back.
    wait_reported(store, "k1", "primary again", role="primary", running=True, fenced=False)


def test_a_crashed_master_is_reported_and_not_restarted_while_failover_may_happen(
    store, keeper_factory, capsys
):
    timing = TimingSettings(
        keeper_publish_interval=0.5, keeper_lease_ttl=3.0, fence_deadline=2.0,
        master_recovery_grace=1.0,
    )  # fmt: skip
    keeper = start_master(store, keeper_factory, ClusterSpec(timing=timing))
    hold_back = timing.master_recovery_grace + timing.keeper_lease_ttl

    killed_at = time.monotonic()
    keeper.kill_postgres()
    wait_reported(store, "k1", "crash reported", timeout=5, running=False, fenced=True)
    reported_after = time.monotonic() - killed_at
    while time.monotonic() - killed_at < hold_back - 0.5:
        assert keeper.postgres_pid is None, "restarted while the sentinel may fail over"
        assert reported(store, "k1", running=False) is not None
        time.sleep(0.1)
    wait_reported(store, "k1", "restarted", timeout=10, running=True, role="primary")
    restarted_after = time.monotonic() - killed_at
    with capsys.disabled():
        print(
            f"\ncrash reported after {reported_after:.2f} s,"
            f" restarted after {restarted_after:.2f} s (held back {hold_back} s)"
        )
    assert reported_after < 1.0
    assert restarted_after >= hold_back


def test_a_second_keeper_on_the_same_data_directory_is_refused(store, keeper_factory):
    first = keeper_factory("k1")
    first.start()
    wait_reported(store, "k1", "published")
    second = keeper_factory("k2", extra_settings={"data_dir": str(first.data_dir)})
    second.start()
    assert second.wait_exit(30) == 2
    assert f"data directory {first.data_dir} is in use by another keeper" in second.log_tail()
    assert first.is_running


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"port": 70000}, "[keeper] port"),
        ({"name": "Bad Name"}, "[keeper] name"),
        ({"bin_dir": "/nonexistent"}, "[keeper] bin_dir"),
        ({"superuser_password_file": "/nonexistent"}, "superuser password file"),
    ],
)
def test_bad_configuration_is_one_clear_line_and_changes_nothing(keeper_factory, settings, named):
    keeper = keeper_factory("k1", extra_settings=settings)
    keeper.start()
    assert keeper.wait_exit(30) == 2
    output = keeper.log_tail().splitlines()[1:]  # after the harness's "starting" line
    assert len(output) == 1 and output[0].startswith("rhizome-keeper: error: "), output
    assert named in output[0]
    assert not keeper.data_dir.exists() and not keeper.state_dir.exists()
    assert not list(keeper.root_dir.glob("*.lock"))


def remaining_ttl(client: EtcdClient, lease_id: int) -> int:
    response = client.transport.call("/lease/timetolive", {"ID": str(lease_id)})
    return int(response.get("TTL", -1))


def test_a_master_whose_lease_is_revoked_fences_without_waiting_for_its_next_renewal(
    etcd, store, keeper_factory, capsys
):
    """A thawed old etcd leader can revoke a lease renewed all along (docs/protocol.md).

    Renewals every 2 s (a 6 s lease): etcd reports 5 s left for the first second
    after a renewal, 4 s for the next. Revoked right after a renewal, a keeper that
    waited for its next one would keep PostgreSQL writable for about 2 s.
    """
    timing = TimingSettings(keeper_publish_interval=2.0, fence_deadline=4.5, keeper_lease_ttl=6.0)
    keeper = start_master(store, keeper_factory, ClusterSpec(timing=timing))
    postmaster = keeper.postgres_pid
    assert postmaster is not None
    stored = store.client.get("/rhizome/main/keepers/k1")
    assert stored is not None and stored.lease
    lease_id = stored.lease
    wait_until(lambda: remaining_ttl(store.client, lease_id) == 4, 3, "a second without renewal")
    wait_until(lambda: remaining_ttl(store.client, lease_id) == 5, 3, "a renewal")
    store.client.revoke_lease(lease_id)
    revoked_at = time.monotonic()
    wait_until(lambda: not is_alive(postmaster), 5, "PostgreSQL fenced")
    fenced_after = time.monotonic() - revoked_at
    with capsys.disabled():
        print(f"\nPostgreSQL gone {fenced_after:.2f} s after its keeper's lease was revoked")
    assert fenced_after < 1.0, "the keeper waited for its next renewal"
