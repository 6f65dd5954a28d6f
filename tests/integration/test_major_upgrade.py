"""A blue/green major upgrade through the proxy, end to end on loopback (real etcd,
PostgreSQL, keepers, sentinels and rhizome-proxy; docs/design/major-upgrade.md).

Blue is cluster "main" behind a proxy, green is cluster "main-17" (both
PostgreSQL 15 here: the machine has no other version; molecule's major-upgrade
scenario runs 15 → 17). Clients write through blue's proxy all along: three
open a new connection per insert, one keeps its session, one takes ids from a
sequence. `rhizomectl upgrade prepare` feeds green; a first cutover with
green's subscription disabled times out and rolls back (blue goes on, nothing
lost); with the subscription enabled again the cutover hands over: the proxy
follows green, no new connection fails, no acknowledged write is lost, the
sequence continues above every id issued on blue, and blue can be stopped.
"""

from __future__ import annotations

import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from bench.probes import (
    PATIENT_CONNECT_DEADLINE,
    Endpoint,
    WritingClient,
    create_table,
    failures,
    longest_pause,
)
from bench.rhizome_system import RhizomeSystem
from tests.harness.cluster import LocalCluster, wait_for
from tests.harness.ports import LOOPBACK

pytestmark = pytest.mark.integration

SUCCESSOR = "main-17"
LOOPBACK_TRUST = {"type": "host", "database": "all", "user": "postgres",
                  "address": f"{LOOPBACK}/32", "method": "trust"}  # fmt: skip
"""The subscription's and rhizomectl's logins (in production: a password file)."""
APP_LOGIN = {"type": "host", "database": "all", "user": "app", "address": f"{LOOPBACK}/32",
             "method": "scram-sha-256"}  # fmt: skip
"""A client role that logs in to blue's master directly, not through the proxy."""
BLUE_LOGGING = {"log_statement": "all", "log_connections": True, "log_disconnections": True}
"""Every statement and session in blue's log, for the report of a lost write."""
BLUE_SPEC = {"pg_parameters": {"wal_level": "logical", **BLUE_LOGGING},
             "pg_hba": [LOOPBACK_TRUST, APP_LOGIN]}  # fmt: skip
GREEN_SPEC = {"pg_hba": [LOOPBACK_TRUST]}
ORDERS_SQL = "CREATE TABLE orders (id bigserial PRIMARY KEY, client text NOT NULL)"


class SequenceClient:
    """Inserts into `orders` through the proxy (new connection each time), keeping the ids."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.ids: list[tuple[float, int]] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                connection = psycopg2.connect(
                    host=self.endpoint.host, port=self.endpoint.port, user="postgres",
                    dbname="postgres", password=self.endpoint.password, connect_timeout=10,
                )  # fmt: skip
                connection.autocommit = True  # not `with connection`: it would open a
                with connection.cursor() as cursor:  # transaction, committed after the id
                    cursor.execute("INSERT INTO orders (client) VALUES ('seq') RETURNING id")
                    number = cursor.fetchone()[0]
                self.ids.append((time.monotonic(), number))  # committed: acknowledged
                connection.close()
            except psycopg2.Error as error:
                self.errors.append(str(error).strip()[:120])
            self.stopping.wait(0.02)


def rhizomectl_command(etcd_url: str, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "rhizome.cli.main", "--endpoints", etcd_url,
            "--cluster", "main", *arguments]  # fmt: skip


def rhizomectl(etcd_url: str, *arguments: str) -> subprocess.CompletedProcess:
    command = rhizomectl_command(etcd_url, *arguments)
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def dsn_of(cluster: LocalCluster, master: str) -> str:
    keeper = cluster.keepers[master]
    return f"host={LOOPBACK} port={keeper.port} user=postgres dbname=postgres"


def on_green(green: LocalCluster, sql: str) -> list[tuple]:
    master = green.wait_for_master(60)
    with psycopg2.connect(dsn_of(green, master)) as connection, connection.cursor() as cursor:
        connection.autocommit = True
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []


def app_session(cluster: LocalCluster, master: str):
    """A session of role `app` straight to the master (no proxy), able to insert."""
    keeper = cluster.keepers[master]
    return psycopg2.connect(host=LOOPBACK, port=keeper.port, user="app", password="app-password",
                            dbname="postgres", connect_timeout=5)  # fmt: skip


class HeldLogin:
    """A superuser login to a master whose startup packet is held back by a relay.

    PostgreSQL forks the login's backend at the TCP accept, but shows it in
    pg_stat_activity only once authenticated: a seal terminating the sessions it
    sees cannot see this one, which then logs in after the sealed position.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.listener = socket.create_server((LOOPBACK, 0))
        self.release = threading.Event()
        self.connection: Any = None
        threading.Thread(target=self.relay, daemon=True).start()
        self.login = threading.Thread(target=self.log_in, daemon=True)
        self.login.start()

    def log_in(self) -> None:
        self.connection = psycopg2.connect(
            host=LOOPBACK, port=self.listener.getsockname()[1], user="postgres", dbname="postgres",
            connect_timeout=30,
        )  # fmt: skip

    def relay(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection((LOOPBACK, self.port))  # the backend is forked now
        self.release.wait(60)
        sockets = [client, server]
        while True:
            readable, _, _ = select.select(sockets, [], [], 60)
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (server if source is client else client).sendall(data)

    def insert(self) -> None:
        """Complete the login, then insert and commit (autocommit)."""
        self.release.set()
        self.login.join(30)
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute("INSERT INTO probe_writes VALUES ('late login', 1)")


def app_logs_in(cluster: LocalCluster, master: str) -> bool:
    """Once the keeper lifted the seal (it may be finishing a last seal first)."""
    try:
        app_session(cluster, master).close()
    except psycopg2.OperationalError:
        return False
    return True


def cutover_while_sealed(
    etcd_url: str, blue: LocalCluster, master: str, direct
) -> subprocess.CompletedProcess:
    """A cutover that cannot finish (green's subscription is disabled): while the master
    is sealed, the direct session is gone, `app` cannot log in and a superuser's login
    that was being authenticated cannot write; then it is abandoned."""
    late = HeldLogin(blue.keepers[master].port)
    cutover = ("upgrade", "cutover", "--successor", SUCCESSOR, "--wait", "--timeout", "5")
    command = rhizomectl_command(etcd_url, *cutover)
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: reported_sealed(blue, master), 10, f"{master} to report itself sealed")
    with pytest.raises(psycopg2.Error), direct.cursor() as cursor:
        cursor.execute("INSERT INTO probe_writes VALUES ('direct', 1)")
        direct.commit()
    with pytest.raises(psycopg2.OperationalError, match=r"no pg_hba\.conf entry"):
        app_session(blue, master)
    with pytest.raises(psycopg2.Error, match="read-only transaction"):
        late.insert()
    stdout, stderr = running.communicate(timeout=60)
    return subprocess.CompletedProcess(command, running.returncode, stdout, stderr)


def near(number: int, missing: list[tuple[float, int]]) -> bool:
    return any(abs(number - lost) <= 5 for _, lost in missing)


def keep_postgres_logs(cluster: LocalCluster, kept: Path) -> None:
    """Copy every PostgreSQL log of `cluster` into `kept` (before it stops and is removed)."""
    kept.mkdir(exist_ok=True)
    for name, keeper in cluster.keepers.items():
        path = keeper.state_dir / "postgresql.log"
        if path.exists():
            shutil.copy(path, kept / f"{cluster.directory.name}-{name}.log")


def postgres_logs(kept: Path, *clusters: LocalCluster) -> str:
    """The last lines of the kept logs and of the clusters' (an apply worker's errors on
    green); blue logs every statement and session, whole in `kept`."""
    for cluster in clusters:
        keep_postgres_logs(cluster, kept)
    tails = [f"whole PostgreSQL logs in {kept}"]
    for path in sorted(kept.iterdir()):
        tails.append(f"--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}")
    return "\n".join(tails)


def reported_sealed(cluster: LocalCluster, master: str) -> bool:
    stored = cluster.store.read_view().keepers.get(master)
    return stored is not None and stored.document.sealed_lsn is not None


@pytest.fixture
def clusters(tmp_path, etcd):
    blue = RhizomeSystem(tmp_path / "blue", etcd, spec=BLUE_SPEC, keeper_count=2)
    green = LocalCluster(tmp_path / "green", etcd, keeper_count=2, spec=GREEN_SPEC,
                         cluster=SUCCESSOR)  # fmt: skip
    try:
        blue.start()
        green.start()
    except AssertionError as error:
        raise AssertionError(f"{error}\n{blue.diagnostics()}\n{green.diagnostics()}") from error
    yield blue, green
    blue.stop()
    green.stop()


def test_a_cutover_rolls_back_then_hands_over_with_nothing_lost(clusters, etcd, tmp_path):
    blue, green = clusters
    endpoint = blue.endpoint
    create_table(endpoint)
    endpoint.query_primary(ORDERS_SQL)
    endpoint.query_primary("CREATE ROLE app LOGIN PASSWORD 'app-password'")
    endpoint.query_primary("GRANT INSERT ON probe_writes TO app")
    blue_master = blue.primary()
    green_master = green.wait_for_master(60)
    green_route = f"{green_master} ({LOOPBACK}:{green.keepers[green_master].port})"
    source, target = dsn_of(blue.cluster, blue_master), dsn_of(green, green_master)
    clients = [
        WritingClient(endpoint, f"new{number}", new_connection_per_transaction=True,
                      connect_deadline=PATIENT_CONNECT_DEADLINE)
        for number in range(3)
    ]  # fmt: skip
    clients.append(WritingClient(endpoint, "session", connect_deadline=PATIENT_CONNECT_DEADLINE))
    sequence = SequenceClient(endpoint)
    for client in clients:
        client.start()
    sequence.thread.start()
    try:
        prepared = rhizomectl(etcd.client_url, "upgrade", "prepare", "--source-dsn", source,
                              "--target-dsn", target, "--timeout", "120")  # fmt: skip
        assert prepared.returncode == 0, prepared.stdout + prepared.stderr

        on_green(green, "ALTER SUBSCRIPTION rhizome_upgrade_postgres DISABLE")
        direct = app_session(blue.cluster, blue_master)
        refused = cutover_while_sealed(etcd.client_url, blue.cluster, blue_master, direct)
        assert refused.returncode != 0, refused.stdout
        assert "abandoned" in refused.stderr + refused.stdout, refused.stderr
        wait_for(lambda: app_logs_in(blue.cluster, blue_master), 10, "app logs in again")
        blue.wait_healthy(30)  # routed to the unsealed master again
        state = blue.cluster.state()
        assert state is not None and state.successor is None
        assert not state.assignments[blue_master].sealed

        on_green(green, "ALTER SUBSCRIPTION rhizome_upgrade_postgres ENABLE")
        time.sleep(2)
        cutover_at = time.monotonic()
        handed = rhizomectl(etcd.client_url, "upgrade", "cutover", "--successor", SUCCESSOR,
                            "--wait", "--timeout", "30")  # fmt: skip
        assert handed.returncode == 0, handed.stdout + handed.stderr + blue.diagnostics()
        done_at = time.monotonic()
        wait_for(lambda: blue.proxy_target() == green_route, 30, "routes to green's master")
        time.sleep(1)
        on_blue = {row[0] for row in blue.cluster.keepers[blue_master].execute(
            "SELECT id FROM orders")}  # fmt: skip
        finished = rhizomectl(etcd.client_url, "upgrade", "finish", "--target-dsn", target,
                              "--source-dsn", source)  # fmt: skip
        assert finished.returncode == 0, finished.stdout + finished.stderr  # blue is sealed
        assert "dropped publication" in finished.stdout, finished.stdout
        keep_postgres_logs(blue.cluster, tmp_path / "postgres-logs")
        blue.cluster.stop()  # the old cluster is no longer needed by anybody
        time.sleep(1)
    finally:
        for client in clients:
            client.stop()
        sequence.stopping.set()
        sequence.thread.join(timeout=10)
    assert blue.proxy_target() == green_route
    for client in clients:
        failed_connects, _ = failures(client.attempts, cutover_at)
        assert failed_connects == 0, f"{client.name}: {[a.error for a in client.attempts]}"
        assert client.lost_writes() == 0, client.name
        assert client.attempts[-1].acknowledged, f"{client.name} writes after the cutover"
    pause = max(longest_pause(client.attempts, cutover_at, done_at) for client in clients[:3])
    before = [number for moment, number in sequence.ids if moment < cutover_at]
    after = [number for moment, number in sequence.ids if moment > done_at + 1]
    assert before and after and min(after) > max(before), (before[-3:], after[:3])
    stored = {row[0] for row in endpoint.query_primary("SELECT id FROM orders")}
    missing = [(round(moment - cutover_at, 3), number) for moment, number in sequence.ids
               if number not in stored]  # fmt: skip
    assert not missing, (
        f"acknowledged ids not on green (s after the cutover, id): {missing}"
        f" (cutover took {done_at - cutover_at:.2f} s); on blue: "
        f"{[number for _, number in missing if number in on_blue]}; around them:"
        f" {[(round(m - cutover_at, 3), n) for m, n in sequence.ids if near(n, missing)]}"
        f" errors {sequence.errors[-5:]}\n{blue.diagnostics()}\n"
        f"{postgres_logs(tmp_path / 'postgres-logs', green)}"
    )
    assert on_green(green, "SELECT count(*) FROM pg_subscription") == [(0,)]
    print(f"\ncutover write pause (new connection per insert): {pause:.2f} s;"
          f" session client failures: {failures(clients[3].attempts, cutover_at)[1]}")  # fmt: skip
