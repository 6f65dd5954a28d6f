"""`python -m chaos` (`make chaos`): sizes from the environment.

CHAOS_MODE (both: sync then async; or sync, async), CHAOS_FAULTS (default 200 in sync,
100 in async), CHAOS_SEED (default: random, printed), CHAOS_KINDS (comma-separated,
default every kind), CHAOS_DURATION_SCALE (1.0), CHAOS_REPORT (docs/reliability.md;
empty: none). Exit 1 when a safety target is missed.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

from chaos import report, results
from chaos.analysis import dual_writable
from chaos.campaign import EXPECTED_TOTAL, CampaignResult
from chaos.losses import group_losses
from chaos.plan import ALL_KINDS, plan
from chaos.run import run

DEFAULT_FAULTS = {"sync": 200, "async": 100}


def safety_failures(result: CampaignResult) -> list[str]:
    """The targets of the campaign this result misses (empty: all met)."""
    failures = []
    if result.mode == "sync" and result.lost:
        failures.append(f"{len(result.lost)} acknowledged writes lost")
    groups = group_losses(result.lost, result.inserts.acknowledged, result.records)
    beyond = [g for g in groups if not g.within_bound(result.wal_bytes_per_insert,
                                                      result.lag_bound_bytes)]  # fmt: skip
    if result.mode == "async" and beyond:
        failures.append(f"{len(beyond)} groups of lost writes beyond the lag bound or unexplained")
    if dual_writable(s for s in result.samples if s.via == "proxy"):
        failures.append("dual-writable intervals through proxies")
    if any(record.converged is None for record in result.records):
        failures.append("convergence failures")
    if result.bank_total != EXPECTED_TOTAL:
        failures.append(f"bank total {result.bank_total}")
    return failures


def run_mode(mode: str, seed: int) -> tuple[tuple[CampaignResult, str], list[str]]:
    count = int(os.environ.get("CHAOS_FAULTS") or DEFAULT_FAULTS[mode])
    kinds = [k for k in os.environ.get("CHAOS_KINDS", ",".join(ALL_KINDS)).split(",") if k]
    scale = float(os.environ.get("CHAOS_DURATION_SCALE", "1.0"))
    print(f"chaos: seed {seed}, {count} faults, mode {mode}, kinds {','.join(kinds)}", flush=True)
    directory = Path(tempfile.mkdtemp(prefix=f"rhizome-chaos-{mode}-"))
    result = run(directory, seed, plan(seed, count, kinds, scale), mode,
                 lambda line: print(line, flush=True))  # fmt: skip
    command = f"CHAOS_SEED={seed} CHAOS_FAULTS={count} CHAOS_MODE={mode} "
    command += f"CHAOS_DURATION_SCALE={scale} make chaos"
    results.dump(result, directory / "result.json")
    failures = safety_failures(result)
    print(f"chaos: {mode}, seed {seed}: {'; '.join(failures) or 'every target met'}; "
          f"logs and result.json in {directory}", flush=True)  # fmt: skip
    return (result, command), failures


def main() -> int:
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1, 10**6))
    mode = os.environ.get("CHAOS_MODE", "both")
    modes = ["sync", "async"] if mode == "both" else [mode]
    if not set(modes) <= set(DEFAULT_FAULTS):
        print(f"chaos: CHAOS_MODE must be both, sync or async, not {mode!r}", file=sys.stderr)
        return 2
    report_path = os.environ.get("CHAOS_REPORT", "docs/reliability.md")
    runs, failures = [], []
    for each in modes:
        one_run, missed = run_mode(each, seed)
        runs.append(one_run)
        failures += [f"{each}: {failure}" for failure in missed]
    if report_path:
        report.publish(runs, Path(report_path))
    print(f"chaos: seed {seed}: {'; '.join(failures) or 'every target met'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
