"""A whole rhizome cluster on loopback: etcd, keepers (as postgres) and sentinels.

Used by the failover tests and by bench/failover.py. Clients write to the
master published in `state.proxy_target`, as a proxy would route them.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg2
import psycopg2.extensions

from rhizome.config import open_client
from rhizome.etcd import EtcdError, EtcdSettings
from rhizome.spec import parse_spec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import ClusterState
from tests.harness.agents import SentinelProcess
from tests.harness.etcd import EtcdServer
from tests.harness.keeper import KeeperProcess

Result = TypeVar("Result")


def wait_for(condition: Callable[[], Result | None], timeout: float, what: str) -> Result:
    """Poll until `condition()` is truthy; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class LocalCluster:
    """etcd + N keepers + sentinels, all real processes."""

    def __init__(
        self,
        directory: Path,
        etcd: EtcdServer,
        keeper_count: int = 3,
        sentinel_count: int = 1,
        spec: dict[str, Any] | None = None,
        cluster: str = "main",
        etcd_api: str = "v3",
        etcd_urls: list[str] | None = None,
    ) -> None:
        """`etcd_urls`: every member's client URL, for the agents (default: `etcd`'s only)."""
        self.directory = directory
        self.etcd = etcd
        self.etcd_urls = etcd_urls or [etcd.client_url]
        self.spec = parse_spec(spec or {})
        settings = EtcdSettings(endpoints=tuple(self.etcd_urls), request_timeout=1.0)
        self.store = ClusterStore(open_client(settings, etcd_api), cluster)
        password = "test-superuser-password"
        self.keepers = {
            f"pg{index}": KeeperProcess(
                f"pg{index}",
                self.etcd_urls,
                directory / "keepers",
                cluster=cluster,
                superuser_password=password,
                log_level="info",
                etcd_api=etcd_api,
            )
            for index in range(1, keeper_count + 1)
        }
        self.sentinels = [
            SentinelProcess(
                directory / "sentinels", f"sentinel{index}", self.etcd_urls, cluster, etcd_api
            )
            for index in range(sentinel_count)
        ]

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> str:
        """Start everything; returns the master once every standby streams."""
        assert self.store.write_spec(self.spec, 0) is not None, "a spec already exists"
        for sentinel in self.sentinels:
            sentinel.start()
        for keeper in self.keepers.values():
            keeper.start()
        master = self.wait_for_master(timeout)
        self.wait_for_streaming(len(self.keepers) - 1, timeout)
        return master

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for keeper in self.keepers.values():
            keeper.cleanup()

    def diagnostics(self) -> str:
        """Log tails of every agent, for a failing test's message."""
        parts = [f"--- {name} ---\n{keeper.log_tail(40)}" for name, keeper in self.keepers.items()]
        parts += [f"--- {s.sentinel_id} ---\n{s.log_text()[-4000:]}" for s in self.sentinels]
        return "\n".join(parts)

    # -- observing -------------------------------------------------------------

    def state(self) -> ClusterState | None:
        try:
            stored = self.store.read_state()
        except EtcdError:
            return None
        return stored.document if stored else None

    def routed_master(self) -> str | None:
        """The keeper proxies are routed to, once it reports a running primary."""
        state = self.state()
        if state is None or state.proxy_target.master is None:
            return None
        name = state.proxy_target.master
        info = self.store.read_view().keepers.get(name)
        if info is None or info.document.role != "primary" or not info.document.running:
            return None
        return name

    def wait_for_master(self, timeout: float, other_than: str | None = None) -> str:
        def routed() -> str | None:
            master = self.routed_master()
            return master if master != other_than else None

        return wait_for(routed, timeout, f"a routed master other than {other_than}")

    def wait_for_streaming(self, count: int, timeout: float) -> None:
        """Until `count` standby keepers stream from the master.

        Only keeper names count: a running pg_basebackup streams WAL too.
        """

        def streaming() -> bool:
            master = self.routed_master()
            keepers = self.store.read_view().keepers
            if master is None or master not in keepers:
                return False
            names = set(keepers[master].document.streaming_standbys) & set(self.keepers)
            standbys = [
                name
                for name in names - {master}
                if name in keepers
                and keepers[name].document.role == "standby"
                and keepers[name].document.running
            ]
            return len(standbys) >= count

        wait_for(streaming, timeout, f"{count} streaming standbys")

    # -- writing ---------------------------------------------------------------

    def connect_to_master(self, connect_timeout: int = 2) -> Any:
        state = self.state()
        if state is None or state.proxy_target.master is None:
            raise psycopg2.OperationalError("no master published")
        keeper = self.keepers[state.proxy_target.master]
        return keeper.connect(connect_timeout=connect_timeout)

    def write(self, sql: str, parameters: tuple[Any, ...] = ()) -> None:
        connection = self.connect_to_master()
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(sql, parameters)
        finally:
            connection.close()


@dataclass
class Writer:
    """Writes numbered rows to the published master every `interval` from a thread.

    `acknowledged` holds the numbers whose commit returned; `successes` when and
    on which master each was acknowledged; `first_success_after` finds when
    writes resumed on another master after a fault.
    """

    cluster: LocalCluster
    interval: float = 0.01
    acknowledged: list[int] = field(default_factory=list)
    successes: list[tuple[float, str]] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Writer:
        self.cluster.write("CREATE TABLE IF NOT EXISTS writes (number integer PRIMARY KEY)")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def first_success_after(self, moment: float, timeout: float, other_than: str) -> float:
        """Seconds from `moment` (monotonic) to the first write acknowledged after it
        by a master other than `other_than` (the one the fault hit)."""

        def first() -> float | None:
            return next(
                (at for at, master in self.successes if at > moment and master != other_than),
                None,
            )

        found = wait_for(
            first, timeout, f"a write acknowledged after the fault, not by {other_than}"
        )
        return found - moment

    def _run(self) -> None:
        number = 0
        connection = None
        master = ""
        while not self._stop.is_set():
            number += 1
            try:
                if connection is None:
                    connection, master = self._connect()
                execute_within(connection, "INSERT INTO writes VALUES (%s)", (number,), 1.0)
                self.acknowledged.append(number)
                self.successes.append((time.monotonic(), master))
            except (psycopg2.Error, EtcdError, TimeoutError):
                self.failures += 1
                close_quietly(connection)
                connection = None
            self._stop.wait(self.interval)
        close_quietly(connection)

    def _connect(self) -> tuple[Any, str]:
        """A connection to the published master, and that master's name."""
        state = self.cluster.state()
        if state is None or state.proxy_target.master is None:
            raise psycopg2.OperationalError("no master published")
        master = state.proxy_target.master
        connection = self.cluster.keepers[master].connect(async_=True)
        wait_ready(connection, 1.0)
        return connection, master


def wait_ready(connection: Any, timeout: float) -> None:
    """Drive an asynchronous psycopg2 connection until ready; TimeoutError after `timeout`.

    A frozen server keeps its socket open (the kernel even acknowledges our
    bytes), so only a client-side deadline notices it.
    """
    deadline = time.monotonic() + timeout
    while True:
        state = connection.poll()
        if state == psycopg2.extensions.POLL_OK:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the server did not answer in time")
        if state == psycopg2.extensions.POLL_READ:
            select.select([connection.fileno()], [], [], remaining)
        elif state == psycopg2.extensions.POLL_WRITE:
            select.select([], [connection.fileno()], [], remaining)


def execute_within(connection: Any, sql: str, parameters: tuple[Any, ...], timeout: float) -> None:
    """Run one autocommit statement on an asynchronous connection, with a deadline."""
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        wait_ready(connection, timeout)


def close_quietly(connection: Any) -> None:
    """Close a connection (if any), ignoring errors."""
    if connection is not None:
        with contextlib.suppress(psycopg2.Error):
            connection.close()


__all__ = ["LocalCluster", "Writer", "wait_for"]
