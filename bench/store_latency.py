"""Latency of the etcd client against a local single-member etcd.

Measures get, put, compare-and-swap put and watch-event delivery (time from
the start of a put to the watcher yielding its event), then rewrites the
"store client latency" section of docs/benchmarks.md.

Run with `make bench` (or `PYTHONPATH=. .venv/bin/python bench/store_latency.py`).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.report import write_section
from rhizome.etcd import EtcdClient, EtcdSettings, PrefixWatcher
from tests.harness.etcd import start_etcd


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


def watch_latencies(client: EtcdClient, count: int) -> list[float]:
    """Seconds from the start of each put to the watcher yielding its event."""
    watcher = PrefixWatcher(client, "/bench/watch/", idle_timeout=5.0)
    received: dict[str, float] = {}
    ready = threading.Event()

    def consume() -> None:
        for update in watcher.updates():
            ready.set()
            for event in update.events:
                received[event.item.key] = time.perf_counter()

    threading.Thread(target=consume, daemon=True).start()
    ready.wait(5)
    sent = {}
    for index in range(count):
        key = f"/bench/watch/{index}"
        sent[key] = time.perf_counter()
        client.put(key, b"x")
        time.sleep(0.002)
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    watcher.close()
    return [received[key] - sent[key] for key in sent if key in received]


def measure(count: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory(prefix="rhizome-bench-") as directory:
        server = start_etcd(Path(directory), "bench", tls=False, client_cert_auth=False, auth=False)
        try:
            client = EtcdClient(EtcdSettings(endpoints=(server.client_url,)))
            client.put("/bench/key", b"v" * 512)
            results = {
                "get": timed(lambda _: client.get("/bench/key"), count),
                "put": timed(lambda i: client.put(f"/bench/put/{i % 50}", b"v" * 512), count),
            }
            revision = client.put("/bench/cas", b"0")

            def compare_and_swap(_: int) -> None:
                nonlocal revision
                written = client.put_if_unchanged("/bench/cas", b"v" * 512, revision)
                assert written is not None
                revision = written

            results["compare-and-swap put"] = timed(compare_and_swap, count)
            results["watch event"] = watch_latencies(client, min(count, 500))
            return results
        finally:
            server.stop()


def render(results: dict[str, list[float]]) -> str:
    lines = [
        "## Store client latency",
        "",
        f"`bench/store_latency.py`, {time.strftime('%Y-%m-%d')}, {platform.node()}: "
        f"{platform.processor() or platform.machine()}, one local etcd 3.4 member on loopback "
        "(fsync on), 512-byte values, one client thread. Milliseconds.",
        "",
        "| operation | samples | p50 | p90 | p99 | max |",
        "|---|---|---|---|---|---|",
    ]
    for name, samples in results.items():
        cells = [percentile(samples, fraction) * 1000 for fraction in (0.5, 0.9, 0.99)]
        cells.append(max(samples) * 1000)
        lines.append(f"| {name} | {len(samples)} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="samples per operation")
    arguments = parser.parse_args()
    results = measure(arguments.count)
    section = render(results)
    print(section)
    write_section("store-latency", section)


if __name__ == "__main__":
    main()
