"""The data path toward a server respects the close deadline, whatever runs first (P1 hole 2)."""

from __future__ import annotations

from typing import Any

import pytest

from rhizome import clock
from rhizome.proxy import pipes
from rhizome.proxy.config import ListenAddress, ProxyConfig
from rhizome.proxy.dispatcher import Dispatcher
from rhizome.proxy.forwarder import Session, SessionState
from rhizome.proxy.pipes import ClientPipe, ServerPipe
from rhizome.proxy.routing import Backend, Routes

PG1 = Backend("pg1", "127.0.0.1", 5432)


class FakeTransport:
    """The little of an asyncio transport a session uses, recording what is done to it."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.eof_written = False
        self.aborted = False
        self.closed = False
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        assert not (self.aborted or self.closed), "write to a closed transport"
        self.written.append(data)

    def write_eof(self) -> None:
        self.eof_written = True

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.aborted or self.closed

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Scene:
    """A dispatcher routing to pg1 and one client session connecting there."""

    def __init__(self) -> None:
        config = ProxyConfig(id="p", read_write_listen=ListenAddress("127.0.0.1", 1))
        self.dispatcher = Dispatcher(config)
        self.dispatcher.routes = Routes(proxy_generation=1, master=PG1)
        self.dispatcher.forward_until = clock.monotonic() + 60
        self.overdue: list[int] = []
        self.dispatcher.overdue = lambda: self.overdue.append(1)
        self.client, self.server = FakeTransport(), FakeTransport()
        self.session = Session(self.dispatcher, self.client, False, config.keepalive)  # type: ignore[arg-type]
        self.dispatcher.active = 1
        self.dispatcher.ports[False].by_backend[PG1] = {self.session}
        self.session.state = SessionState.CONNECTING
        self.session.backend = PG1
        self.attempt = ServerPipe(self.session, self.client)  # type: ignore[arg-type]
        self.session.pending_pipe = self.attempt

    def connect(self) -> None:
        self.attempt.connection_made(self.server)  # type: ignore[arg-type]

    def pass_deadline(self) -> None:
        self.dispatcher.forward_until = clock.monotonic() - 0.001


def test_client_data_reaches_the_server_before_the_deadline_and_never_after():
    scene = Scene()
    scene.session.buffer_client_data(b"startup")
    scene.connect()
    client_pipe = scene.client.protocol
    assert isinstance(client_pipe, ClientPipe) and scene.server.written == [b"startup"]
    client_pipe.data_received(b"SELECT 1")
    assert scene.server.written == [b"startup", b"SELECT 1"]
    scene.pass_deadline()
    client_pipe.data_received(b"INSERT")
    assert scene.server.written == [b"startup", b"SELECT 1"], "a chunk after the deadline"
    assert scene.session.state is SessionState.CLOSED
    assert scene.server.aborted and scene.client.aborted
    assert scene.overdue == [1], "the fence acts at once instead of waiting for its timer"
    assert scene.dispatcher.active == 0 and not scene.dispatcher.ports[False].by_backend


def test_the_deadline_is_read_on_each_chunk_not_when_the_pipe_was_made(monkeypatch):
    scene = Scene()
    scene.connect()
    now = clock.monotonic()
    monkeypatch.setattr(pipes, "monotonic", lambda: now + 3600)  # a freeze, seen by the clock
    scene.client.protocol.data_received(b"INSERT")
    assert scene.server.written == [] and scene.session.state is SessionState.CLOSED


def test_a_half_close_after_the_deadline_is_not_passed_on():
    scene = Scene()
    scene.connect()
    scene.pass_deadline()
    assert scene.client.protocol.eof_received() is False
    assert not scene.server.eof_written and scene.server.aborted and scene.overdue


@pytest.mark.parametrize("late", ["deadline", "routes"])
def test_a_connection_completed_after_the_deadline_or_a_retarget_is_never_used(late):
    scene = Scene()
    scene.session.buffer_client_data(b"startup")
    if late == "deadline":
        scene.pass_deadline()
    else:
        scene.dispatcher.routes = Routes(proxy_generation=2, master=None)
    scene.connect()
    assert scene.server.aborted and scene.server.written == []
    assert scene.session.state is SessionState.CONNECTING
