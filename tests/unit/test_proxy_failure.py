"""An unexpected error in a part the proxy's safety depends on fences and ends it (P1 hole 4)."""

from __future__ import annotations

import asyncio
import threading

from rhizome.proxy import failure as failure_module
from rhizome.proxy.failure import EXIT_SAFETY_FAILURE, SafetyFailure


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.exits: list[int] = []

    def make(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> SafetyFailure:
        failure = SafetyFailure(
            loop,
            stop_forwarding=lambda: self.events.append("stop forwarding"),
            halt=lambda: self.events.append("halt"),
            stop=stop,
        )
        failure.exit_process = self.exits.append
        return failure


def broken() -> None:
    raise RuntimeError("a bug")


def test_a_thread_that_dies_stops_forwarding_at_once_then_the_loop_fences_and_exits_non_zero():
    recorder = Recorder()

    async def scenario() -> SafetyFailure:
        stop = asyncio.Event()
        failure = recorder.make(asyncio.get_running_loop(), stop)
        thread = threading.Thread(target=failure.thread_target("proxy-lease", broken))
        thread.start()
        await asyncio.wait_for(stop.wait(), 5)
        await asyncio.get_running_loop().run_in_executor(None, thread.join, 5)
        return failure

    failure = asyncio.run(scenario())
    assert recorder.events[:2] == ["stop forwarding", "stop forwarding"]
    assert recorder.events[2:] == ["halt"]
    assert failure.exit_code == EXIT_SAFETY_FAILURE and recorder.exits == []


def test_a_dying_thread_exits_the_process_itself_when_the_loop_does_not_stop(monkeypatch):
    monkeypatch.setattr(failure_module, "LOOP_STOP_LIMIT", 0.1)
    recorder = Recorder()
    loop = asyncio.new_event_loop()  # never run: a wedged loop
    try:
        failure = recorder.make(loop, asyncio.Event())
        failure.thread_target("proxy-watch", broken)()
    finally:
        loop.close()
    assert recorder.events == ["stop forwarding"]
    assert recorder.exits == [EXIT_SAFETY_FAILURE]


def test_an_error_in_a_guarded_loop_callback_fences_and_exits_non_zero():
    recorder = Recorder()

    async def scenario() -> SafetyFailure:
        stop = asyncio.Event()
        failure = recorder.make(asyncio.get_running_loop(), stop)
        asyncio.get_running_loop().call_soon(failure.guarded("a store report", broken))
        await asyncio.wait_for(stop.wait(), 5)
        return failure

    failure = asyncio.run(scenario())
    assert recorder.events == ["stop forwarding", "halt"]
    assert failure.exit_code == EXIT_SAFETY_FAILURE
