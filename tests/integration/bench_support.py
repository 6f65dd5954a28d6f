"""Running a script of bench/ from the repository, for the benches' smoke tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent.parent


def run_bench(script: str, arguments: list[str], timeout: float) -> str:
    """Run bench/`script` with `arguments` and return its output (stdout, then stderr);
    fails the test with the output's end unless it exits 0."""
    run = subprocess.run(
        [sys.executable, f"bench/{script}", *arguments],
        cwd=REPOSITORY,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    return output
