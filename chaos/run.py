"""The whole campaign in one call: cluster up, faults, checks, cluster down."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from chaos.campaign import CampaignResult, run_campaign
from chaos.cluster import ChaosCluster
from chaos.plan import Fault


def run(directory: Path, seed: int, faults: Sequence[Fault], mode: str,
        progress: Callable[[str], None] = print) -> CampaignResult:  # fmt: skip
    """Namespaces and processes are removed on every exit, Ctrl-C included."""
    with ChaosCluster(directory, mode) as cluster:
        cluster.start()
        progress(f"chaos: cluster up, master {cluster.master_name()}; logs in {directory}")
        return run_campaign(cluster, seed, faults, progress)
