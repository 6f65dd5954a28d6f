"""A campaign's result as JSON, so that the report and the plots can be drawn again
without running the campaign again: `python -m chaos.results REPORT.md RESULT.json...`
writes the report and its plots (the campaign saves result.json in its log directory)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from chaos.campaign import CampaignResult, FaultRecord
from chaos.plan import Fault
from chaos.probe import ProbeSample
from chaos.workload import WorkloadRecord


def dump(result: CampaignResult, path: Path) -> None:
    data = dataclasses.asdict(result)
    data["log_directory"] = str(result.log_directory)
    path.write_text(json.dumps(data))


def load(path: Path) -> CampaignResult:
    data: dict[str, Any] = json.loads(path.read_text())
    data["records"] = [
        FaultRecord(**{**record, "fault": Fault(**record["fault"])}) for record in data["records"]
    ]
    data["samples"] = [ProbeSample(**sample) for sample in data["samples"]]
    for workload in ("inserts", "bank"):
        record = data[workload]
        record["acknowledged"] = {int(key): value for key, value in record["acknowledged"].items()}
        data[workload] = WorkloadRecord(**record)
    data["log_directory"] = Path(data["log_directory"])
    return CampaignResult(**data)


def main(arguments: list[str]) -> int:
    from chaos.report import publish

    if len(arguments) < 2:
        print("usage: python -m chaos.results REPORT.md RESULT.json...", file=sys.stderr)
        return 2
    report, *saved = arguments
    runs = []
    for name in saved:
        result = load(Path(name))
        runs.append((result, f"CHAOS_SEED={result.seed} CHAOS_FAULTS={len(result.records)} "
                             f"CHAOS_MODE={result.mode} make chaos"))  # fmt: skip
    publish(runs, Path(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
