"""The dispatcher: where each new client goes, and what a route change closes.

It runs on the event loop and owns every session. A new client is forwarded
to the current target of its port or, when there is none, held until one is
published or the hold timeout refuses it. `apply(routes)` first closes every
session whose backend the new routes no longer permit, and only then records
the proxy generation as applied: the store follower acknowledges nothing
earlier. Routes that hold new read-write clients before a planned switchover
are applied once the read-write logins under way have finished (or after
LOGIN_DRAIN_LIMIT), so that the switchover cuts no client in its login.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from rhizome import clock
from rhizome.proxy.config import ProxyConfig
from rhizome.proxy.forwarder import Session, SessionState, set_keepalive
from rhizome.proxy.metrics import PortCounters
from rhizome.proxy.pipes import WaitingProtocol
from rhizome.proxy.refusal import Refusal
from rhizome.proxy.routing import Backend, Routes, choose_backend
from rhizome.proxy.wire import (
    SQLSTATE_CANNOT_CONNECT_NOW,
    SQLSTATE_CONNECTION_FAILURE,
    SQLSTATE_REFUSED_LOGIN,
    SQLSTATE_TOO_MANY_CONNECTIONS,
    PacketKind,
)

log = logging.getLogger(__name__)

CONNECT_RETRY_DELAY = 0.2
"""Seconds before a held client whose connection attempt failed tries again."""
REFUSAL_LIMIT = 1000
"""Clients being answered with an error at once; more are simply closed."""
LOGIN_DRAIN_LIMIT = 1.0
"""Seconds a switchover waits at most for read-write logins under way (at most
half of proxy_hold_timeout); a login still running then is cut by the switchover."""
PLAIN_TEXT_REFUSED = (
    "rhizome-proxy: this proxy requires TLS ([proxy] require_tls = true):"
    " connect with sslmode=require or verify-full"
)


class Port:
    """The sessions of one listening port (read-write or read-only)."""

    def __init__(self, read_only: bool) -> None:
        self.read_only = read_only
        self.by_backend: dict[Backend, set[Session]] = {}
        """Sessions connecting or forwarding, by backend."""
        self.held: dict[Session, None] = {}
        """Held sessions, oldest first."""
        self.turn = 0
        self.counters = PortCounters()

    def active_by_backend(self) -> dict[Backend, int]:
        return {backend: len(sessions) for backend, sessions in self.by_backend.items()}

    def sessions(self) -> list[Session]:
        every = list(self.held)
        for sessions in self.by_backend.values():
            every.extend(sessions)
        return every


class Dispatcher:
    """Routes sessions by the routes in force; see the module documentation."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.routes = Routes().nowhere()
        self.applied_generation = 0
        self.acknowledgement: tuple[str, int] = ("", 0)
        """(cluster, proxy generation) in force, replaced in one store: the store threads
        read it, and a generation means nothing without its cluster (a successor's
        generations are unrelated numbers)."""
        self.forward_until = 0.0
        """Monotonic time after which nothing may be forwarded (lease close deadline)."""
        self.ports = {False: Port(False), True: Port(True)}
        self.refusals: set[Refusal] = set()
        self.active = 0
        self.accepting = True
        self.drain_timer: asyncio.TimerHandle | None = None
        """Set while routes that hold new read-write clients wait for logins to finish."""
        self.drain_until: tuple[tuple[str, int], float] = (("", -1), 0.0)
        """((cluster, proxy generation), monotonic time) by which its drain ends."""
        self.acknowledged: Callable[[], None] = lambda: None
        """Called when a generation is applied later than `apply` (after a drain)."""
        self.overdue: Callable[[], None] = lambda: None
        """Called when the data path finds the close deadline passed (the fence acts at once)."""

    # -- new clients ---------------------------------------------------------

    def admit(self, client: asyncio.Transport, read_only: bool) -> None:
        """A client was accepted on a port."""
        port = self.ports[read_only]
        port.counters.accepted += 1
        if not self.accepting:
            client.abort()
            return
        session = Session(self, client, read_only, self.config.keepalive)
        client.set_protocol(WaitingProtocol(session))
        self.active += 1
        port.held[session] = None  # counted until dispatched
        if self.active > self.config.max_connections:
            message = (
                f"rhizome-proxy: too many connections (max_connections"
                f" {self.config.max_connections})"
            )
            self.refuse(session, "limit", message, SQLSTATE_TOO_MANY_CONNECTIONS)
            return
        set_keepalive(client, self.config.keepalive)
        self.dispatch(session)

    def stop_forwarding(self) -> None:
        """From now on nothing reaches a server; callable from any thread (one attribute store)."""
        self.forward_until = 0.0

    def may_forward(self) -> bool:
        return clock.monotonic() < self.forward_until

    def dispatch(self, session: Session) -> None:
        """Connect the session to its port's target, or hold it."""
        port = self.ports[session.read_only]
        port.held.pop(session, None)
        if self.config.require_tls and not session.tls_asked:
            self.hold(session)  # until its first packet shows it asks for TLS
            return
        backend = self.pick(port) if self.may_forward() else None
        if backend is None:
            session.last_error = None  # no target at all: that is the reason now
            self.hold(session)
            return
        port.by_backend.setdefault(backend, set()).add(session)
        session.connect(backend, self.config.connect_timeout)

    def pick(self, port: Port) -> Backend | None:
        if not port.read_only:
            return None if self.routes.hold_new_read_write else self.routes.master
        port.turn += 1
        return choose_backend(self.routes.read_only_targets, port.active_by_backend(), port.turn)

    # -- holding and refusing ----------------------------------------------------

    def hold(self, session: Session) -> None:
        port = self.ports[session.read_only]
        session.state = SessionState.HELD
        port.held[session] = None
        if session.hold_timer is None:
            timeout = self.routes.timing.proxy_hold_timeout
            if not session.hold_deadline:
                session.hold_deadline = session.accepted_at + timeout
            delay = max(0.0, session.hold_deadline - clock.monotonic())
            loop = asyncio.get_running_loop()
            session.hold_timer = loop.call_later(delay, self.hold_expired, session)
        session.check_held_input()

    def hold_expired(self, session: Session) -> None:
        session.hold_timer = None
        if session.state is not SessionState.HELD:
            return  # connecting: the attempt decides
        waited = f"after {clock.monotonic() - session.accepted_at:.0f} s"
        if session.last_error is not None:
            message = f"rhizome-proxy: cannot connect to {session.last_error} ({waited})"
            self.refuse(session, "connect_failed", message, SQLSTATE_CONNECTION_FAILURE)
        elif session.read_only:
            message = f"rhizome-proxy: no standby available for read-only connections {waited}"
            self.refuse(session, "hold_timeout", message, SQLSTATE_CANNOT_CONNECT_NOW)
        else:
            message = f"rhizome-proxy: no master available (failover in progress) {waited}"
            self.refuse(session, "hold_timeout", message, SQLSTATE_CANNOT_CONNECT_NOW)

    def refuse(self, session: Session, reason: str, message: str, sqlstate: str) -> None:
        """Answer the client with an error instead of serving it."""
        self.ports[session.read_only].counters.refused[reason] += 1
        log.info("refusing a client: %s", message)
        buffered = session.first_bytes()
        session.detach()
        if len(self.refusals) >= REFUSAL_LIMIT:
            session.client.abort()
            return
        refusal = Refusal(session.client, message, sqlstate, self.refusals.discard)
        self.refusals.add(refusal)
        refusal.start(buffered)

    def first_packet(self, session: Session, kind: PacketKind) -> None:
        """A held client's first packet: no PostgreSQL client's is dropped at once, and
        under require_tls a startup in plain text is refused."""
        if kind is PacketKind.INVALID:
            self.ports[session.read_only].counters.invalid_clients += 1
            session.abort()
        elif self.config.require_tls and not session.tls_asked:
            if kind is PacketKind.STARTUP:
                self.refuse(session, "tls_required", PLAIN_TEXT_REFUSED, SQLSTATE_REFUSED_LOGIN)
            else:  # TLS or GSS encryption asked (a cancel request is never encrypted)
                session.tls_asked = True
                self.dispatch(session)

    # -- callbacks from sessions ----------------------------------------------------

    def permits(self, session: Session, backend: Backend) -> bool:
        return self.may_forward() and self.routes.permits(session.read_only, backend)

    def deadline_passed(self, session: Session) -> None:
        """A client sent data for its server after the close deadline: nothing is written."""
        log.warning("client data after the close deadline: closing its connection unforwarded")
        session.abort()
        self.overdue()

    def connect_failed(self, session: Session, error: str) -> None:
        port = self.ports[session.read_only]
        port.counters.connect_errors += 1
        log.warning("cannot connect to %s", error)
        self.forget_backend(port, session)
        session.backend = None
        session.last_error = error
        self.hold(session)
        if self.drain_timer is not None:
            self.check_drained()  # it was a login under way
        if session.state is SessionState.HELD:
            loop = asyncio.get_running_loop()
            loop.call_later(CONNECT_RETRY_DELAY, self.retry, session)

    def retry(self, session: Session) -> None:
        if session.state is SessionState.HELD and self.accepting:
            self.dispatch(session)

    def forwarding(self, session: Session) -> None:
        self.ports[session.read_only].counters.forwarded += 1

    def login_finished(self, session: Session) -> None:
        if self.drain_timer is not None:
            self.check_drained()

    def closed(self, session: Session) -> None:
        port = self.ports[session.read_only]
        port.held.pop(session, None)
        self.forget_backend(port, session)
        from_client, to_client = session.bytes_forwarded()
        port.counters.bytes_from_clients += from_client
        port.counters.bytes_from_servers += to_client
        self.active -= 1
        if self.drain_timer is not None:
            self.check_drained()

    @staticmethod
    def forget_backend(port: Port, session: Session) -> None:
        if session.backend is None:
            return
        sessions = port.by_backend.get(session.backend)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del port.by_backend[session.backend]

    # -- route changes ----------------------------------------------------------------

    def apply(self, routes: Routes) -> None:
        """Put `routes` in force: close what they forbid, then serve held clients."""
        self.stop_draining()  # nothing closed below may acknowledge these routes early
        self.routes = routes
        to_dispatch: list[Session] = []
        for port in self.ports.values():
            for backend in list(port.by_backend):
                if not routes.permits(port.read_only, backend):
                    to_dispatch += self.close_backend(port, backend)
        if routes.hold_new_read_write and self.logins_in_flight():
            self.start_draining(routes)
        else:
            self.record_applied(routes)
        for port in self.ports.values():
            to_dispatch += list(port.held)
        for session in to_dispatch:
            if session.state is SessionState.HELD:
                self.dispatch(session)

    def record_applied(self, routes: Routes) -> None:
        self.applied_generation = routes.proxy_generation
        self.acknowledgement = (routes.cluster, routes.proxy_generation)

    def logins_in_flight(self) -> bool:
        """Whether a read-write session is connecting or has not finished its login."""
        sessions = self.ports[False].by_backend.values()
        return any(session.logging_in for group in sessions for session in group)

    def start_draining(self, routes: Routes) -> None:
        """Acknowledge once the logins under way end, by the drain limit of this generation."""
        generation = (routes.cluster, routes.proxy_generation)
        if self.drain_until[0] != generation:  # not restarted by a re-apply
            limit = min(LOGIN_DRAIN_LIMIT, routes.timing.proxy_hold_timeout / 2)
            self.drain_until = (generation, clock.monotonic() + limit)
        delay = max(0.0, self.drain_until[1] - clock.monotonic())
        self.drain_timer = asyncio.get_running_loop().call_later(delay, self.drained)

    def check_drained(self) -> None:
        if not self.logins_in_flight():
            self.drained()

    def drained(self) -> None:
        """The logins under way finished (or the drain limit passed): acknowledge."""
        self.stop_draining()
        self.record_applied(self.routes)
        self.acknowledged()

    def stop_draining(self) -> None:
        if self.drain_timer is not None:
            self.drain_timer.cancel()
            self.drain_timer = None

    def close_backend(self, port: Port, backend: Backend) -> list[Session]:
        """Close every forwarded session to `backend`; return those still connecting."""
        connecting = []
        closed = 0
        for session in list(port.by_backend.get(backend, ())):
            if session.state is SessionState.FORWARDING:
                session.abort()
                closed += 1
            else:
                self.forget_backend(port, session)
                session.cancel_connect()
                connecting.append(session)
        port.by_backend.pop(backend, None)
        port.counters.closed_by_retarget += closed
        if closed:
            log.info("closed %d %s connections to %s", closed, port_name(port), backend)
        return connecting

    def shutdown(self) -> None:
        """Stop accepting and close every connection at once."""
        self.accepting = False
        self.stop_draining()
        for port in self.ports.values():
            for session in port.sessions():
                session.abort()
        for refusal in list(self.refusals):
            refusal.abort()


def port_name(port: Port) -> str:
    return "read-only" if port.read_only else "read-write"


class Arrival(asyncio.Protocol):
    """The protocol of a client just accepted: hands it to the dispatcher."""

    __slots__ = ("dispatcher", "read_only")

    def __init__(self, dispatcher: Dispatcher, read_only: bool) -> None:
        self.dispatcher = dispatcher
        self.read_only = read_only

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.dispatcher.admit(cast(asyncio.Transport, transport), self.read_only)
