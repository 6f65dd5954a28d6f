"""Support for the proxy's integration tests (no tests here).

`ProxyProcess` runs the real `rhizome-proxy` program against a real etcd;
`StandInSentinel` writes what a sentinel would (spec, state, keeper
documents), so the tests can route the proxy without a sentinel.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2

from rhizome.config import open_client
from rhizome.etcd import EtcdSettings
from rhizome.spec import ClusterSpec, TimingSettings
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import (
    ClusterState,
    KeeperAssignment,
    KeeperInfo,
    ProxyTarget,
)
from rhizome.store.state import DRAINING_PHASE, Operation
from tests.harness.agents import etcd_section
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.postgres import PostgresInstance
from tests.harness.processes import ServerProcess

CLUSTER = "main"
FAST_TIMING = TimingSettings(
    renew_interval=0.5, proxy_lease_ttl=3.0, proxy_close_deadline=2.0, proxy_hold_timeout=15.0
)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll until `condition()` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class ProxyProcess:
    """One rhizome-proxy process on loopback ports."""

    def __init__(
        self, directory: Path, etcd_url: str, etcd_api: str = "v3", **settings: Any
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.id = settings.pop("id", "proxy1")
        self.port = free_port()
        self.read_only_port = free_port() if settings.pop("read_only", False) else None
        self.http_port = free_port()
        self.config_path = directory / f"{self.id}.toml"
        self.config_path.write_text(self.render(etcd_url, etcd_api, settings))
        self.process = ServerProcess(
            [sys.executable, "-m", "rhizome.proxy.main", "-c", str(self.config_path)],
            directory / f"{self.id}.log",
        )

    def render(self, etcd_url: str, etcd_api: str, settings: dict[str, Any]) -> str:
        lines = [
            f'cluster = "{CLUSTER}"',
            etcd_section([etcd_url], etcd_api),
            "[proxy]",
            f'id = "{self.id}"',
            f'read_write_listen = "{LOOPBACK}:{self.port}"',
        ]
        if self.read_only_port is not None:
            lines.append(f'read_only_listen = "{LOOPBACK}:{self.read_only_port}"')
        lines += [f"{name} = {json.dumps(value)}" for name, value in settings.items()]
        lines += ["[api]", f'listen = "{LOOPBACK}:{self.http_port}"']
        return "\n".join(lines) + "\n"

    def start(self, wait_healthy: bool = True) -> ProxyProcess:
        self.process.start()
        self.process.wait_ready(self.listening, 20, f"rhizome-proxy {self.id}")
        if wait_healthy:
            wait_for(lambda: self.health()[0] == 200, 20, "the proxy to become healthy")
        return self

    def listening(self) -> bool:
        try:
            socket.create_connection((LOOPBACK, self.http_port), timeout=0.5).close()
        except OSError:
            return False
        return True

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = http_get(f"http://{LOOPBACK}:{self.http_port}/health")
        return status, json.loads(body)

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics: 'name{labels}' -> value."""
        _, body = http_get(f"http://{LOOPBACK}:{self.http_port}/metrics")
        samples = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples

    def metric(self, name: str) -> float:
        return self.metrics().get(name, 0.0)

    def dsn(self, read_only: bool = False, **options: Any) -> str:
        port = self.read_only_port if read_only else self.port
        text = f"host={LOOPBACK} port={port} user=postgres dbname=postgres connect_timeout=20"
        return " ".join([text, *(f"{key}={value}" for key, value in options.items())])

    def connect(self, read_only: bool = False, **options: Any) -> Any:
        return psycopg2.connect(self.dsn(read_only, **options))

    def stop(self) -> None:
        self.process.stop(signal.SIGTERM, timeout=10)

    def log_tail(self) -> str:
        return self.process.log_tail()


def server_port(connection: Any) -> int:
    """The port of the PostgreSQL server at the end of `connection`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_server_port()")
        return int(cursor.fetchone()[0])


def port_through(proxy: ProxyProcess, read_only: bool = False) -> int:
    connection = proxy.connect(read_only)
    try:
        return server_port(connection)
    finally:
        connection.close()


class StandInSentinel:
    """Writes spec, state and keeper documents the way the sentinel and keepers would."""

    def __init__(
        self, etcd_url: str, timing: TimingSettings = FAST_TIMING, etcd_api: str = "v3"
    ) -> None:
        self.client = open_client(EtcdSettings(endpoints=(etcd_url,)), etcd_api)
        self.store = ClusterStore(self.client, CLUSTER)
        self.lease = self.client.grant_lease(60)
        self.members: dict[str, PostgresInstance | tuple[str, int]] = {}
        spec = ClusterSpec(timing=timing)
        assert self.store.write_spec(spec, 0) is not None

    def update_spec(self, **changes: Any) -> None:
        stored = self.store.read_spec()
        assert stored is not None
        spec = stored.document.with_changes(**changes)
        assert self.store.write_spec(spec, stored.mod_revision) is not None

    def address(self, name: str) -> tuple[str, int]:
        member = self.members[name]
        return (LOOPBACK, member.port) if isinstance(member, PostgresInstance) else member

    def route_to(self, master: str | None) -> int:
        """Write the next state: `master` (or nobody) is master and the proxy target."""
        stored = self.store.read_state()
        previous = stored.document if stored is not None else ClusterState()
        names = sorted(self.members)
        if master is None:
            anchor = previous.master or names[0]
            assignments = {
                name: KeeperAssignment(role="fenced")
                if name == anchor
                else KeeperAssignment(role="standby", follow=anchor)
                for name in names
            }
            target = previous.proxy_target.retargeted(None)
        else:
            host, port = self.address(master)
            assignments = {
                name: KeeperAssignment(role="master")
                if name == master
                else KeeperAssignment(role="standby", follow=master)
                for name in names
            }
            target = previous.proxy_target.retargeted(master, host, port)
        state = previous.with_next_generation(
            initialized=True,
            master=master,
            assignments=assignments,
            proxy_target=target,
            operation=None,
        )
        written = self.store.write_state(state, stored.mod_revision if stored else 0)
        assert written is not None, "state changed under the test"
        return target.proxy_generation

    def hold_new_clients(self) -> int:
        """Write a switchover's first phase: the same target, a new generation, draining."""
        stored = self.store.read_state()
        assert stored is not None
        previous = stored.document
        now = time.time()
        operation = Operation(
            kind="switchover",
            phase=DRAINING_PHASE,
            previous_master=previous.master,
            started_at=now,
            phase_started_at=now,
        )
        current = previous.proxy_target
        target = current.retargeted(current.master, current.host, current.port)
        state = previous.with_next_generation(operation=operation, proxy_target=target)
        assert self.store.write_state(state, stored.mod_revision) is not None
        return target.proxy_generation

    def publish_keeper(self, name: str, **observations: Any) -> None:
        host, port = self.address(name)
        values: dict[str, Any] = {
            "running": True,
            "healthy": True,
            "role": "standby",
            "lag_bytes": 0,
        }
        values.update(observations)
        info = KeeperInfo(name=name, host=host, port=port, observed_at=time.time(), **values)
        self.store.publish_keeper(info, self.lease.id)

    def acknowledged(self, proxy_id: str = "proxy1") -> int | None:
        proxies = self.store.read_view().proxies
        stored = proxies.get(proxy_id)
        return None if stored is None else stored.document.acknowledged_proxy_generation

    def proxy_target(self) -> ProxyTarget:
        stored = self.store.read_state()
        assert stored is not None
        return stored.document.proxy_target

    def close(self) -> None:
        self.client.revoke_lease(self.lease.id)
        self.client.close()


class TcpRelay:
    """A TCP relay to `target` on loopback that a test can cut, like a network partition."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.listener = socket.create_server((LOOPBACK, self.port))
        self.listener.settimeout(0.1)
        self.is_cut = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.accepter = threading.Thread(target=self.accept_loop, daemon=True)
        self.accepter.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.setblocking(True)
            if self.is_cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets |= {client, upstream}
            for source, destination in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(source, destination), daemon=True).start()

    def pump(self, source: socket.socket, destination: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.before_forwarding(source)
                destination.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, destination):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def before_forwarding(self, source: socket.socket) -> None:
        """Called with the socket a chunk came from, before it is passed on."""

    def cut(self) -> None:
        """Refuse new connections and break every open one."""
        self.is_cut.set()
        with self.lock:
            for end in self.sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.is_cut.clear()

    def close(self) -> None:
        self.stopping.set()
        self.cut()
        self.listener.close()
        self.accepter.join(timeout=2)
