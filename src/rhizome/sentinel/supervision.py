"""The sentinel never dies silently (DESIGN §3.7).

An unexpected exception in the run loop, or in any thread of the process
(the store watch, say), is logged with its traceback and ends the process
with a non-zero exit status, so that systemd restarts it. A half-alive
sentinel would be worse than a dead one: it could keep its leadership
(the run loop renews the lease) while deciding on a view that no longer
changes. The sentinel has no PostgreSQL to fence: ending the process
revokes its lease, which hands leadership over at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_FAILURE = 1


class ThreadFailure(RuntimeError):
    """A thread of the process ended by an unexpected exception."""


class ThreadWatch:
    """Notices threads ended by an exception, through threading.excepthook."""

    def __init__(self) -> None:
        self._failure: str | None = None
        self._lock = threading.Lock()
        self._previous_hook: Callable[[threading.ExceptHookArgs], object] | None = None

    def install(self) -> ThreadWatch:
        self._previous_hook = threading.excepthook
        threading.excepthook = self.record
        return self

    def uninstall(self) -> None:
        if self._previous_hook is not None:
            threading.excepthook = self._previous_hook
            self._previous_hook = None

    def record(self, arguments: threading.ExceptHookArgs) -> None:
        """threading.excepthook: log the traceback and remember the first failure."""
        name = arguments.thread.name if arguments.thread is not None else "unknown"
        error = arguments.exc_value or arguments.exc_type()
        log.critical("thread %s ended by an unexpected error", name, exc_info=error)
        with self._lock:
            if self._failure is None:
                self._failure = f"thread {name} ended by {arguments.exc_type.__name__}"
                if arguments.exc_value is not None and str(arguments.exc_value):
                    self._failure += f": {arguments.exc_value}"

    def check(self) -> None:
        """Raise ThreadFailure once any thread ended by an exception."""
        with self._lock:
            failure = self._failure
        if failure is not None:
            raise ThreadFailure(failure)


def run_supervised(run: Callable[[], None]) -> int:
    """Run `run`; an exception is logged with its traceback and gives EXIT_FAILURE."""
    try:
        run()
    except Exception:
        log.critical(
            "the sentinel stops on an unexpected error; exit status %d", EXIT_FAILURE, exc_info=True
        )
        return EXIT_FAILURE
    return 0
