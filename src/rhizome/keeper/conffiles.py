"""postgresql.conf and pg_hba.conf, rendered from the spec and the assignment.

The keeper owns both files in the data directory. `render_configuration` is
pure; `write_configuration` replaces a file only when its content changes,
and says whether anything changed (so the caller knows to reload).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rhizome.backup.archiving import Archiving, archiving
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.tls import peer_client_fields, peer_connection_type, server_parameters
from rhizome.spec import ClusterSpec, HbaEntry
from rhizome.spec.postgres import ParameterValue

POSTGRESQL_CONF = "postgresql.conf"
PG_HBA_CONF = "pg_hba.conf"
STANDBY_SIGNAL = "standby.signal"

DEFAULT_PARAMETERS: dict[str, ParameterValue] = {
    "wal_level": "replica",
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "wal_keep_size": "128MB",
    "wal_retrieve_retry_interval": "1s",
    "password_encryption": "scram-sha-256",
}
"""Parameters rhizome sets unless the spec's pg_parameters says otherwise."""

SEALED_HBA_HEADING = (
    "# Sealed for a major-upgrade cutover: only the spec's entries of the superuser\n"
    "# (the logical replication to the successor) are kept; clients cannot log in.\n"
)


@dataclass(frozen=True)
class Upstream:
    """The keeper a standby streams from, as its keeper document publishes it."""

    name: str
    host: str
    port: int


@dataclass(frozen=True)
class ConfigRequest:
    """What the assignment asks of the configuration."""

    upstream: Upstream | None = None
    """Standby: the upstream to stream from; None for a primary (or unknown upstream)."""
    standby: bool = False
    """Run as a standby (standby.signal present)."""
    synchronous_standbys: tuple[str, ...] = ()
    """Primary: the names to list in synchronous_standby_names."""
    sealed: bool = False
    """Primary sealed for a cutover: pg_hba.conf keeps only the keeper's, replication
    and superuser entries, and transactions are read-only by default
    (KeeperAssignment.sealed, seal.py)."""


@dataclass(frozen=True)
class RenderedConfiguration:
    postgresql_conf: str
    pg_hba_conf: str


def quote_value(value: ParameterValue) -> str:
    """A postgresql.conf value: booleans on/off, numbers bare, strings single-quoted."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def conninfo_value(value: str) -> str:
    """A libpq connection string value, single-quoted."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def synchronous_standby_names(names: Iterable[str]) -> str:
    """'FIRST n ("a", "b")' naming every standby, or '' for none."""
    listed = list(names)
    if not listed:
        return ""
    quoted = ", ".join(f'"{name}"' for name in listed)
    return f"FIRST {len(listed)} ({quoted})"


def primary_conninfo(keeper: KeeperConfig, upstream: Upstream) -> str:
    """How a standby connects to its upstream: the password comes from the passfile."""
    fields = {
        "host": upstream.host,
        "port": str(upstream.port),
        "user": keeper.replication_user,
        "passfile": str(keeper.passfile),
        "application_name": keeper.name,
        "connect_timeout": "2",
        "keepalives_idle": "5",
        "keepalives_interval": "2",
        "keepalives_count": "3",
        **peer_client_fields(keeper.tls),
    }
    return " ".join(f"{name}={conninfo_value(value)}" for name, value in fields.items())


def slot_name(keeper_name: str) -> str:
    """The replication slot of a keeper: its name, with '-' (not allowed in slots) as '_'."""
    return keeper_name.replace("-", "_")


def managed_parameters(keeper: KeeperConfig, request: ConfigRequest) -> dict[str, ParameterValue]:
    """The parameters the keeper controls, for this keeper and assignment."""
    managed: dict[str, ParameterValue] = {
        "listen_addresses": keeper.listen_addresses,
        "port": keeper.port,
        "unix_socket_directories": str(keeper.socket_dir),
        "cluster_name": keeper.name,
        "hot_standby": True,
        "wal_log_hints": True,
        "synchronous_standby_names": synchronous_standby_names(request.synchronous_standbys),
        "recovery_target_timeline": "latest",
        **server_parameters(keeper.tls),
    }
    if request.upstream is not None:
        managed["primary_conninfo"] = primary_conninfo(keeper, request.upstream)
        managed["primary_slot_name"] = slot_name(keeper.name)
    if request.sealed:
        managed["default_transaction_read_only"] = True  # seal.py: even a late login
    return managed


def keeper_archiving(keeper: KeeperConfig, spec: ClusterSpec) -> Archiving:
    """This keeper's archiving parameters (rhizome.backup.archiving), or why none."""
    return archiving(spec.backup, keeper.cluster, keeper.pgbackrest_config, keeper.data_dir)


def hba_line(entry: HbaEntry) -> str:
    """One pg_hba.conf line for a spec entry."""
    fields = [entry.type, entry.database, entry.user]
    if entry.address is not None:
        fields.append(entry.address)
    fields.append(entry.method)
    fields.extend(f'{name}="{value}"' for name, value in entry.options.items())
    return "   ".join(fields)


def render_configuration(
    keeper: KeeperConfig, spec: ClusterSpec, request: ConfigRequest, tls_digest: str | None = None
) -> RenderedConfiguration:
    """Both files' content (pure); `tls_digest` is tls.files_digest of the TLS files."""
    defaults = {
        name: value for name, value in DEFAULT_PARAMETERS.items() if name not in spec.pg_parameters
    }
    managed = {**managed_parameters(keeper, request), **keeper_archiving(keeper, spec).parameters}
    postgresql_conf = postgresql_conf_text(
        keeper.name, defaults, dict(sorted(spec.pg_parameters.items())), managed, tls_digest
    )
    return RenderedConfiguration(postgresql_conf, pg_hba_conf_text(keeper, spec, request))


def postgresql_conf_text(
    keeper_name: str,
    defaults: dict[str, ParameterValue],
    spec_parameters: dict[str, ParameterValue],
    managed: dict[str, ParameterValue],
    tls_digest: str | None,
) -> str:
    lines = [
        f"# Written by rhizome-keeper {keeper_name}: every change here is overwritten.",
        "# Change parameters in the cluster spec (pg_parameters) instead.",
        "",
        "# Defaults of rhizome (the spec may override them)",
        *_assignments(defaults),
        "",
        "# The cluster spec's pg_parameters",
        *_assignments(spec_parameters),
        "",
        "# Managed by the keeper",
        *_assignments(managed),
    ]
    if tls_digest:
        lines.append(
            "# The TLS files' digest: new files change it, and the keeper reloads PostgreSQL"
        )
        lines.append(f"# tls_files_digest = {tls_digest}")
    return "\n".join(lines) + "\n"


def pg_hba_conf_text(keeper: KeeperConfig, spec: ClusterSpec, request: ConfigRequest) -> str:
    peer_type = peer_connection_type(keeper.tls)
    return "".join([
        f"# Written by rhizome-keeper {keeper.name}: every change here is overwritten.\n",
        "# Change the entries in the cluster spec (pg_hba) instead.\n\n",
        "# The keeper's own connections, over its Unix socket\n",
        f"local   all   {keeper.superuser}   scram-sha-256\n\n",
        SEALED_HBA_HEADING if request.sealed else "# The cluster spec's pg_hba entries\n",
        *(f"{hba_line(entry)}\n" for entry in spec.pg_hba
          if not request.sealed or entry.user == keeper.superuser),
        "\n# Replication (standbys, pg_basebackup) and pg_rewind between the cluster's keepers\n",
        f"{peer_type:<7s} replication   {keeper.replication_user}   all   scram-sha-256\n",
        f"{peer_type:<7s} postgres      {keeper.superuser}   all   scram-sha-256\n",
    ])  # fmt: skip


def _assignments(parameters: dict[str, ParameterValue]) -> list[str]:
    return [f"{name} = {quote_value(value)}" for name, value in parameters.items()]


def configuration_differs(data_dir: Path, rendered: RenderedConfiguration, standby: bool) -> bool:
    """Whether the files on disk (or standby.signal) differ from what is wanted."""
    if (data_dir / STANDBY_SIGNAL).exists() != standby:
        return True
    for name, content in _files(rendered):
        try:
            if (data_dir / name).read_text(encoding="utf-8") != content:
                return True
        except OSError:
            return True
    return False


def write_configuration(data_dir: Path, rendered: RenderedConfiguration, standby: bool) -> bool:
    """Write both files and standby.signal as wanted; True when anything changed."""
    changed = False
    for name, content in _files(rendered):
        changed |= _replace_if_different(data_dir / name, content)
    signal_file = data_dir / STANDBY_SIGNAL
    if standby and not signal_file.exists():
        signal_file.touch(mode=0o600)
        changed = True
    elif not standby and signal_file.exists():
        signal_file.unlink()
        changed = True
    return changed


def _files(rendered: RenderedConfiguration) -> list[tuple[str, str]]:
    return [(POSTGRESQL_CONF, rendered.postgresql_conf), (PG_HBA_CONF, rendered.pg_hba_conf)]


def _replace_if_different(path: Path, content: str) -> bool:
    try:
        if path.read_text(encoding="utf-8") == content:
            return False
    except OSError:
        pass
    temporary = path.with_name(path.name + ".rhizome-new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(content)
    os.replace(temporary, path)
    return True
