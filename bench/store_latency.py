"""Latency of the store clients against one local member of each etcd release, side by side.

Measures get, put, compare-and-swap put, lease keepalive and watch-event delivery
(time from the start of a put to the watcher yielding its event) with both
clients, on etcd's v3 API (rhizome.etcd) and on its v2 API (rhizome.etcd_v2,
python-etcd), against one etcd 3.4 member and one etcd 3.5 member
(tests/harness/etcd_releases.py) running at the same time, in alternating
rounds so that all see the same background load, then rewrites the "store
client latency" section of docs/benchmarks.md.

Run with `make bench` (or `PYTHONPATH=. .venv/bin/python bench/store_latency.py`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import write_section
from rhizome import clock
from rhizome.config import ETCD_APIS, open_client
from rhizome.etcd import EtcdSettings
from rhizome.etcd.interface import StoreClient
from tests.harness.etcd import EtcdServer, start_etcd
from tests.harness.etcd_releases import ETCD_RELEASES, release_binary

VALUE = b"v" * 512
Samples = dict[str, dict[str, list[float]]]
"""operation -> release -> seconds"""


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(operation: Callable[[int], object], count: int) -> list[float]:
    samples = []
    for index in range(count):
        started = time.perf_counter()
        operation(index)
        samples.append(time.perf_counter() - started)
    return samples


@dataclass
class WatchProbe:
    """One watcher on /bench/watch/ that records when each key's event arrives."""

    client: StoreClient
    received: dict[str, float] = field(default_factory=dict)
    sent: int = 0

    def start(self) -> None:
        self.watcher = self.client.watcher("/bench/watch/", idle_timeout=5.0)
        ready = threading.Event()

        def consume() -> None:
            for update in self.watcher.updates():
                ready.set()
                for event in update.events:
                    self.received[event.item.key] = time.perf_counter()

        threading.Thread(target=consume, daemon=True).start()
        ready.wait(5)
        self.client.put("/bench/watch/warm-up", b"x")
        time.sleep(0.2)  # the stream is open once the warm-up event is in

    def measure(self, count: int) -> list[float]:
        """Seconds from the start of each put to the watcher yielding its event."""
        sent = {}
        for _ in range(count):
            key = f"/bench/watch/{self.sent}"
            self.sent += 1
            sent[key] = time.perf_counter()
            self.client.put(key, b"x")
            time.sleep(0.002)
        deadline = time.monotonic() + 10
        while not set(sent) <= set(self.received) and time.monotonic() < deadline:
            time.sleep(0.01)
        return [self.received[key] - sent[key] for key in sent if key in self.received]

    def close(self) -> None:
        self.watcher.close()


class Target:
    """One member of one release through one API, with the client and its operations' state.

    The lease carries one key, as an agent's does: on v2 a keepalive refreshes both."""

    def __init__(self, release: str, api: str, server: EtcdServer) -> None:
        self.release = f"{release} {api}"
        self.version = f"{server.binary.version_text} {api}"
        self.client = open_client(EtcdSettings(endpoints=(server.client_url,)), api)
        self.client.put("/bench/key", VALUE)
        self.cas_revision = self.client.put("/bench/cas", b"0")
        self.lease_id = self.client.grant_lease(60).id
        self.client.put("/bench/leased", VALUE, lease=self.lease_id)
        self.watch = WatchProbe(self.client)
        self.watch.start()

    def operations(self) -> dict[str, Callable[[int], object]]:
        client = self.client
        return {
            "get": lambda _: client.get("/bench/key"),
            "put": lambda index: client.put(f"/bench/put/{index % 50}", VALUE),
            "compare-and-swap put": self._compare_and_swap,
            "lease keepalive": lambda _: client.keepalive(self.lease_id, clock.monotonic() + 2),
        }

    def _compare_and_swap(self, _: int) -> None:
        written = self.client.put_if_unchanged("/bench/cas", VALUE, self.cas_revision)
        assert written is not None, "nobody else writes /bench/cas"
        self.cas_revision = written


@contextlib.contextmanager
def targets(directory: Path) -> Iterator[list[Target]]:
    """One running member (and client) per release in ETCD_RELEASES."""
    binaries = {release: release_binary(release) for release in ETCD_RELEASES}
    servers: list[EtcdServer] = []
    started: list[Target] = []
    try:
        for release, binary in binaries.items():
            options = {"tls": False, "client_cert_auth": False, "auth": False}
            servers.append(start_etcd(directory, f"etcd-{release}", binary=binary, **options))
            started += [Target(release, api, servers[-1]) for api in ETCD_APIS]
        yield started
    finally:
        for target in started:
            target.watch.close()
        for server in servers:
            server.stop()


def measure(count: int, rounds: int) -> tuple[Samples, dict[str, str]]:
    """Samples per operation and release, taken in rounds that alternate the release order."""
    samples: Samples = {}
    with (
        tempfile.TemporaryDirectory(prefix="rhizome-bench-") as directory,
        targets(Path(directory)) as members,
    ):
        for round_number in range(rounds):
            order = members if round_number % 2 == 0 else members[::-1]
            for target in order:
                for name, operation in target.operations().items():
                    taken = timed(operation, count // rounds)
                    samples.setdefault(name, {}).setdefault(target.release, []).extend(taken)
                watched = target.watch.measure(min(count, 500) // rounds)
                samples.setdefault("watch event", {}).setdefault(target.release, []).extend(watched)
        versions = {target.release: target.version for target in members}
    return samples, versions


def render(samples: Samples, versions: dict[str, str], load: tuple[float, float]) -> str:
    releases = list(versions)
    header = " | ".join(f"{versions[r]} p50 | {versions[r]} p99" for r in releases)
    lines = [
        "## Store client latency",
        "",
        f"`bench/store_latency.py`, {time.strftime('%Y-%m-%d')}, {platform.node()}: "
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), load average "
        f"{load[0]:.2f} at the start and {load[1]:.2f} at the end (1 min). Our clients "
        "on etcd's v3 API (`rhizome.etcd`) and on its v2 API (`rhizome.etcd_v2`, python-etcd) "
        "against one local member of each etcd release ("
        + ", ".join(sorted({f"etcd {versions[r].split()[0]}" for r in releases}))
        + ") on loopback, both running, in alternating rounds (fsync on, 512-byte values, "
        "one client thread). v2 reads are quorum reads; a v2 lease keepalive refreshes the "
        "lease's marker and its one key (two requests). Milliseconds.",
        "",
        f"| operation | samples per etcd | {header} |",
        "|---|---|" + "---|" * (2 * len(releases)),
    ]
    for name, by_release in samples.items():
        cells = []
        for release in releases:
            taken = by_release[release]
            figures = [percentile(taken, 0.5), percentile(taken, 0.99)]
            cells += [f"{figure * 1000:.2f}" for figure in figures]
        count = min(len(taken) for taken in by_release.values())
        lines.append(f"| {name} | {count} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="samples per operation and etcd")
    parser.add_argument("--rounds", type=int, default=10, help="alternations between releases")
    arguments = parser.parse_args()
    load_before = os.getloadavg()[0]
    try:
        samples, versions = measure(arguments.count, arguments.rounds)
    except LookupError as error:
        raise SystemExit(str(error)) from None
    section = render(samples, versions, (load_before, os.getloadavg()[0]))
    print(section)
    write_section("store-latency", section)


if __name__ == "__main__":
    main()
