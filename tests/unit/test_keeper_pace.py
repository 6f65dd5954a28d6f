"""How long an idle keeper waits between observations (rhizome.keeper.pace)."""

from rhizome.keeper.pace import observation_pause, quiet_interval
from rhizome.spec import TimingSettings


def test_unchanged_observations_stretch_the_wait_to_three_intervals() -> None:
    timing = TimingSettings()
    pauses = [observation_pause(timing, quiet) for quiet in range(6)]
    assert pauses == [1.0, 2.0, 3.0, 3.0, 3.0, 3.0]


def test_a_change_brings_the_wait_back_to_one_interval() -> None:
    timing = TimingSettings(keeper_publish_interval=0.5)
    assert observation_pause(timing, 0) == 0.5
    assert observation_pause(timing, 10) == 1.5


def test_a_standby_observes_new_wal_before_a_dead_masters_lease_can_expire() -> None:
    """The master's lease expires no sooner than ttl - interval after its death."""
    for interval, ttl, deadline in ((1.0, 5.0, 3.5), (1.0, 4.0, 3.0), (2.0, 6.0, 5.0)):
        timing = TimingSettings(
            keeper_publish_interval=interval, keeper_lease_ttl=ttl, fence_deadline=deadline
        )
        assert quiet_interval(timing) < ttl - interval


def test_the_wait_is_never_shorter_than_the_publish_interval() -> None:
    timing = TimingSettings(keeper_publish_interval=2.0, keeper_lease_ttl=5.0, fence_deadline=4.5)
    assert quiet_interval(timing) == 2.0
    assert observation_pause(timing, 5) == 2.0
