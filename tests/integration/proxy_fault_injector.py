"""Runs the real rhizome-proxy with faults a test switches on by creating files (no tests here).

    python tests/integration/proxy_fault_injector.py FAULT_DIRECTORY -c proxy.toml

- `FAULT_DIRECTORY/stall` (its text: seconds): once, a thread holds the GIL
  that long, so the whole proxy stalls while the kernel keeps receiving for
  it (a GC pause, a starved CPU). `stall.started` holds one byte, 1 once the
  stall holds the GIL for good: written through a shared mapping, because a
  file write would let the event loop run in between.
- `FAULT_DIRECTORY/lease_error`: the lease thread's next renewal raises.
- `FAULT_DIRECTORY/watch_error`: the watch thread raises on its next update.
"""

from __future__ import annotations

import mmap
import sys
import threading
import time
from pathlib import Path
from typing import Any

POLL_INTERVAL = 0.02


SETTLE = 0.1
"""Seconds after which a thread that asked for the GIL under the old switch interval
has had its turn and given it back: from then on the stall holds it alone."""


def stall_when_asked(directory: Path) -> None:
    request = directory / "stall"
    started = directory / "stall.started"
    started.write_bytes(b"\0")
    with started.open("r+b") as file, mmap.mmap(file.fileno(), 1) as marker:
        while not request.exists():
            time.sleep(POLL_INTERVAL)
        seconds = float(request.read_text())
        normal = sys.getswitchinterval()
        sys.setswitchinterval(seconds + 5)  # no other thread gets the GIL meanwhile
        now = time.monotonic()
        settled, end = now + SETTLE, now + seconds
        while time.monotonic() < settled:
            pass
        marker[0] = 1  # a memory write: the GIL stays held
        while time.monotonic() < end:
            pass
        sys.setswitchinterval(normal)


def install(directory: Path) -> None:
    from rhizome.proxy.follower import StoreFollower

    renew, routes_of = StoreFollower.renew, StoreFollower.routes_of

    def failing_renew(self: StoreFollower, *arguments: Any) -> bool:
        if (directory / "lease_error").exists():
            raise RuntimeError("injected fault in the lease thread")
        return renew(self, *arguments)

    def failing_routes_of(self: StoreFollower, *arguments: Any) -> Any:
        if (directory / "watch_error").exists():
            raise RuntimeError("injected fault in the watch thread")
        return routes_of(self, *arguments)

    StoreFollower.renew = failing_renew  # type: ignore[method-assign]
    StoreFollower.routes_of = failing_routes_of  # type: ignore[method-assign]
    threading.Thread(target=stall_when_asked, args=(directory,), daemon=True).start()


if __name__ == "__main__":
    install(Path(sys.argv.pop(1)))
    from rhizome.proxy.main import main

    sys.exit(main())
