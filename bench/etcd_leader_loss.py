"""Does a healthy master fence when the etcd leader dies or freezes? By etcd raft timing.

A three-member etcd (the release on PATH) runs with the etcd role's raft timing
(etcd_heartbeat_interval 50 ms, etcd_election_timeout 500 ms) and, for
comparison, with etcd's own defaults (100 ms, 1000 ms). In each trial a
LeaseGuard with the keeper's default timing (renewal every second, fence
deadline 3.5 s) lists the raft leader first; just after one of its renewals
(`--phase` seconds later: 0.95, the worst moment, is the default) the leader is
SIGKILLed or frozen for 3 s. While the others elect a new leader no keepalive
succeeds; a renewal that gets no answer before the fencing point (2.5 s after
the last renewal) fences PostgreSQL. Each trial also records when etcd answered
again (the send time of the first keepalive answered, one sent every 50 ms to
each surviving member). Rewrites the "etcd leader loss" section of
docs/benchmarks.md.

Run with `make bench` (or `PYTHONPATH=. .venv/bin/python bench/etcd_leader_loss.py`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.report import write_section
from rhizome import clock
from tests.harness.etcd import EtcdCluster, raft_arguments
from tests.integration.test_etcd_member_faults import (
    RENEW_INTERVAL,
    TimedLeaseHolder,
    client_listing_first,
    recording_guard,
    watch_for_answers,
)

TIMINGS = {"role default": (50, 500), "etcd's default": (100, 1000)}
"""Name -> (heartbeat interval, election timeout) in milliseconds."""
FAULTS = {"kill": "leader killed", "freeze": "leader frozen"}
FAULT_SECONDS = 3.0
TTL = 5


@dataclass
class Trial:
    fenced: bool
    etcd_back: float
    """Seconds from the fault to the send time of the first keepalive etcd answered."""


def wait_for_next_renewal(holder: TimedLeaseHolder) -> float:
    """The start time of the guard's next renewal, once it has ended."""
    count = len(holder.renewals)
    while len(holder.renewals) == count:
        time.sleep(0.005)
    return holder.renewals[-1].started


def run_trial(cluster: EtcdCluster, fault: str, phase: float) -> Trial:
    leader = cluster.leader_index()
    holder = TimedLeaseHolder(client_listing_first(cluster, leader), ttl=TTL)
    guard, fences = recording_guard(holder)
    answers = watch_for_answers(cluster, leader)
    guard.start()
    try:
        if not guard.wait_for_lease(5):
            raise RuntimeError("no lease granted")
        time.sleep(2 * RENEW_INTERVAL)
        renewed = wait_for_next_renewal(holder)
        time.sleep(max(0.0, renewed + phase - clock.monotonic()))
        began = clock.monotonic()
        cluster[leader].kill() if fault == "kill" else cluster[leader].freeze()
        answers.start()
        time.sleep(FAULT_SECONDS)
        cluster[leader].start() if fault == "kill" else cluster[leader].thaw()
        time.sleep(2.0)
    finally:
        answers.close()
        guard.stop(revoke=True)
    return Trial(fenced=bool(fences), etcd_back=answers.back() - began)


def run_timing(name: str, trials: int, phase: float) -> dict[str, list[Trial]]:
    heartbeat, election = TIMINGS[name]
    raft = raft_arguments(heartbeat, election)
    cluster = EtcdCluster(Path(tempfile.mkdtemp()) / "etcd", size=3, extra_arguments=raft)
    cluster.start()
    results: dict[str, list[Trial]] = {fault: [] for fault in FAULTS}
    try:
        for index in range(trials):
            for fault in FAULTS:
                trial = run_trial(cluster, fault, phase)
                results[fault].append(trial)
                print(f"{name}, {fault} {index + 1}: fenced {trial.fenced},"
                      f" etcd answered from {trial.etcd_back:.2f} s", flush=True)  # fmt: skip
                time.sleep(3.0)  # the restarted or thawed member catches up
    finally:
        cluster.stop()
    return results


def table(results: dict[str, dict[str, list[Trial]]]) -> str:
    lines = [
        "| election timeout / heartbeat | fault | fenced | etcd answered keepalives sent"
        " (s after the fault, min to max) |",
        "|---|---|---|---|",
    ]
    for name, by_fault in results.items():
        heartbeat, election = TIMINGS[name]
        for fault, trials in by_fault.items():
            back = sorted(trial.etcd_back for trial in trials)
            fenced = sum(trial.fenced for trial in trials)
            lines.append(
                f"| {election} / {heartbeat} ms ({name}) | {FAULTS[fault]}"
                f" | {fenced} of {len(trials)} | {back[0]:.2f} to {back[-1]:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="per fault and timing")
    parser.add_argument("--phase", type=float, default=0.95,
                        help="seconds after a renewal at which the fault comes")  # fmt: skip
    parser.add_argument("--no-report", action="store_true", help="print only")
    arguments = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = {name: run_timing(name, arguments.trials, arguments.phase) for name in TIMINGS}
    section = (
        "## etcd leader loss and a healthy master\n\n"
        f"`bench/etcd_leader_loss.py`, {time.strftime('%Y-%m-%d %H:%M')}, load average"
        f" {load_before:.2f} before and {os.getloadavg()[0]:.2f} after: the raft leader of a"
        f" three-member etcd killed or frozen {FAULT_SECONDS:.0f} s, {arguments.phase} s after"
        " a renewal of a LeaseGuard with the keeper's default timing (fencing point 2.5 s"
        " after the last renewal), which lists the leader first. Why the etcd role sets a"
        " 500 ms election timeout: docs/protocol.md, Known limits.\n\n" + table(results)
    )
    print(section)
    if not arguments.no_report:
        write_section("etcd-leader-loss", section)


if __name__ == "__main__":
    main()
