"""Ending the proxy when something its safety depends on fails (DESIGN §3.7).

The store threads (watch, lease) and the event loop callbacks they post (and
the deadline timer) keep the proxy's routes and close deadline true. An
unexpected error in any of them must not leave a half-alive proxy that keeps
forwarding by stale routes, or holds clients forever while systemd sees it
running: it stops forwarding at once, closes every connection (routes
nowhere), and ends the process with `EXIT_SAFETY_FAILURE` so that systemd
restarts it. If the event loop itself does not stop in time, the failing
thread ends the process directly (the kernel then closes every socket).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

EXIT_SAFETY_FAILURE = 70
"""Exit code after an unexpected error in a part the proxy's safety depends on (EX_SOFTWARE)."""
LOOP_STOP_LIMIT = 5.0
"""Seconds a dying thread gives the event loop to close everything before it exits the process."""


class SafetyFailure:
    """Turns an unexpected error in a safety-relevant part into a fenced, non-zero exit."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stop_forwarding: Callable[[], None],
        halt: Callable[[], None],
        stop: asyncio.Event,
    ) -> None:
        self.loop = loop
        self.stop_forwarding = stop_forwarding
        """Thread-safe: makes the data path refuse every chunk from now on."""
        self.halt = halt
        """On the loop: routes nowhere, closes every connection, accepts none."""
        self.stop = stop
        self.exit_code = 0
        self.stopped = threading.Event()
        """Set once the loop handled the failure (or the proxy stops normally)."""
        self.exit_process: Callable[[int], None] = os._exit

    def fail(self, what: str) -> None:
        """On the loop: fence everything and end the process with a non-zero code."""
        if self.exit_code == 0:
            log.critical("%s failed: closing every connection and exiting", what)
        self.exit_code = EXIT_SAFETY_FAILURE
        self.stop_forwarding()
        try:
            self.halt()
        finally:
            self.stopped.set()
            self.stop.set()

    def guarded(self, what: str, callback: Callable[..., None]) -> Callable[..., None]:
        """`callback` for the loop: an unexpected error in it ends the proxy."""

        def run(*arguments: Any) -> None:
            try:
                callback(*arguments)
            except Exception:
                log.exception("unexpected error in %s", what)
                self.fail(what)

        return run

    def thread_target(self, name: str, body: Callable[[], None]) -> Callable[[], None]:
        """A thread's target: if `body` raises, the proxy fences and ends."""

        def run() -> None:
            try:
                body()
            except BaseException:
                log.exception("the %s thread died", name)
                self.thread_died(name)

        return run

    def thread_died(self, name: str) -> None:
        """From the dying thread: stop forwarding now, let the loop close the rest."""
        self.stop_forwarding()
        try:
            self.loop.call_soon_threadsafe(self.fail, f"the {name} thread")
        except RuntimeError:  # the loop is closed: the process is ending anyway
            return
        if not self.stopped.wait(LOOP_STOP_LIMIT):
            log.critical("the event loop did not stop in %.0f s: exiting now", LOOP_STOP_LIMIT)
            self.exit_process(EXIT_SAFETY_FAILURE)
