"""Real PostgreSQL instances on 127.0.0.1, run as the `postgres` OS user when we are root.

The postmaster is started directly (not through pg_ctl) so that we hold its real PID.
Each instance lives in its own directory under /tmp that the postgres user owns: the
pytest tmp dir is root's and mode 0700. Logs go to the test's tmp dir through the
inherited stdout file descriptor, so the postgres user needs no access to it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Protocol

import psycopg2

from tests.harness.ports import LOOPBACK, free_port
from tests.harness.processes import PortInUseError, ProcessOwner, ServerProcess

POSTGRES_BIN = Path(os.environ.get("RHIZOME_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"
START_ATTEMPTS = 4
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def server_os_user() -> str | None:
    """The user PostgreSQL runs as: `postgres` when we are root, else ourselves (None)."""
    return OS_USER if os.geteuid() == 0 else None


class PostgresInstance(ProcessOwner):
    """One PostgreSQL server: data directory, port, process, and a psycopg2 helper."""

    def __init__(self, name: str, log_dir: Path, *, settings: dict[str, str] | None = None) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.settings = dict(settings or {})
        self.os_user = server_os_user()
        self.root_dir = Path(tempfile.mkdtemp(prefix=f"rhizome-pg-{name}-", dir="/tmp"))
        self.data_dir = self.root_dir / "data"
        self.socket_dir = self.root_dir / "socket"
        self.socket_dir.mkdir()
        for directory in (self.root_dir, self.socket_dir):
            directory.chmod(0o755)
            if self.os_user is not None:
                shutil.chown(directory, self.os_user, self.os_user)
        self.port = free_port()
        self._process: ServerProcess | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError(f"postgres {self.name} was never started")
        return self._process.pid

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.is_running

    # --- data directory ----------------------------------------------------------------------

    def run_as_server_user(self, *command: str | Path) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server's OS user; raise with its output on failure."""
        result = subprocess.run(
            [str(part) for part in command],
            capture_output=True,
            text=True,
            cwd=self.root_dir,
            env=self._environment(),
            timeout=120,
            check=False,
            user=self.os_user,
            group=self.os_user,
            extra_groups=[] if self.os_user is not None else None,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise RuntimeError(f"{Path(command[0]).name} failed ({result.returncode}): {output}")
        return result

    def initdb(self) -> None:
        """Create the data directory: checksums on, trust authentication, C locale."""
        self.run_as_server_user(
            POSTGRES_BIN / "initdb", "--pgdata", self.data_dir, "--data-checksums",
            "--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C",
            "--no-sync", "--no-instructions",
        )  # fmt: skip
        self.configure(self.settings)

    def base_backup_from(self, source: PostgresInstance) -> None:
        """Fill the data directory with a streaming base backup of source, set up as its standby."""
        self.run_as_server_user(
            POSTGRES_BIN / "pg_basebackup", "--pgdata", self.data_dir,
            "--host", LOOPBACK, "--port", str(source.port), "--username", "postgres",
            "--wal-method=stream", "--checkpoint=fast", "--write-recovery-conf", "--no-sync",
        )  # fmt: skip
        self.configure(self.settings)

    def configure(self, settings: dict[str, str]) -> None:
        """Append settings to postgresql.conf (read at the next start or reload)."""
        if not settings:
            return
        lines = "".join(f"{name} = '{value}'\n" for name, value in settings.items())
        with (self.data_dir / "postgresql.conf").open("a") as config:
            config.write(lines)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections; new port on bind failure."""
        for attempt in range(1, START_ATTEMPTS + 1):
            self._process = ServerProcess(
                self._command_line(),
                self.log_path,
                env=self._environment(),
                run_as=self.os_user,
                cwd=self.root_dir,
            )
            self._process.start()
            try:
                self._process.wait_ready(self._accepts_connections, START_TIMEOUT, self._what)
                return
            except PortInUseError:
                if attempt == START_ATTEMPTS:
                    raise
                self.port = free_port()

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster); SIGKILL of everything after a timeout."""
        if self._process is not None:
            self._process.stop(signal.SIGINT, timeout=STOP_TIMEOUT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop the server and delete its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root_dir, ignore_errors=True)

    @property
    def _what(self) -> str:
        return f"postgres {self.name} (port {self.port})"

    def _command_line(self) -> list[str]:
        return [
            str(POSTGRES_BIN / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-h", LOOPBACK, "-k", str(self.socket_dir),
        ]  # fmt: skip

    def _environment(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C"}

    # --- SQL ---------------------------------------------------------------------------------

    def dsn(self, user: str = "postgres", dbname: str = "postgres") -> str:
        """A libpq connection string for this instance over TCP."""
        return f"host={LOOPBACK} port={self.port} user={user} dbname={dbname} connect_timeout=5"

    def execute(
        self,
        sql: str,
        parameters: tuple[Any, ...] = (),
        *,
        user: str = "postgres",
        dbname: str = "postgres",
    ) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode; the rows it returns (empty when none)."""
        return run_statement(psycopg2.connect(self.dsn(user, dbname)), sql, parameters)

    def _accepts_connections(self) -> bool:
        try:
            psycopg2.connect(self.dsn()).close()
        except psycopg2.OperationalError:
            return False
        return True


class PostgresFactory(Protocol):
    """What the postgres_factory fixture yields: a new instance, initialized and started."""

    def __call__(
        self,
        name: str | None = None,
        *,
        settings: dict[str, str] | None = None,
        initdb: bool = True,
        start: bool = True,
    ) -> PostgresInstance: ...


def run_statement(connection: Any, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Run one autocommit statement on `connection`, close it, and return its rows."""
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql, parameters or None)
            return list(cursor.fetchall()) if cursor.description else []
    finally:
        connection.close()
