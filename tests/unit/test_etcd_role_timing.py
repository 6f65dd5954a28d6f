"""The etcd role's raft timing fits the keeper's default timing, and the tests run it."""

from pathlib import Path

import yaml

from rhizome.keeper.lease import fencing_point
from rhizome.spec.timing import TimingSettings
from tests.harness.etcd import RAFT_TIMING, raft_arguments

ROLE_DEFAULTS = Path(__file__).resolve().parents[2] / "roles" / "etcd" / "defaults" / "main.yml"


def role_defaults() -> dict[str, object]:
    defaults: dict[str, object] = yaml.safe_load(ROLE_DEFAULTS.read_text())
    return defaults


def test_an_election_after_a_lost_etcd_leader_fits_a_masters_renewal() -> None:
    """While etcd elects a leader no renewal succeeds. Raft waits between one and two
    election timeouts after the leader's last heartbeat before it votes; a master's
    renewal, sent one interval after the last one, must be answered by the fencing point."""
    timing = TimingSettings()
    renewal_budget = fencing_point(timing.fence_deadline) - timing.keeper_publish_interval
    longest_election = 2 * int(str(role_defaults()["etcd_election_timeout"])) / 1000
    assert longest_election < renewal_budget


def test_the_tests_run_etcd_with_the_roles_raft_timing() -> None:
    defaults = role_defaults()
    heartbeat = int(str(defaults["etcd_heartbeat_interval"]))
    election_timeout = int(str(defaults["etcd_election_timeout"]))
    assert raft_arguments(heartbeat, election_timeout) == RAFT_TIMING
