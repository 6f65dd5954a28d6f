"""`python -m chaos` (`make chaos`): sizes from the environment.

CHAOS_SEED (default: random, printed), CHAOS_FAULTS (200), CHAOS_MODE (sync|async),
CHAOS_KINDS (comma-separated, default every kind), CHAOS_DURATION_SCALE (1.0),
CHAOS_REPORT (docs/reliability.md; empty: none). Exit 1 when a safety target is missed.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

from chaos import report
from chaos.campaign import EXPECTED_TOTAL, CampaignResult
from chaos.plan import ALL_KINDS, plan
from chaos.run import run


def safety_failures(result: CampaignResult) -> list[str]:
    from chaos.analysis import dual_writable

    failures = []
    if result.mode == "sync" and result.lost:
        failures.append(f"{len(result.lost)} acknowledged writes lost")
    if dual_writable(s for s in result.samples if s.via == "proxy"):
        failures.append("dual-writable intervals through proxies")
    if any(record.converged is None for record in result.records):
        failures.append("convergence failures")
    if result.bank_total != EXPECTED_TOTAL:
        failures.append(f"bank total {result.bank_total}")
    return failures


def main() -> int:
    seed = int(os.environ.get("CHAOS_SEED") or random.randrange(1, 10**6))
    count = int(os.environ.get("CHAOS_FAULTS", "200"))
    mode = os.environ.get("CHAOS_MODE", "sync")
    kinds = [k for k in os.environ.get("CHAOS_KINDS", ",".join(ALL_KINDS)).split(",") if k]
    scale = float(os.environ.get("CHAOS_DURATION_SCALE", "1.0"))
    report_path = os.environ.get("CHAOS_REPORT", "docs/reliability.md")
    print(f"chaos: seed {seed}, {count} faults, mode {mode}, kinds {','.join(kinds)}", flush=True)
    directory = Path(tempfile.mkdtemp(prefix="rhizome-chaos-"))
    result = run(directory, seed, plan(seed, count, kinds, scale), mode,
                 lambda line: print(line, flush=True))  # fmt: skip
    command = f"CHAOS_SEED={seed} CHAOS_FAULTS={count} CHAOS_MODE={mode} "
    command += f"CHAOS_DURATION_SCALE={scale} make chaos"
    if report_path:
        report.write(result, Path(report_path), command)
    failures = safety_failures(result)
    print(f"chaos: seed {seed}: {'; '.join(failures) or 'every target met'}; logs in {directory}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
