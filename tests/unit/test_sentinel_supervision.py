"""The sentinel never dies silently: an unexpected error ends it, non-zero, with a traceback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest

from rhizome.sentinel.runner import Sentinel
from rhizome.sentinel.supervision import (
    EXIT_FAILURE,
    ThreadFailure,
    ThreadWatch,
    run_supervised,
)
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.keys import ClusterKeys


class WatchThreadKilled(BaseException):
    """Escapes the store watch's `except Exception` (as a bug in its handler would)."""


class DeadWatcher:
    def updates(self) -> Iterator[Any]:
        raise WatchThreadKilled("the watch thread is gone")
        yield  # a generator, like the real watcher

    def close(self) -> None:
        pass


class FakeStore:
    """Just enough of ClusterStore for a sentinel that never synchronizes."""

    def __init__(self) -> None:
        self.client = object()
        self.keys = ClusterKeys("main")

    def watcher(self, idle_timeout: float = 5.0) -> DeadWatcher:
        return DeadWatcher()


@pytest.fixture
def thread_watch() -> Iterator[ThreadWatch]:
    watch = ThreadWatch().install()
    try:
        yield watch
    finally:
        watch.uninstall()


def test_a_thread_ended_by_an_exception_is_logged_and_raised_in_the_loop(
    thread_watch: ThreadWatch, caplog: pytest.LogCaptureFixture
) -> None:
    thread_watch.check()  # nothing yet
    worker = threading.Thread(target=lambda: 1 / 0, name="worker")
    worker.start()
    worker.join()
    with pytest.raises(ThreadFailure, match="thread worker ended by ZeroDivisionError"):
        thread_watch.check()
    record = next(r for r in caplog.records if r.levelno == logging.CRITICAL)
    assert "worker" in record.getMessage() and record.exc_info is not None


def test_an_unexpected_error_gives_a_non_zero_exit_and_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def failing() -> None:
        raise KeyError("surprise")

    assert run_supervised(failing) == EXIT_FAILURE
    record = next(r for r in caplog.records if r.levelno == logging.CRITICAL)
    assert record.exc_info is not None and record.exc_info[0] is KeyError
    assert run_supervised(lambda: None) == 0


def test_the_sentinel_ends_when_its_store_watch_thread_dies(thread_watch: ThreadWatch) -> None:
    sentinel = Sentinel(cast(ClusterStore, FakeStore()), "s1", thread_watch=thread_watch)
    stop = threading.Event()
    safety = threading.Timer(3.0, stop.set)  # without the watch, run() would go on until stopped
    safety.start()
    try:
        status = run_supervised(lambda: sentinel.run(stop))
    finally:
        safety.cancel()
    assert status == EXIT_FAILURE
    assert not stop.is_set(), "the sentinel ran on, half alive, until it was stopped"


def test_main_exits_non_zero_when_the_run_loop_raises(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rhizome.sentinel import main as sentinel_main

    class BrokenSentinel:
        def __init__(self, *arguments: Any, **keywords: Any) -> None:
            pass

        def run(self, stop: threading.Event) -> None:
            raise RuntimeError("a bug in the run loop")

    config = tmp_path / "sentinel.toml"
    config.write_text(
        'cluster = "main"\n[etcd]\nendpoints = ["http://127.0.0.1:9"]\n[api]\nlisten = "off"\n'
    )
    monkeypatch.setattr(sentinel_main, "Sentinel", BrokenSentinel)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # main installs its own
    monkeypatch.setattr(sentinel_main.signal, "signal", lambda *arguments: None)
    assert sentinel_main.main(["--config", str(config)]) == EXIT_FAILURE
