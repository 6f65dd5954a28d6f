"""Command lines of the PostgreSQL programs the keeper runs (pure).

No password ever appears here: initdb reads the superuser's from a
temporary 0600 file, pg_basebackup and pg_rewind from the passfile named in
their connection string.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rhizome.keeper.conffiles import Upstream, conninfo_value
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.tls import peer_client_fields

POSTMASTER_DEATH_SIGNAL = "INT"
"""The postmaster gets SIGINT (fast shutdown) when the keeper dies: an orphaned
primary would otherwise accept writes while the sentinel fails over."""


def initdb_argv(keeper: KeeperConfig, password_file: Path) -> list[str]:
    return [
        keeper.program("initdb"),
        "--pgdata", str(keeper.data_dir),
        "--data-checksums",
        "--username", keeper.superuser,
        "--pwfile", str(password_file),
        "--auth-local", "scram-sha-256",
        "--auth-host", "scram-sha-256",
        "--encoding", "UTF8",
        "--locale", "C.UTF-8",
        "--no-instructions",
    ]  # fmt: skip


def postmaster_argv(keeper: KeeperConfig, pdeathsig_wrapper: str | None) -> list[str]:
    """The postmaster itself, under `setpriv --pdeathsig` when it is available."""
    command = [keeper.program("postgres"), "-D", str(keeper.data_dir)]
    if pdeathsig_wrapper is None:
        return command
    return [pdeathsig_wrapper, f"--pdeathsig={POSTMASTER_DEATH_SIGNAL}", "--", *command]


def find_pdeathsig_wrapper() -> str | None:
    """util-linux's setpriv, which sets the parent-death signal, then execs."""
    return shutil.which("setpriv")


def upstream_conninfo(
    keeper: KeeperConfig, upstream: Upstream, user: str, dbname: str, purpose: str
) -> str:
    """A libpq connection string to the upstream, with the password from the passfile.

    The application name says what connects: only the standby's own WAL receiver
    may carry the bare keeper name, which `synchronous_standby_names` and the
    master's list of streaming standbys match on.
    """
    fields = {
        "host": upstream.host,
        "port": str(upstream.port),
        "user": user,
        "dbname": dbname,
        "passfile": str(keeper.passfile),
        "application_name": f"{keeper.name}-{purpose}",
        "connect_timeout": "5",
        **peer_client_fields(keeper.tls),
    }
    return " ".join(f"{name}={conninfo_value(value)}" for name, value in fields.items())


def basebackup_argv(keeper: KeeperConfig, upstream: Upstream) -> list[str]:
    conninfo = upstream_conninfo(
        keeper, upstream, keeper.replication_user, "replication", "basebackup"
    )
    return [
        keeper.program("pg_basebackup"),
        "--pgdata", str(keeper.data_dir),
        "--dbname", conninfo,
        "--wal-method=stream",
        "--checkpoint=fast",
        "--no-password",
    ]  # fmt: skip


def rewind_argv(keeper: KeeperConfig, upstream: Upstream) -> list[str]:
    conninfo = upstream_conninfo(keeper, upstream, keeper.superuser, "postgres", "rewind")
    return [
        keeper.program("pg_rewind"),
        "--target-pgdata", str(keeper.data_dir),
        "--source-server", conninfo,
    ]  # fmt: skip
