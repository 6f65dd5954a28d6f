"""Free TCP ports on 127.0.0.1, chosen below the kernel's ephemeral port range."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PREFERRED_LOWEST = 20000
PREFERRED_HIGHEST = 32000

_handed_out: set[int] = set()


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (low, high)."""
    try:
        low, high = EPHEMERAL_RANGE_FILE.read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def candidate_range() -> range:
    """Ports to pick from: below the ephemeral range, where outgoing connections never land."""
    ephemeral_low, _ = ephemeral_port_range()
    highest = min(PREFERRED_HIGHEST, ephemeral_low - 1)
    lowest = max(1024, min(PREFERRED_LOWEST, highest - 1000))
    return range(lowest, highest + 1)


def is_bindable(port: int, host: str = LOOPBACK) -> bool:
    """True when a listening socket could bind host:port right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    """A random bindable port, never handed out before by this process."""
    candidates = candidate_range()
    for _ in range(200):
        port = random.choice(candidates)
        if port not in _handed_out and is_bindable(port, host):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port found in {candidates.start}..{candidates.stop - 1}")


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Several distinct free ports."""
    return [free_port(host) for _ in range(count)]
