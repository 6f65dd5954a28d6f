"""Real etcd servers on 127.0.0.1: one member or a static cluster, with optional TLS and auth.

Each runs the etcd binary it is given (tests/harness/etcd_releases.py): by default the one
in RHIZOME_ETCD_BIN_DIR or on PATH."""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tests.harness.etcd_releases import EtcdBinary, default_binary
from tests.harness.ports import LOOPBACK, free_ports
from tests.harness.processes import PortInUseError, ProcessOwner, ServerProcess
from tests.harness.tls import TlsFiles, create_tls_files

START_ATTEMPTS = 4
START_TIMEOUT = 20.0
DEFAULT_CLUSTER_TOKEN = "rhizome-test"


def raft_arguments(heartbeat_ms: int, election_timeout_ms: int) -> tuple[str, ...]:
    """etcd's command-line flags for this raft timing, in milliseconds."""
    return (
        "--heartbeat-interval",
        str(heartbeat_ms),
        "--election-timeout",
        str(election_timeout_ms),
    )


RAFT_TIMING = raft_arguments(50, 500)
"""As roles/etcd sets them (etcd_heartbeat_interval, etcd_election_timeout)."""
WATCH_PROGRESS = ("--experimental-watch-progress-notify-interval", "2s")
"""As roles/etcd sets it (etcd_watch_progress_notify_interval)."""


class EtcdctlError(RuntimeError):
    """etcdctl exited with an error; the message carries its stderr."""


@dataclass(frozen=True)
class EtcdCredentials:
    username: str
    password: str


@dataclass(frozen=True)
class EtcdAuth:
    """The root user and one normal user whose role may read and write every key."""

    root: EtcdCredentials
    user: EtcdCredentials
    role: str = "rhizome-readwrite"

    @classmethod
    def generate(cls, username: str = "rhizome") -> EtcdAuth:
        return cls(
            root=EtcdCredentials("root", secrets.token_hex(8)),
            user=EtcdCredentials(username, secrets.token_hex(8)),
        )


def _etcd_free_environment() -> dict[str, str]:
    """Our environment without ETCD_* / ETCDCTL_* variables, which etcd reads as flags."""
    return {key: value for key, value in os.environ.items() if not key.startswith("ETCD")}


def http_get(
    url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0
) -> tuple[int, bytes]:
    """(status, body) of GET url, bypassing any proxy from the environment.

    Network and TLS errors raise OSError (urllib's URLError wraps TLS verification errors).
    """
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class EtcdServer(ProcessOwner):
    """One etcd member; a cluster sets initial_cluster before launching its members."""

    def __init__(
        self,
        name: str,
        base_dir: Path,
        *,
        tls: TlsFiles | None = None,
        client_cert_auth: bool = False,
        auth: EtcdAuth | None = None,
        cluster_token: str = DEFAULT_CLUSTER_TOKEN,
        binary: EtcdBinary | None = None,
        extra_arguments: tuple[str, ...] = (),
    ) -> None:
        """`extra_arguments` go last on etcd's command line (a repeated flag: the last wins)."""
        if client_cert_auth and tls is None:
            raise ValueError("client_cert_auth needs tls")
        base_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.binary = binary or default_binary()
        self.data_dir = base_dir / f"{name}.etcd"
        self.log_path = base_dir / f"{name}.log"
        self.tls = tls
        self.client_cert_auth = client_cert_auth
        self.auth = auth
        self.auth_enabled = False
        self.cluster_token = cluster_token
        self.extra_arguments = extra_arguments
        self.client_port, self.peer_port = free_ports(2)
        self.initial_cluster: str | None = None
        self._process: ServerProcess | None = None

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{LOOPBACK}:{self.peer_port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"etcd {self.name} was never started")
        return self._process.pid

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.is_running

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start, wait until healthy; retry on new ports if fresh; set up auth the first time."""
        fresh = not (self.data_dir / "member").exists()
        for attempt in range(1, START_ATTEMPTS + 1):
            self.launch()
            try:
                self.wait_ready()
                break
            except PortInUseError:
                if not fresh or attempt == START_ATTEMPTS:
                    raise
                self.forget_data_and_ports()
        if self.auth is not None and not self.auth_enabled:
            self.enable_auth()

    def launch(self) -> None:
        """Start the process without waiting for it."""
        if self.is_running:
            raise RuntimeError(f"etcd {self.name} is already running (pid {self.pid})")
        self._process = ServerProcess(
            self._command_line(), self.log_path, env=_etcd_free_environment()
        )
        self._process.start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        if self._process is None:
            raise RuntimeError(f"etcd {self.name} was never started")
        self._process.wait_ready(self.is_healthy, timeout, f"etcd {self.name}")

    def forget_data_and_ports(self) -> None:
        """After a failed first start: wipe the data directory and take new ports."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.client_port, self.peer_port = free_ports(2)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(signal.SIGTERM)

    def restart(self) -> None:
        """Stop and start again with the same data directory and ports."""
        self.stop()
        self.start()

    def _command_line(self) -> list[str]:
        command = [
            self.binary.etcd, "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", self.initial_cluster or f"{self.name}={self.peer_url}",
            "--initial-cluster-state", "new", "--initial-cluster-token", self.cluster_token,
            *RAFT_TIMING, *WATCH_PROGRESS, "--bcrypt-cost", "4",
            "--logger", "zap", "--log-outputs", "stderr",
            "--enable-v2=true",  # for the store's v2 backend (rhizome.etcd_v2)
        ]  # fmt: skip
        if self.tls is not None:
            command += ["--cert-file", str(self.tls.server_cert_file)]
            command += ["--key-file", str(self.tls.server_key_file)]
        if self.tls is not None and self.client_cert_auth:
            # etcd 3.4 demands client certificates whenever --trusted-ca-file is given.
            command += ["--client-cert-auth", "--trusted-ca-file", str(self.tls.ca_file)]
        return command + list(self.extra_arguments)

    # --- HTTP --------------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting the test CA and presenting the client certificate."""
        if self.tls is None:
            return None
        context = ssl.create_default_context(cafile=str(self.tls.ca_file))
        context.load_cert_chain(self.tls.client_cert_file, self.tls.client_key_file)
        return context

    def http_get(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        """(status, body) of GET client_url + path; network errors raise OSError."""
        return http_get(self.client_url + path, self.ssl_context(), timeout)

    def is_healthy(self) -> bool:
        try:
            status, body = self.http_get("/health", timeout=1.0)
            return status == 200 and json.loads(body).get("health") == "true"
        except (OSError, ValueError):
            return False

    # --- etcdctl -----------------------------------------------------------------------------

    def etcdctl(
        self, *arguments: str, as_user: EtcdCredentials | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `etcdctl` (API v3) against this member; as root by default once auth is on."""
        command = [self.binary.etcdctl, f"--endpoints={self.client_url}", "--dial-timeout=2s"]
        command.append("--command-timeout=5s")
        if self.tls is not None:
            command += [f"--cacert={self.tls.ca_file}", f"--cert={self.tls.client_cert_file}"]
            command.append(f"--key={self.tls.client_key_file}")
        user = as_user or (self.auth.root if self.auth and self.auth_enabled else None)
        if user is not None:
            command += [f"--user={user.username}", f"--password={user.password}"]
        environment = {**_etcd_free_environment(), "ETCDCTL_API": "3"}
        command += arguments
        result = subprocess.run(
            command, capture_output=True, text=True, env=environment, timeout=30, check=False
        )
        if check and result.returncode != 0:
            raise EtcdctlError(f"etcdctl {' '.join(arguments)} failed: {result.stderr.strip()}")
        return result

    def enable_auth(self) -> None:
        """Create root and the normal user with a read-write role on every key; enable auth."""
        if self.auth is None:
            raise RuntimeError(f"etcd {self.name} has no credentials configured")
        root, user, role = self.auth.root, self.auth.user, self.auth.role
        for credentials in (root, user):
            self.etcdctl(
                "user", "add", credentials.username,
                f"--new-user-password={credentials.password}", "--interactive=false",
            )  # fmt: skip
        self.etcdctl("role", "add", role)
        self.etcdctl("role", "grant-permission", role, "readwrite", "", "--from-key")
        self.etcdctl("user", "grant-role", user.username, role)
        self.etcdctl("auth", "enable")
        self.auth_enabled = True

    def put(self, key: str, value: str) -> None:
        self.etcdctl("put", key, value)

    def get(self, key: str) -> str | None:
        reply = json.loads(self.etcdctl("get", key, "--write-out=json").stdout)
        values = reply.get("kvs", [])
        return base64.b64decode(values[0].get("value", "")).decode() if values else None

    def revision(self) -> int:
        """The store's current revision, as this member reports it."""
        statuses = json.loads(self.etcdctl("endpoint", "status", "--write-out=json").stdout)
        return int(statuses[0]["Status"]["header"]["revision"])

    def compact(self, revision: int) -> None:
        """Compact the key-value history up to revision (physically, before returning)."""
        self.etcdctl("compact", str(revision), "--physical")


class EtcdCluster:
    """A static cluster of members that share TLS files, credentials and a cluster token."""

    def __init__(
        self,
        base_dir: Path,
        size: int = 3,
        *,
        tls: bool = False,
        client_cert_auth: bool = False,
        auth: bool = False,
        binary: EtcdBinary | None = None,
        extra_arguments: tuple[str, ...] = (),
    ) -> None:
        tls_files = create_tls_files(base_dir / "tls") if tls else None
        self.binary = binary or default_binary()
        self.auth = EtcdAuth.generate() if auth else None
        token = f"rhizome-test-{secrets.token_hex(4)}"
        self.members = [
            EtcdServer(
                f"etcd{index}",
                base_dir,
                tls=tls_files,
                client_cert_auth=client_cert_auth,
                auth=self.auth,
                cluster_token=token,
                binary=self.binary,
                extra_arguments=extra_arguments,
            )
            for index in range(size)
        ]

    def __getitem__(self, index: int) -> EtcdServer:
        return self.members[index]

    def __len__(self) -> int:
        return len(self.members)

    @property
    def client_urls(self) -> list[str]:
        return [member.client_url for member in self.members]

    def start(self) -> None:
        """Launch every member at once, wait until all are healthy; new ports on a bind failure."""
        for attempt in range(1, START_ATTEMPTS + 1):
            initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
            for member in self.members:
                member.initial_cluster = initial_cluster
                member.launch()
            try:
                for member in self.members:
                    member.wait_ready()
                break
            except PortInUseError:
                if attempt == START_ATTEMPTS:
                    raise
                for member in self.members:
                    member.forget_data_and_ports()
        if self.auth is not None:
            self.members[0].enable_auth()
            for member in self.members:
                member.auth_enabled = True

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def leader_index(self) -> int:
        """Which member is the raft leader, from each member's own status."""
        for index, member in enumerate(self.members):
            status = json.loads(member.etcdctl("endpoint", "status", "--write-out=json").stdout)
            header = status[0]["Status"]
            if header["header"]["member_id"] == header["leader"]:
                return index
        raise RuntimeError("no etcd member reports itself as the leader")


class EtcdFactory(Protocol):
    """What the etcd_factory fixture yields: starts a single member and returns it."""

    def __call__(
        self, *, tls: bool = False, client_cert_auth: bool = False, auth: bool = False
    ) -> EtcdServer: ...


def start_etcd(
    base_dir: Path,
    name: str,
    *,
    tls: bool,
    client_cert_auth: bool,
    auth: bool,
    binary: EtcdBinary | None = None,
) -> EtcdServer:
    """Create (with fresh TLS files and credentials when asked) and start one member."""
    tls_files = create_tls_files(base_dir / f"{name}-tls") if tls else None
    server = EtcdServer(
        name,
        base_dir,
        tls=tls_files,
        client_cert_auth=client_cert_auth,
        auth=EtcdAuth.generate() if auth else None,
        binary=binary,
    )
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server
