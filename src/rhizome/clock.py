"""The one clock of every safety deadline: CLOCK_BOOTTIME.

Like time.monotonic() it never steps with the wall clock, but it also counts
the time a host spends suspended: etcd, on another host, counts a lease's TTL
through our suspend, so a fence deadline must too (DESIGN §3.7). Use it for
every duration an agent measures; never compare it with another host's value.
"""

from __future__ import annotations

import time


def monotonic() -> float:
    """Seconds since boot, suspend included; never goes back."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)
