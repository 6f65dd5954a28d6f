"""How long a keeper with nothing to do waits before it observes PostgreSQL again.

What changes is announced and wakes the loop at once: a store change, the
postmaster's exit, a new or lost lease, the guard. The periodic observation
only has to notice what nothing announces: WAL that arrived or advanced, a
replication connection that ended, a PostgreSQL that stopped answering. So
while observations come back unchanged the keeper waits one
keeper_publish_interval longer after each, up to `quiet_interval`; the first
change, action or wait brings it back to keeper_publish_interval. A cluster
that takes writes sees its positions change on every pass and is observed
every interval, as before; an idle one costs a third of the passes.

The bound keeps failover choices exact: a standby that received WAL just
before its master died observes (and publishes) it before that master's lease
can expire, keeper_lease_ttl - keeper_publish_interval after the master's last
renewal, with one interval to spare.
"""

from __future__ import annotations

from rhizome.spec.timing import TimingSettings

QUIET_STRETCH = 3
"""The longest quiet wait, in keeper_publish_intervals (before the lease bound)."""


def quiet_interval(timing: TimingSettings) -> float:
    """The longest wait between two observations of an unchanged PostgreSQL."""
    interval = timing.keeper_publish_interval
    return max(interval, min(QUIET_STRETCH * interval, timing.keeper_lease_ttl - 2 * interval))


def observation_pause(timing: TimingSettings, quiet_passes: int) -> float:
    """Seconds until the next observation after `quiet_passes` unchanged ones in a row."""
    return min(timing.keeper_publish_interval * (1 + quiet_passes), quiet_interval(timing))
