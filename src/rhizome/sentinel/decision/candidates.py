"""Who may become master: eligibility of standbys and their ranking.

DESIGN §3.3: with synchronous replication only a confirmed synchronous standby
is promoted. DESIGN §3.4: asynchronously, never a standby further behind than
`max_standby_lag_bytes`, and the MOST advanced candidate wins; priority only
breaks ties, then the name (for determinism).

The lag is measured against the highest position the old master is known to
have reached: its own report while its keeper is alive; once that is gone,
the position recorded in `state.master_flush_lsn` plus the recording step
(the master may have reported up to one step more before it died), or the
most advanced standby, whichever is higher.
"""

from __future__ import annotations

from dataclasses import dataclass

from rhizome.sentinel.decision.model import Progress
from rhizome.spec import ClusterSpec
from rhizome.store.documents import KeeperInfo

POSITION_RECORD_DIVISOR = 4
"""The master's position is recorded again once it moved by bound / divisor."""

MEBIBYTE = 1024 * 1024


@dataclass(frozen=True)
class CandidateRules:
    """Which checks a promotion applies on top of the basic health checks."""

    check_lag: bool
    """Refuse standbys further behind than max_standby_lag_bytes."""
    check_synchronous: bool
    """Refuse standbys that are not confirmed synchronous standbys."""


def automatic_rules(spec: ClusterSpec) -> CandidateRules:
    """A failover decided by the sentinel: the lag bound, or the synchronous set."""
    synchronous = spec.synchronous_replication.enabled
    return CandidateRules(check_lag=not synchronous, check_synchronous=synchronous)


def forced_rules(spec: ClusterSpec) -> CandidateRules:
    """A failover to a keeper the operator named: no lag bound, never unsafe in sync mode."""
    return CandidateRules(check_lag=False, check_synchronous=spec.synchronous_replication.enabled)


SWITCHOVER_RULES = CandidateRules(check_lag=True, check_synchronous=False)
"""A switchover loses nothing (the target waits for the old master's last WAL),
but a target far behind would make the write pause long."""

CATCH_UP_RULES = CandidateRules(check_lag=False, check_synchronous=False)
"""A switchover's promotion: catching up with the old master's final position
replaces the lag check."""


@dataclass(frozen=True)
class CandidateChoice:
    """The best candidate, and why every other standby was refused."""

    best: str | None
    refusals: tuple[str, ...]
    named: bool = False
    """Only the keeper the operator named was considered."""

    def describe(self) -> str:
        """Why nobody can be promoted, for no_promotion_reason."""
        if not self.refusals:
            return "no standby is assigned"
        if self.named:
            return "; ".join(self.refusals)
        return "no eligible standby: " + "; ".join(self.refusals)


def record_step(spec: ClusterSpec) -> int:
    """How far the master may move before its position is recorded again."""
    return spec.max_standby_lag_bytes // POSITION_RECORD_DIVISOR


def describe_bytes(amount: int) -> str:
    if amount >= MEBIBYTE:
        return f"{amount / MEBIBYTE:.1f} MiB"
    return f"{amount} bytes"


def cluster_system_identifier(progress: Progress) -> str | None:
    """The cluster's database system identifier, recorded or reported by the master."""
    state = progress.state
    if state.system_identifier is not None:
        return state.system_identifier
    master = progress.keeper(state.master)
    return master.system_identifier if master is not None else None


def standby_names(progress: Progress, excluded: str | None = None) -> list[str]:
    """Keepers assigned standby, sorted, without `excluded`."""
    return [name for name in progress.state.keepers_with_role("standby") if name != excluded]


def known_master_position(progress: Progress, old_master: str | None) -> int | None:
    """The highest WAL position the (old) master is known to have reached."""
    state = progress.state
    positions: list[int] = []
    master = progress.keeper(old_master)
    if master is not None and master.flush_lsn is not None:
        positions.append(master.flush_lsn)
        if state.master_flush_lsn is not None:
            positions.append(state.master_flush_lsn)
    elif state.master_flush_lsn is not None:
        positions.append(state.master_flush_lsn + record_step(progress.spec))
    system_identifier = cluster_system_identifier(progress)
    for name in standby_names(progress, old_master):
        standby = progress.keeper(name)
        if standby is None or standby.system_identifier != system_identifier:
            continue
        if standby.wal_position is not None:
            positions.append(standby.wal_position)
    return max(positions, default=None)


def health_refusal(progress: Progress, name: str, document: KeeperInfo) -> str | None:
    """Why a live keeper cannot be promoted whatever the rules."""
    if not document.running:
        return "is not running"
    if not document.healthy:
        return "is unhealthy"
    if document.role != "standby":
        return f"is not a standby (reports {document.role})"
    system_identifier = cluster_system_identifier(progress)
    if system_identifier is None:
        return "cannot be checked: the cluster's system identifier is not known"
    if document.system_identifier != system_identifier:
        return "holds another database (system identifier differs)"
    timeline = progress.state.master_timeline
    if timeline is not None and document.timeline != timeline:
        return f"is on timeline {document.timeline}, the master's is {timeline}"
    if document.wal_position is None:
        return "reports no WAL position"
    return None


def setting_refusal(progress: Progress, name: str) -> str | None:
    """Why the operator's settings forbid promoting `name`."""
    assignment = progress.state.assignment_of(name)
    if assignment is None or assignment.role != "standby":
        role = assignment.role if assignment is not None else "not assigned"
        return f"is not a standby of the cluster ({role})"
    settings = progress.settings(name)
    if settings.maintenance:
        return "is in maintenance"
    if settings.no_failover:
        return "is marked no_failover"
    if progress.removal_requested(name):
        return "is being removed"
    return None


def candidate_refusal(
    progress: Progress, name: str, rules: CandidateRules, reference: int | None
) -> str | None:
    """Why `name` cannot be promoted under `rules`; None when it can."""
    refusal = setting_refusal(progress, name)
    if refusal is not None:
        return refusal
    document = progress.keeper(name)
    if document is None:
        return "has no live keeper (its lease expired)"
    refusal = health_refusal(progress, name, document)
    if refusal is not None:
        return refusal
    if rules.check_synchronous and name not in progress.state.synchronous_standbys.promotable:
        return "is not a confirmed synchronous standby"
    if rules.check_lag and reference is not None and document.wal_position is not None:
        lag = reference - document.wal_position
        bound = progress.spec.max_standby_lag_bytes
        if lag > bound:
            return (
                f"is {describe_bytes(lag)} behind the master's last known position "
                f"(bound {describe_bytes(bound)})"
            )
    return None


def choose_candidate(
    progress: Progress, old_master: str | None, rules: CandidateRules
) -> CandidateChoice:
    """The most advanced eligible standby (priority, then name, break ties)."""
    reference = known_master_position(progress, old_master) if rules.check_lag else None
    ranked: list[tuple[int, int, str]] = []
    refusals: list[str] = []
    for name in standby_names(progress, old_master):
        refusal = candidate_refusal(progress, name, rules, reference)
        document = progress.keeper(name)
        if refusal is not None or document is None or document.wal_position is None:
            refusals.append(f"{name} {refusal}")
            continue
        ranked.append((-document.wal_position, -progress.settings(name).priority, name))
    best = min(ranked)[2] if ranked else None
    return CandidateChoice(best=best, refusals=tuple(refusals))


def named_candidate(
    progress: Progress, name: str, old_master: str | None, rules: CandidateRules
) -> CandidateChoice:
    """`name` if it is eligible under `rules`."""
    reference = known_master_position(progress, old_master) if rules.check_lag else None
    refusal = candidate_refusal(progress, name, rules, reference)
    if refusal is None:
        return CandidateChoice(best=name, refusals=(), named=True)
    return CandidateChoice(best=None, refusals=(f"{name} {refusal}",), named=True)
