"""The `[keeper]` section of the keeper's TOML configuration.

::

    cluster = "main"
    [etcd]
    endpoints = ["http://10.0.0.1:2379"]

    [keeper]
    name = "pg1"                                   # keeper name, [a-z0-9][a-z0-9_-]*
    data_dir = "/var/lib/postgresql/17/main"       # PostgreSQL data directory
    host = "10.0.0.1"                              # address published to standbys and proxies
    port = 5432                                    # PostgreSQL port (default 5432)
    listen_addresses = "10.0.0.1"                  # default: host
    bin_dir = "/usr/lib/postgresql/17/bin"         # PostgreSQL programs (default: see below)
    state_dir = "/var/lib/postgresql/17/main.rhizome"  # default: <data_dir>.rhizome
    socket_dir = "/var/run/postgresql"             # default: state_dir
    superuser = "postgres"                         # default postgres
    superuser_password_file = "/etc/rhizome/superuser.pass"      # mode 0600, required
    replication_user = "replicator"                # default replicator
    replication_password_file = "/etc/rhizome/replication.pass"  # mode 0600, required
    log_level = "info"                             # debug, info, warning, error
    watchdog = "off"                               # kernel watchdog: off, automatic, required
    watchdog_device = "/dev/watchdog"              # the device the fencing guard holds
    pgbackrest_config = "/etc/pgbackrest/pgbackrest.conf"  # optional: see below
    clone_from = "upstream"                        # or "repository" (needs pgbackrest_config)
    tls_cert_file, tls_key_file, tls_ca_file       # optional: PostgreSQL's TLS (keeper/tls.py)

Without `bin_dir` the keeper takes Debian's directory of the major version
the data directory was made with (its PG_VERSION), else of the only major
version installed under /usr/lib/postgresql; with none or several installed
and no data directory yet, it asks for `bin_dir`. The Ansible role always
writes it (keeper_bin_dir, from the role's PostgreSQL version).

`pgbackrest_config` is the pgBackRest configuration file of this node (its
repository, and this node's data directory as pg1). It is what the keeper's
archive_command passes to pgBackRest while the spec's backup.enabled is true;
without it such a keeper archives nothing and reports the missing setting as
its last_error (docs/design/backup.md). It must exist and be readable by the
keeper's user; it holds no secret the keeper reads (a repository's cipher
passphrase stays in that file, never on a command line).

`clone_from` says where a standby without data gets it: `upstream` (the
default: pg_basebackup from the keeper it follows) or `repository` (pgBackRest
restores the newest backup on the upstream's timeline history as a standby,
which then replays the archive and streams from its upstream: adding a node
does not read the master's files). A repository clone that cannot be made (no
backup on that history, repository unreachable) falls back to pg_basebackup,
with the reason in the keeper's log.

Every problem raises `ConfigError` naming the setting and the fix; loading
the configuration creates nothing on disk.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhizome.api.config import ApiConfig, api_config
from rhizome.config import ConfigError, StoreConfig, load_file, read_secret_file, store_config
from rhizome.keeper.fencing import WATCHDOG_MODES, WatchdogMode
from rhizome.keeper.tls import TLS_KEYS, PostgresTls, postgres_tls, tls_requested
from rhizome.store.fields import KEEPER_NAME_PATTERN

# Debian's programs of PostgreSQL <major>: INSTALL_ROOT/<major>/bin.
INSTALL_ROOT = Path("/usr/lib/postgresql")
MAJOR_DIRECTORY = re.compile(r"\d+")
ROLE_NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}")
LOG_LEVELS = ("debug", "info", "warning", "error")
REQUIRED_PROGRAMS = ("postgres", "initdb", "pg_basebackup", "pg_rewind", "pg_controldata")
KEEPER_KEYS = {
    "name",
    "data_dir",
    "host",
    "port",
    "listen_addresses",
    "bin_dir",
    "state_dir",
    "socket_dir",
    "superuser",
    "superuser_password_file",
    "replication_user",
    "replication_password_file",
    "log_level",
    "watchdog",
    "watchdog_device",
    "pgbackrest_config",
    "clone_from",
    *TLS_KEYS,
}
CLONE_SOURCES = ("upstream", "repository")
DEFAULT_WATCHDOG_DEVICE = "/dev/watchdog"


@dataclass(frozen=True)
class KeeperConfig:
    """The keeper's own settings; passwords are never shown by repr()."""

    name: str
    data_dir: Path
    state_dir: Path
    socket_dir: Path
    host: str
    port: int
    listen_addresses: str
    bin_dir: Path
    superuser: str
    replication_user: str
    superuser_password: str = field(repr=False)
    replication_password: str = field(repr=False)
    log_level: str = "info"
    watchdog: WatchdogMode = "off"
    """Kernel watchdog mode (docs/fencing.md): off, automatic or required."""
    watchdog_device: Path = Path(DEFAULT_WATCHDOG_DEVICE)
    pgbackrest_config: Path | None = None
    """This node's pgBackRest configuration (archive_command); None: not configured."""
    clone_from: str = "upstream"
    """Where a standby without data is cloned from: upstream or repository."""
    tls: PostgresTls | None = None
    """PostgreSQL's TLS files (None: PostgreSQL without TLS)."""
    cluster: str = ""
    """The cluster's name (the file's top-level `cluster`): the default pgBackRest stanza."""

    def program(self, name: str) -> str:
        """Absolute path of a PostgreSQL program."""
        return str(self.bin_dir / name)

    @property
    def lock_file(self) -> Path:
        """The file locked while a keeper owns `data_dir` (next to it, survives its removal)."""
        return self.data_dir.with_name(self.data_dir.name + ".rhizome.lock")

    @property
    def passfile(self) -> Path:
        """The 0600 libpq password file for pg_basebackup, pg_rewind and primary_conninfo."""
        return self.state_dir / "pgpass"


@dataclass(frozen=True)
class Configuration:
    """Everything the keeper reads from its configuration file."""

    store: StoreConfig
    keeper: KeeperConfig
    api: ApiConfig


def load_configuration(path: str | Path) -> Configuration:
    """Read and check the whole file; raises ConfigError naming the setting and the fix."""
    source = str(path)
    data = load_file(path)
    store = store_config(data, source)
    section = data.get("keeper")
    if not isinstance(section, dict):
        raise ConfigError(f'{source}: add a [keeper] section with name = "..." and data_dir')
    keeper = dataclasses.replace(keeper_config(section, source), cluster=store.cluster)
    return Configuration(store=store, keeper=keeper, api=api_config(data, source, "keeper"))


def keeper_config(
    section: dict[str, Any], source: str, install_root: Path = INSTALL_ROOT
) -> KeeperConfig:
    """Validate the `[keeper]` section (`install_root`: where bin_dir's default is looked for)."""
    unknown = sorted(set(section) - KEEPER_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown [keeper] settings {unknown}; known: {sorted(KEEPER_KEYS)}"
        )
    name = _text(section, "name", source, None)
    if not KEEPER_NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{source}: [keeper] name {name!r} is invalid; use 1 to 63 lowercase letters, "
            "digits, '-' or '_', starting with a letter or digit"
        )
    data_dir = _data_dir(_text(section, "data_dir", source, None), source)
    host = _text(section, "host", source, None)
    state_dir = Path(_text(section, "state_dir", source, str(data_dir) + ".rhizome"))
    superuser = _role(section, "superuser", "postgres", source)
    replication_user = _role(section, "replication_user", "replicator", source)
    if superuser == replication_user:
        raise ConfigError(f"{source}: [keeper] superuser and replication_user must differ")
    if not state_dir.parent.is_dir():
        raise ConfigError(
            f"{source}: [keeper] state_dir {state_dir}: its parent directory does not exist;"
            " create it, owned by the PostgreSQL user"
        )
    return KeeperConfig(
        name=name,
        data_dir=data_dir,
        state_dir=_absolute(state_dir, "state_dir", source),
        socket_dir=_absolute(
            Path(_text(section, "socket_dir", source, str(state_dir))), "socket_dir", source
        ),
        host=host,
        port=_port(section.get("port", 5432), source),
        listen_addresses=_text(section, "listen_addresses", source, host),
        bin_dir=_bin_dir(section, data_dir, install_root, source),
        superuser=superuser,
        replication_user=replication_user,
        superuser_password=_secret(section, "superuser_password_file", "superuser password"),
        replication_password=_secret(section, "replication_password_file", "replication password"),
        log_level=_log_level(_text(section, "log_level", source, "info"), source),
        watchdog=_watchdog_mode(_text(section, "watchdog", source, "off"), source),
        watchdog_device=_absolute(
            Path(_text(section, "watchdog_device", source, DEFAULT_WATCHDOG_DEVICE)),
            "watchdog_device",
            source,
        ),
        pgbackrest_config=_pgbackrest_config(section, source),
        clone_from=_clone_from(section, source),
        tls=_postgres_tls(section, source),
    )


def _text(section: dict[str, Any], key: str, source: str, default: str | None) -> str:
    value = section.get(key, default)
    if value is None:
        raise ConfigError(f'{source}: [keeper] {key} is required; set {key} = "..."')
    if not isinstance(value, str) or not value or any(ord(char) < 32 for char in value):
        raise ConfigError(f'{source}: [keeper] {key} must be a non-empty one-line string ("...")')
    return value


def _absolute(path: Path, key: str, source: str) -> Path:
    if not path.is_absolute():
        raise ConfigError(f"{source}: [keeper] {key} {str(path)!r} must be an absolute path")
    return path


def _data_dir(text: str, source: str) -> Path:
    path = _absolute(Path(text), "data_dir", source)
    if not path.parent.is_dir():
        raise ConfigError(
            f"{source}: [keeper] data_dir {text}: its parent directory does not exist; "
            "create it, owned by the PostgreSQL user"
        )
    return path


def _port(value: object, source: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ConfigError(f"{source}: [keeper] port must be an integer from 1 to 65535")
    return value


def default_bin_dir(data_dir: Path, install_root: Path, source: str) -> str:
    """The programs of the data directory's major version, else of the only one installed."""
    try:
        major = (data_dir / "PG_VERSION").read_text().strip()
    except OSError:
        major = ""
    if MAJOR_DIRECTORY.fullmatch(major):
        return str(install_root / major / "bin")
    try:
        installed = sorted(
            entry.name for entry in install_root.iterdir() if MAJOR_DIRECTORY.fullmatch(entry.name)
        )
    except OSError:
        installed = []
    if len(installed) == 1:
        return str(install_root / installed[0] / "bin")
    found = f"versions {', '.join(installed)}" if installed else "no version"
    raise ConfigError(
        f"{source}: [keeper] bin_dir is not set and {install_root} has {found} to take it "
        f'from; set bin_dir = "{install_root}/<major version>/bin"'
    )


def _bin_dir(section: dict[str, Any], data_dir: Path, install_root: Path, source: str) -> Path:
    if "bin_dir" in section:
        text = _text(section, "bin_dir", source, None)
    else:
        text = default_bin_dir(data_dir, install_root, source)
    path = Path(text)
    missing = [name for name in REQUIRED_PROGRAMS if not os.access(path / name, os.X_OK)]
    if missing:
        raise ConfigError(
            f"{source}: [keeper] bin_dir {text} lacks {', '.join(missing)}; set bin_dir to "
            "the directory of the PostgreSQL programs (e.g. /usr/lib/postgresql/17/bin)"
        )
    return path


def _readable_file(section: dict[str, Any], key: str, source: str, fix: str) -> Path:
    path = _absolute(Path(_text(section, key, source, None)), key, source)
    if not os.access(path, os.R_OK) or not path.is_file():
        raise ConfigError(f"{source}: [keeper] {key} {path} is not a readable file; {fix}")
    return path


def _pgbackrest_config(section: dict[str, Any], source: str) -> Path | None:
    if "pgbackrest_config" not in section:
        return None
    return _readable_file(
        section, "pgbackrest_config", source,
        "write this node's pgBackRest configuration there (readable by the keeper's user) or"
        " remove the setting",
    )  # fmt: skip


def _postgres_tls(section: dict[str, Any], source: str) -> PostgresTls | None:
    if not tls_requested(section, source):
        return None
    fix = "put the PEM file there (readable by the keeper's user) or correct the path"
    cert_file, key_file, ca_file = (_readable_file(section, key, source, fix) for key in TLS_KEYS)
    return postgres_tls(cert_file, key_file, ca_file, source)


def _clone_from(section: dict[str, Any], source: str) -> str:
    value = _text(section, "clone_from", source, "upstream")
    if value not in CLONE_SOURCES:
        raise ConfigError(
            f"{source}: [keeper] clone_from {value!r} is invalid; use 'upstream' or 'repository'"
        )
    if value == "repository" and "pgbackrest_config" not in section:
        raise ConfigError(
            f"{source}: [keeper] clone_from 'repository' needs pgbackrest_config (this node's "
            "pgBackRest configuration); set it, or clone_from 'upstream'"
        )
    return value


def _role(section: dict[str, Any], key: str, default: str, source: str) -> str:
    name = _text(section, key, source, default)
    if not ROLE_NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"{source}: [keeper] {key} {name!r} is invalid; use lowercase letters, digits "
            "and '_', starting with a letter or '_'"
        )
    return name


def _secret(section: dict[str, Any], key: str, what: str) -> str:
    path = section.get(key)
    if not isinstance(path, str) or not path:
        raise ConfigError(
            f'[keeper] {key} is required; set {key} = "/path" to a file of mode 0600 '
            f"holding the {what} on its first line"
        )
    return read_secret_file(path, what)


def _log_level(text: str, source: str) -> str:
    if text not in LOG_LEVELS:
        raise ConfigError(f"{source}: [keeper] log_level must be one of {', '.join(LOG_LEVELS)}")
    return text


def _watchdog_mode(text: str, source: str) -> WatchdogMode:
    for mode in WATCHDOG_MODES:
        if text == mode:
            return mode
    raise ConfigError(
        f'{source}: [keeper] watchdog must be "off", "automatic" or "required" (got {text!r}):'
        ' "off" uses no kernel watchdog, "automatic" uses the device when it works,'
        ' "required" runs no primary without it'
    )
