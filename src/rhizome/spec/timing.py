"""The timing set of a cluster, validated as a whole.

Safety depends on the order of these durations (DESIGN §3.2): a master keeper
that cannot renew its lease fences its PostgreSQL before the lease expires, so
that once the sentinel sees the lease gone it may promote another keeper; a
proxy that cannot reach the store closes its connections before its lease
expires, so that the sentinel never waits for, nor trusts, a proxy it cannot
see. With the defaults a dead master host is replaced in about six seconds:
its lease expires 4 to 5 s after the last renewal, then the sentinel fences
the proxies, promotes the best standby and routes to it.
"""

from typing import Annotated, ClassVar, Self

from pydantic import Field, Strict, model_validator

from rhizome.store.additions import WithOptionalAdditions
from rhizome.store.validation import FieldProblem, raise_problems

MAXIMUM_SECONDS = 3600.0
"""Upper bound of every timing: larger values are almost always milliseconds."""

FENCE_MARGIN = 0.5
"""Seconds left between a fence deadline and the lease expiry, to stop PostgreSQL
or close connections (and to absorb the latency of the last renewal)."""

Duration = Annotated[float, Strict(), Field(gt=0, le=MAXIMUM_SECONDS, allow_inf_nan=False)]
Delay = Annotated[float, Strict(), Field(ge=0, le=MAXIMUM_SECONDS, allow_inf_nan=False)]


class TimingSettings(WithOptionalAdditions):
    """Durations in seconds; see the module documentation for how they relate."""

    OPTIONAL_ADDITIONS: ClassVar[frozenset[str]] = frozenset({"promotion_timeout"})

    keeper_publish_interval: Duration = 1.0
    """How often a keeper observes PostgreSQL and renews its lease (it publishes
    a changed observation at once, an unchanged one every 10 intervals). While
    its observations come back unchanged it observes up to three intervals
    apart (rhizome.keeper.pace); the lease is renewed every interval."""
    keeper_lease_ttl: Duration = 5.0
    """Lease of a keeper's key; when it expires the keeper counts as dead."""
    fence_deadline: Duration = 3.5
    """Time after its last successful lease renewal by which a master keeper must
    have fenced PostgreSQL (made it unable to accept writes)."""
    failover_delay: Delay = 0.0
    """Extra wait after the master keeper's lease expired before failing over.
    The lease TTL already is the failure detector (and guarantees fencing), so
    0 gives the fastest safe failover; raise it to ride out etcd hiccups."""
    master_recovery_grace: Delay = 1.0
    """How long a master whose keeper is alive may report PostgreSQL stopped or
    unhealthy before the sentinel fails over. Short, because the keeper does not
    restart a crashed master while the sentinel may fail over (only after
    master_recovery_grace + keeper_lease_ttl, when no standby was promoted): the
    default keeps a PostgreSQL crash failover within about four seconds."""
    renew_interval: Duration = 1.0
    """How often sentinels and proxies renew their leases."""
    sentinel_lease_ttl: Duration = 5.0
    """Lease of sentinel keys and of the leadership; a dead leader is replaced
    after at most this long."""
    proxy_lease_ttl: Duration = 5.0
    """Lease of a proxy's key; when it expires the sentinel stops waiting for it."""
    proxy_close_deadline: Duration = 3.5
    """Time after its last successful lease renewal by which a proxy must have
    closed its connections to the master (and holds new ones)."""
    proxy_hold_timeout: Duration = 15.0
    """How long a proxy holds a new client connection while no master is
    published before closing it; keep it above the failover time."""
    promotion_timeout: Duration | None = None
    """How long a keeper told to promote may take to report a running primary
    before the sentinel abandons that promotion (fences the keeper, then
    promotes another one or gives the old master its role back); also how long
    a failover may wait for fencing before it says so in no_promotion_reason.
    None: master_recovery_grace + 2 * keeper_lease_ttl (see promotion_deadline)."""

    @property
    def promotion_deadline(self) -> float:
        """promotion_timeout, or by default master_recovery_grace + 2 * keeper_lease_ttl.

        While promoting, a target whose PostgreSQL is stopped counts as lost
        only after master_recovery_grace + keeper_lease_ttl (its keeper may
        have to start it first); the default gives the promotion itself one
        more lease TTL on top (11 s with the default timings: a caught-up
        standby promotes in well under a second).
        """
        if self.promotion_timeout is not None:
            return self.promotion_timeout
        return self.master_recovery_grace + 2 * self.keeper_lease_ttl

    @model_validator(mode="after")
    def _check_order(self) -> Self:
        raise_problems([*self._keeper_problems(), *self._agent_problems()])
        return self

    def _keeper_problems(self) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        if (
            self.promotion_timeout is not None
            and self.promotion_timeout <= self.keeper_publish_interval
        ):
            problems.append(
                FieldProblem(
                    "promotion_timeout",
                    f"{self.promotion_timeout} must be larger than timing.keeper_publish_interval"
                    f" ({self.keeper_publish_interval}): a keeper reports its promotion at its "
                    "next observation, so a shorter deadline abandons every promotion",
                    "raise timing.promotion_timeout or leave it unset",
                )
            )
        if self.keeper_publish_interval >= self.fence_deadline:
            problems.append(
                FieldProblem(
                    "keeper_publish_interval",
                    f"{self.keeper_publish_interval} must be smaller than timing.fence_deadline"
                    f" ({self.fence_deadline}): a master keeper renews its lease every "
                    "keeper_publish_interval and fences PostgreSQL once fence_deadline passes "
                    "without a renewal, so one slow renewal would stop the master",
                    "lower timing.keeper_publish_interval or raise timing.fence_deadline",
                )
            )
        if self.fence_deadline > self.keeper_lease_ttl - FENCE_MARGIN:
            problems.append(
                FieldProblem(
                    "fence_deadline",
                    f"{self.fence_deadline} must be smaller than timing.keeper_lease_ttl "
                    f"({self.keeper_lease_ttl}) by at least {FENCE_MARGIN} s: a master that "
                    "cannot renew its lease must fence itself before the lease expires, "
                    "because the sentinel promotes another keeper as soon as it has expired",
                    "lower timing.fence_deadline or raise timing.keeper_lease_ttl",
                )
            )
        return problems

    def _agent_problems(self) -> list[FieldProblem]:
        problems: list[FieldProblem] = []
        if self.renew_interval >= self.proxy_close_deadline:
            problems.append(
                FieldProblem(
                    "renew_interval",
                    f"{self.renew_interval} must be smaller than timing.proxy_close_deadline "
                    f"({self.proxy_close_deadline}): a proxy renews its lease every "
                    "renew_interval and closes its connections once proxy_close_deadline "
                    "passes without a renewal, so one slow renewal would cut every client",
                    "lower timing.renew_interval or raise timing.proxy_close_deadline",
                )
            )
        if self.proxy_close_deadline > self.proxy_lease_ttl - FENCE_MARGIN:
            problems.append(
                FieldProblem(
                    "proxy_close_deadline",
                    f"{self.proxy_close_deadline} must be smaller than timing.proxy_lease_ttl "
                    f"({self.proxy_lease_ttl}) by at least {FENCE_MARGIN} s: a proxy that "
                    "cannot reach the store must close its connections before its lease "
                    "expires, because the sentinel stops waiting for it once it has expired",
                    "lower timing.proxy_close_deadline or raise timing.proxy_lease_ttl",
                )
            )
        if self.renew_interval >= self.sentinel_lease_ttl:
            problems.append(
                FieldProblem(
                    "renew_interval",
                    f"{self.renew_interval} must be smaller than timing.sentinel_lease_ttl "
                    f"({self.sentinel_lease_ttl}): the leader renews its leadership every "
                    "renew_interval, and a lease shorter than that expires between renewals",
                    "lower timing.renew_interval or raise timing.sentinel_lease_ttl",
                )
            )
        return problems
