"""Agents never die silently (DESIGN §3.7).

An unexpected error in any thread of an agent ends the whole process, after
the agent's `last_words` made it safe (a keeper fences its PostgreSQL), with
exit code EXIT_THREAD_DIED so that systemd restarts it. A half-alive agent
(its lease or fencing thread gone, its other threads still running) is what
this prevents. The error is logged after the last words, from a helper
thread given LOG_LIMIT seconds, so a blocked log sink cannot delay the fence
nor keep the process alive.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_THREAD_DIED = 70
LOG_LIMIT = 1.0


def die_on_thread_errors(last_words: Callable[[], None]) -> None:
    """Install a threading.excepthook that runs `last_words`, logs and ends the process."""

    def hook(arguments: threading.ExceptHookArgs) -> None:
        if arguments.exc_type is SystemExit:
            return
        thread = arguments.thread.name if arguments.thread is not None else "?"
        die(f"thread {thread} ended on an unexpected error", arguments.exc_value, last_words)

    threading.excepthook = hook


def die(message: str, error: BaseException | None, last_words: Callable[[], None]) -> None:
    """Make the agent safe, say why (bounded), and end the process at once."""
    try:
        last_words()
    finally:
        reporter = threading.Thread(
            target=lambda: log.critical("%s; exiting", message, exc_info=error),
            name="last-words",
            daemon=True,
        )
        reporter.start()
        reporter.join(LOG_LIMIT)
        os._exit(EXIT_THREAD_DIED)
