"""Patroni under test: three Patroni nodes on loopback, fronted by HAProxy.

Patroni comes from PyPI (`patroni[etcd3]`, pinned) in a virtualenv of its own,
built here from Debian's /usr/bin/python3 under build/ (the `postgres` user
runs it, so it must not live under /root). Its settings are the documented
defaults (ttl 30, loop_wait 10, retry_timeout 10, maximum_lag_on_failover 1 MB)
plus `use_pg_rewind` so that an old primary can rejoin, on the same etcd and
the same PostgreSQL 15 binaries as rhizome. Patroni's etcd3 backend speaks
etcd's v3 JSON gateway (`/v3/` on etcd 3.4), as rhizome does.

HAProxy runs with the health check Patroni's documentation recommends
(`option httpchk OPTIONS /primary`, `http-check expect status 200`,
`default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions`) and
the timeouts of Patroni's example haproxy.cfg.

Passwords are in each node's configuration file (mode 0600, owned by
postgres, in a 0700 directory), never on a command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.probes import Endpoint
from tests.harness.cluster import wait_for
from tests.harness.etcd import EtcdServer
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.postgres import POSTGRES_BIN
from tests.harness.processes import ServerProcess, descendant_pids, is_alive

PATRONI_VERSION = "4.1.5"
PATRONI_REQUIREMENT = f"patroni[etcd3,psycopg2-binary]=={PATRONI_VERSION}"
REPOSITORY = Path(__file__).resolve().parent.parent
PATRONI_VENV = Path(os.environ.get("RHIZOME_PATRONI_VENV", REPOSITORY / "build" / "patroni-venv"))
SYSTEM_PYTHON = "/usr/bin/python3"
OS_USER = "postgres"
SCOPE = "rhizome-bench"
HEALTH_TIMEOUT = 240.0
DEFAULT_TIMING = {"ttl": 30, "loop_wait": 10, "retry_timeout": 10}
HAPROXY_CONFIG = """global
    maxconn 100
    stats socket {stats_socket} mode 600 level admin
defaults
    mode tcp
    retries 2
    timeout client 30m
    timeout connect 4s
    timeout server 30m
    timeout check 5s
listen primary
    bind {host}:{port}
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 3s fall 3 rise 2 on-marked-down shutdown-sessions
{servers}
"""


def ensure_patroni(venv: Path = PATRONI_VENV) -> Path:
    """The `patroni` executable of the pinned version, installing it into `venv` if needed."""
    executable = venv / "bin" / "patroni"
    if executable.exists():
        version = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, check=False
        )
        if PATRONI_VERSION in version.stdout:
            return executable
    print(f"installing {PATRONI_REQUIREMENT} into {venv}")
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, PATRONI_REQUIREMENT], check=True)
    return executable


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)


def stop_tree(pid: int) -> set[int]:
    """SIGSTOP a process, then its descendants until no new one appears; the PIDs stopped."""
    stopped = {pid}
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGSTOP)
    while new_pids := descendant_pids(pid) - stopped:
        for child in new_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGSTOP)
        stopped |= new_pids
    return stopped


def signal_all(pids: set[int], signal_number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)


class PatroniNode:
    """One Patroni process (run as postgres) and the PostgreSQL it starts.

    Patroni starts the postmaster in a session of its own that outlives it, so
    faults on the node address both trees: Patroni's and the postmaster's.
    """

    def __init__(self, name: str, log_dir: Path, etcd_url: str, passwords: dict[str, str]) -> None:
        self.name = name
        self.rest_port = free_port()
        self.postgres_port = free_port()
        self.root_dir = Path(tempfile.mkdtemp(prefix=f"rhizome-patroni-{name}-", dir="/tmp"))
        self.root_dir.chmod(0o700)
        _chown(self.root_dir)
        self.data_dir = self.root_dir / "data"
        self.config_path = self.root_dir / "patroni.json"  # JSON is YAML
        self.config_path.write_text(json.dumps(self.config(etcd_url, passwords), indent=2))
        self.config_path.chmod(0o600)
        _chown(self.config_path)
        self.log_path = log_dir / f"patroni-{name}.log"
        self.process: ServerProcess | None = None

    def config(self, etcd_url: str, passwords: dict[str, str]) -> dict[str, Any]:
        rest = f"{LOOPBACK}:{self.rest_port}"
        postgres = f"{LOOPBACK}:{self.postgres_port}"
        return {
            "scope": SCOPE,
            "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": rest, "connect_address": rest},
            "etcd3": {"hosts": [etcd_url.removeprefix("http://")], "protocol": "http"},
            "bootstrap": {
                "dcs": {**DEFAULT_TIMING, "postgresql": {"use_pg_rewind": True}},
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
            },
            "postgresql": {
                "listen": postgres,
                "connect_address": postgres,
                "data_dir": str(self.data_dir),
                "bin_dir": str(POSTGRES_BIN),
                "pgpass": str(self.root_dir / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": passwords["superuser"]},
                    "replication": {"username": "replicator", "password": passwords["replication"]},
                },
                "parameters": {"unix_socket_directories": str(self.root_dir)},
                "pg_hba": [
                    "local all all trust",
                    f"host replication replicator {LOOPBACK}/32 scram-sha-256",
                    f"host all all {LOOPBACK}/32 scram-sha-256",
                ],
            },
        }

    def start(self, executable: Path) -> None:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.root_dir),
        }
        self.process = ServerProcess(
            [str(executable), str(self.config_path)],
            self.log_path,
            env=environment,
            run_as=OS_USER if os.geteuid() == 0 else None,
            cwd=self.root_dir,
        )
        self.process.start()

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"Patroni {self.name} was never started")
        return self.process.pid

    def postmaster_pid(self) -> int | None:
        """The running postmaster of this node's data directory, if any."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if is_alive(pid) and str(self.data_dir).encode() in command_line else None

    def rest(self, path: str, method: str = "GET", body: dict[str, Any] | None = None) -> Any:
        """Patroni's REST API: (status, parsed JSON or text)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.rest_port}{path}", data=data, method=method
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=90) as reply:
                status, text = reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        with contextlib.suppress(ValueError):
            return status, json.loads(text)
        return status, text

    # -- faults -------------------------------------------------------------------------

    def _freeze_both(self) -> set[int]:
        stopped: set[int] = set()
        if self.process is not None and self.process.is_running:
            stopped |= {self.process.pid} | self.process.freeze()
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            stopped |= stop_tree(postmaster)
        return stopped

    def kill(self) -> None:
        """Host death: Patroni, the postmaster and every backend stopped, then killed at once."""
        stopped = self._freeze_both()
        signal_all(stopped, signal.SIGKILL)
        if self.process is not None:
            self.process.kill()  # reaps Patroni

    def crash_postgres(self) -> None:
        postmaster = self.postmaster_pid()
        if postmaster is None:
            raise RuntimeError(f"the PostgreSQL of Patroni {self.name} is not running")
        signal_all(stop_tree(postmaster), signal.SIGKILL)

    def freeze(self) -> Callable[[], None]:
        stopped = self._freeze_both()
        return lambda: signal_all(stopped, signal.SIGCONT)

    def cleanup(self) -> None:
        """Stop Patroni (it stops PostgreSQL), kill what is left, remove the files."""
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            signal_all({postmaster} | descendant_pids(postmaster), signal.SIGCONT)
        if self.process is not None:
            self.process.stop(signal.SIGTERM, timeout=30)
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            signal_all(stop_tree(postmaster), signal.SIGKILL)
        shutil.rmtree(self.root_dir, ignore_errors=True)


class PatroniCluster:
    """Three Patroni nodes and an HAProxy in front of them."""

    name = "Patroni"

    def __init__(self, directory: Path, etcd: EtcdServer, node_count: int = 3) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.superuser_password = secrets.token_hex(12)
        passwords = {"superuser": self.superuser_password, "replication": secrets.token_hex(12)}
        self.nodes = {
            f"patroni{index}": PatroniNode(f"patroni{index}", directory, etcd.client_url, passwords)
            for index in range(1, node_count + 1)
        }
        self.haproxy_port = free_port()
        self.stats_socket = directory / "haproxy.sock"
        servers = "\n".join(
            f"    server {node.name} {LOOPBACK}:{node.postgres_port} maxconn 100 "
            f"check port {node.rest_port}"
            for node in self.nodes.values()
        )
        config = directory / "haproxy.cfg"
        config.write_text(
            HAPROXY_CONFIG.format(
                stats_socket=self.stats_socket,
                host=LOOPBACK,
                port=self.haproxy_port,
                servers=servers,
            )
        )
        self.haproxy = ServerProcess(
            ["haproxy", "-db", "-f", str(config)], directory / "haproxy.log"
        )

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(LOOPBACK, self.haproxy_port, self.superuser_password)

    def start(self) -> None:
        executable = ensure_patroni()
        for node in self.nodes.values():
            node.start(executable)
        self.haproxy.start()
        self.wait_healthy()

    def stop(self) -> None:
        self.haproxy.stop()
        for node in self.nodes.values():
            node.cleanup()

    # -- observing ---------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        """GET /cluster from the first node that answers ([] when none does)."""
        for node in self.nodes.values():
            try:
                status, body = node.rest("/cluster")
            except OSError:
                continue
            if status == 200 and isinstance(body, dict):
                return list(body.get("members", []))
        return []

    def leader(self) -> str | None:
        leaders = [m for m in self.members() if m.get("role") == "leader"]
        return leaders[0]["name"] if len(leaders) == 1 else None

    def primary(self) -> str:
        return wait_for(self.leader, HEALTH_TIMEOUT, "a Patroni leader")

    def haproxy_up_servers(self) -> set[str]:
        """Servers HAProxy routes to, from its stats socket: "UP", also "UP 1/3" (going down)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(str(self.stats_socket))
            connection.sendall(b"show stat\n")
            text = b"".join(iter(lambda: connection.recv(65536), b"")).decode()
        lines = text.strip().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:]]
        up = {row["svname"] for row in rows if row.get("status", "").startswith("UP")}
        return up - {"BACKEND", "FRONTEND"}

    def healthy_leader(self) -> str | None:
        members = self.members()
        leaders = [str(m["name"]) for m in members if m.get("role") == "leader"]
        if len(leaders) != 1 or len(members) != len(self.nodes):
            return None
        streaming = [m for m in members if m.get("role") != "leader" and m["state"] == "streaming"]
        if len(streaming) != len(self.nodes) - 1:
            return None
        with contextlib.suppress(OSError):
            if self.haproxy_up_servers() == {leaders[0]}:
                return leaders[0]
        return None

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> str:
        """Until one leader runs, both replicas stream and HAProxy routes to the leader only."""
        return wait_for(self.healthy_leader, timeout, "a healthy Patroni cluster behind HAProxy")

    def diagnostics(self) -> str:
        parts = [
            f"--- {node.name} ---\n{node.process.log_tail() if node.process else '(not started)'}"
            for node in self.nodes.values()
        ]
        return "\n".join([*parts, f"--- haproxy ---\n{self.haproxy.log_tail()}"])

    # -- faults and operations ------------------------------------------------------------

    def host_death(self, node: str) -> Callable[[], None]:
        self.nodes[node].kill()
        return lambda: self.nodes[node].start(ensure_patroni())

    def postgres_crash(self, node: str) -> Callable[[], None]:
        self.nodes[node].crash_postgres()
        return lambda: None

    def freeze(self, node: str) -> Callable[[], None]:
        return self.nodes[node].freeze()

    def switchover(self) -> None:
        """POST /switchover to the leader's REST API; it answers once the switchover is done."""
        leader = self.primary()
        candidate = next(name for name in self.nodes if name != leader)
        status, body = self.nodes[leader].rest(
            "/switchover", "POST", {"leader": leader, "candidate": candidate}
        )
        if status != 200:
            raise RuntimeError(f"Patroni switchover failed ({status}): {body}")

    def agent_processes(self) -> dict[str, list[int]]:
        return {
            "patroni": [node.pid for node in self.nodes.values()],
            "HAProxy": [self.haproxy.pid],
        }
