"""Real `rhizome-keeper` processes on 127.0.0.1, run as the `postgres` OS user.

`KeeperProcess` writes a keeper configuration and its 0600 password files into
a directory under /tmp that the postgres user owns, and runs
``<venv python> -m rhizome.keeper.main --config FILE`` in its own process
group. The keeper starts PostgreSQL as its child, so `kill()` and `freeze()`
take the whole node (keeper, postmaster, backends) down at once, while
`kill_postgres()` kills only the postmaster.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg2

from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import (
    ClusterState,
    KeeperAssignment,
    KeeperInfo,
    SynchronousStandbys,
)
from tests.harness.agents import etcd_section
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.postgres import POSTGRES_BIN, run_statement
from tests.harness.processes import ProcessOwner, ServerProcess, descendant_pids, is_alive

OS_USER = "postgres"
PYTHON = os.environ.get("RHIZOME_TEST_PYTHON", sys.executable)
SUPERUSER = "postgres"
REPLICATION_USER = "replicator"
SUPERUSER_PASSWORD = "rhizome-test-superuser-" + secrets.token_hex(6)
REPLICATION_PASSWORD = "rhizome-test-replication-" + secrets.token_hex(6)
"""Every keeper of a test cluster must share the passwords: the defaults are per test run."""


def remove_data_dir(path: Path, attempts: int = 20) -> None:
    """Remove a data directory its PostgreSQL may still write to: files it deletes or
    creates meanwhile make one walk fail, so walk again until the directory is gone."""
    for _ in range(attempts):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} could not be removed")


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)


class KeeperProcess(ProcessOwner):
    """One keeper and its PostgreSQL: configuration, process control, SQL helper."""

    def __init__(
        self,
        name: str,
        etcd_endpoints: Sequence[str],
        log_dir: Path,
        *,
        cluster: str = "main",
        superuser_password: str | None = None,
        replication_password: str | None = None,
        log_level: str = "debug",
        extra_settings: dict[str, str] | None = None,
        etcd_api: str = "v3",
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.cluster = cluster
        self.etcd_endpoints = list(etcd_endpoints)
        self.etcd_api = etcd_api
        self.log_path = log_dir / f"keeper-{name}.log"
        self.host = LOOPBACK
        self.port = free_port()
        self.api_port = free_port()
        self.superuser_password = superuser_password or SUPERUSER_PASSWORD
        self.replication_password = replication_password or REPLICATION_PASSWORD
        self.root_dir = Path(tempfile.mkdtemp(prefix=f"rhizome-keeper-{name}-", dir="/tmp"))
        self.root_dir.chmod(0o700)
        _chown(self.root_dir)
        self.data_dir = self.root_dir / "data"
        self.state_dir = self.root_dir / "state"
        self.config_path = self.root_dir / "keeper.toml"
        self.log_level = log_level
        self.extra_settings = dict(extra_settings or {})
        self._write_secret("superuser.pass", self.superuser_password)
        self._write_secret("replication.pass", self.replication_password)
        self.write_config()
        self._process: ServerProcess | None = None
        self.argv_override: list[str] | None = None

    # --- configuration -----------------------------------------------------------------------

    def use_tls(self, cert_file: Path, key_file: Path, ca_file: Path) -> None:
        """Run PostgreSQL with TLS: copies of the PEM files, owned by the keeper's user,
        in its own directory, named by its tls_* settings (call before start)."""
        self.install_tls_files(cert_file, key_file, ca_file)
        self.write_config()

    def install_tls_files(self, cert_file: Path, key_file: Path, ca_file: Path) -> None:
        """Copy the PEM files where the tls_* settings name them, each renamed over the
        last (as Ansible's copy does): before start, or later to renew them."""
        for key, source, mode in (
            ("tls_cert_file", cert_file, 0o644),
            ("tls_key_file", key_file, 0o600),
            ("tls_ca_file", ca_file, 0o644),
        ):
            copy = self.root_dir / f"tls-{key}.pem"
            temporary = copy.with_name(copy.name + ".new")
            shutil.copyfile(source, temporary)
            temporary.chmod(mode)
            _chown(temporary)
            temporary.replace(copy)
            self.extra_settings[key] = str(copy)

    def _write_secret(self, file_name: str, secret: str) -> Path:
        path = self.root_dir / file_name
        path.write_text(secret + "\n")
        path.chmod(0o600)
        _chown(path)
        return path

    def config_text(self) -> str:
        settings = {
            "name": self.name,
            "data_dir": str(self.data_dir),
            "state_dir": str(self.state_dir),
            "host": self.host,
            "port": self.port,
            "bin_dir": str(POSTGRES_BIN),
            "superuser": SUPERUSER,
            "superuser_password_file": str(self.root_dir / "superuser.pass"),
            "replication_user": REPLICATION_USER,
            "replication_password_file": str(self.root_dir / "replication.pass"),
            "log_level": self.log_level,
            **self.extra_settings,
        }
        lines = [f'cluster = "{self.cluster}"', etcd_section(self.etcd_endpoints, self.etcd_api)]
        lines += ["[keeper]"]
        lines += [
            f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"'
            for key, value in settings.items()
        ]
        lines += ["[api]", f'listen = "{LOOPBACK}:{self.api_port}"']
        return "\n".join(lines) + "\n"

    def write_config(self, text: str | None = None) -> None:
        """(Re)write the configuration file (`text` replaces the generated one)."""
        self.config_path.write_text(text if text is not None else self.config_text())
        _chown(self.config_path)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def argv(self) -> list[str]:
        if self.argv_override is not None:  # e.g. a fault injector around the keeper
            return self.argv_override
        return [PYTHON, "-m", "rhizome.keeper.main", "--config", str(self.config_path)]

    def start(self) -> None:
        """Launch the keeper (no readiness check: wait for its document or PostgreSQL)."""
        if self.is_running:
            raise RuntimeError(f"keeper {self.name} already runs")
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        if "PYTHONPATH" in os.environ:  # the source under test, e.g. a git worktree's src
            environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
        self._process = ServerProcess(
            self.argv,
            self.log_path,
            env=environment,
            run_as=OS_USER if os.geteuid() == 0 else None,
            cwd=self.root_dir,
        )
        self._process.start()

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"keeper {self.name} was never started")
        return self._process.pid

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.is_running

    @property
    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.exit_code

    def wait_exit(self, timeout: float = 30.0) -> int | None:
        """Wait for the keeper to exit by itself; its exit code (None on timeout)."""
        deadline = time.monotonic() + timeout
        while self.is_running and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._process is not None and not self.is_running:
            self._process.stop()  # reaps
        return self.exit_code

    def wait_exit_leaving_guard(self, timeout: float = 30.0) -> int | None:
        """Wait for the keeper process alone to exit: its fencing guard and PostgreSQL
        (same process group) keep running, as under systemd's KillMode=process."""
        return None if self._process is None else self._process.wait_leader(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM: the keeper stops PostgreSQL (fast shutdown) and revokes its lease."""
        if self._process is not None:
            self._process.stop(signal.SIGTERM, timeout=timeout)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- its PostgreSQL ----------------------------------------------------------------------

    @property
    def postgres_pid(self) -> int | None:
        """The postmaster's PID while it runs (from postmaster.pid), else None."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if is_alive(pid) else None

    def kill_postgres(self) -> int:
        """SIGKILL the postmaster only (kill -9 of PostgreSQL); returns its PID.

        Its backends notice the postmaster's death only at their next wait: an
        open session can still commit for a moment. `crash_postgres` has none.
        """
        pid = self.postgres_pid
        if pid is None:
            raise RuntimeError(f"the PostgreSQL of keeper {self.name} is not running")
        os.kill(pid, signal.SIGKILL)
        return pid

    def crash_postgres(self) -> int:
        """PostgreSQL dies at once, every process of it (the keeper lives on)."""
        pid = self.postgres_pid
        if pid is None:
            raise RuntimeError(f"the PostgreSQL of keeper {self.name} is not running")
        os.kill(pid, signal.SIGSTOP)  # no new child from here on
        tree = {pid} | descendant_pids(pid)
        for member in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGSTOP)
        for member in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal.SIGKILL)
        return pid

    def dsn(self, dbname: str = "postgres") -> str:
        return (
            f"host={LOOPBACK} port={self.port} user={SUPERUSER} dbname={dbname} connect_timeout=3"
        )

    def connect(self, **options: Any) -> Any:
        """A psycopg2 connection as the superuser over TCP (the password as a parameter)."""
        return psycopg2.connect(self.dsn(), password=self.superuser_password, **options)

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode; the rows it returns (empty when none)."""
        return run_statement(self.connect(), sql, parameters)

    def accepts_connections(self) -> bool:
        try:
            self.execute("SELECT 1")
        except psycopg2.Error:
            return False
        return True


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll `condition` until it returns something truthy; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = condition()
        except psycopg2.Error:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class StateWriter:
    """Stands in for the leader sentinel: writes `state` with compare-and-swap.

    `assign("k2", k1="fenced", k2="master", k3="standby:k2")` publishes the next
    generation with those roles ("standby:X" follows X) and `synchronous` as the
    requested and confirmed synchronous standbys; returns the generation.
    """

    def __init__(self, store: ClusterStore) -> None:
        self.store = store
        self.revision = 0
        self.state = ClusterState()

    def assign(
        self,
        master: str | None,
        initialized: bool = True,
        synchronous: tuple[str, ...] = (),
        **roles: str,
    ) -> int:
        assignments = {}
        for name, role in roles.items():
            role_name, _, follow = role.partition(":")
            assignments[name] = KeeperAssignment.model_validate(
                {"role": role_name, "follow": follow or None}
            )
        self.state = self.state.with_next_generation(
            master=master,
            initialized=initialized,
            assignments=assignments,
            synchronous_standbys=SynchronousStandbys(requested=synchronous, confirmed=synchronous),
        )
        revision = self.store.write_state(self.state, self.revision)
        assert revision is not None, "state changed under the test"
        self.revision = revision
        return self.state.generation


def reported(store: ClusterStore, name: str, **expected: object) -> KeeperInfo | None:
    """The keeper's published document when every given field has the given value."""
    stored = store.read_view().keepers.get(name)
    if stored is None:
        return None
    document = stored.document
    if any(getattr(document, field) != value for field, value in expected.items()):
        return None
    return document


def wait_reported(
    store: ClusterStore, name: str, what: str, timeout: float = 60.0, **expected: object
) -> KeeperInfo:
    """Wait until the keeper publishes a document with the expected fields."""
    result = wait_until(lambda: reported(store, name, **expected), timeout, f"{name}: {what}")
    assert isinstance(result, KeeperInfo)
    return result


class KeeperFactory:
    """Creates keepers against one etcd; `cleanup()` stops them all and removes their files.

    Each stopped keeper's log tail is printed (pytest shows it when a test fails).
    """

    def __init__(self, etcd_endpoints: Sequence[str], log_dir: Path, cluster: str = "main") -> None:
        self.etcd_endpoints = list(etcd_endpoints)
        self.log_dir = log_dir
        self.cluster = cluster
        self.created: list[KeeperProcess] = []

    def __call__(self, name: str, **options: Any) -> KeeperProcess:
        keeper = KeeperProcess(
            name, self.etcd_endpoints, self.log_dir, cluster=self.cluster, **options
        )
        self.created.append(keeper)
        return keeper

    def cleanup(self) -> None:
        errors: list[BaseException] = []
        for keeper in reversed(self.created):
            print(f"--- log of keeper {keeper.name} ---\n{keeper.log_tail(150)}")
            try:
                keeper.cleanup()
            except BaseException as error:  # the others must still be stopped
                errors.append(error)
        if errors:
            raise errors[0]


def fencing_guards(keeper_pid: int) -> list[int]:
    """The keeper's fencing guard process (rhizome.keeper.guard_server), if running."""
    guards = []
    for pid in descendant_pids(keeper_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"rhizome.keeper.guard_server" in command:
            guards.append(pid)
    return guards
