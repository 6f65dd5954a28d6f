"""The leader sentinel's pure decision function and its input and output.

    decision = decide(ClusterObservation(spec, state, keepers, proxies, commands, now))

The modules follow docs/protocol.md: candidates (eligibility and ranking),
fencing, failover, switchover, promotion (promote and route),
initialisation, synchronous (two-phase set), membership (joins, rejoins,
removals), commands and results, memory (what the state remembers for the
next call), decide (the driver).
"""

from rhizome.sentinel.decision.decide import decide
from rhizome.sentinel.decision.model import ClusterObservation, Decision

__all__ = ["ClusterObservation", "Decision", "decide"]
