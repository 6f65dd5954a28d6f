"""The proxy's configuration: the shared TOML file plus a [proxy] section.

::

    cluster = "main"
    [etcd]
    endpoints = ["http://10.0.0.1:2379"]

    [proxy]
    id = "proxy1"                      # its key: /rhizome/<cluster>/proxies/<id>
    read_write_listen = "0.0.0.0:5432" # forwards to the master
    read_only_listen = "0.0.0.0:5433"  # optional: balances over standbys
    fallback_to_master = false         # read-only port: use the master when no standby qualifies
    max_standby_lag_bytes = 16777216   # read-only port: standbys further behind are skipped
    max_connections = 2000             # client connections served at once (held included)
    connect_timeout = 3.0              # seconds to connect to a PostgreSQL server
    require_tls = false                # refuse clients that do not ask for TLS first
    keepalive_idle = 10                # TCP keepalive on both sides, seconds
    keepalive_interval = 5
    keepalive_count = 3

    [api]
    listen = "127.0.0.1:9642"          # /health, /liveness, /readiness, /metrics

The timing (lease, renewal, close deadline, hold timeout) is not here: it is
the cluster's, read from the spec in the store and followed when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhizome.api.config import ApiConfig, ListenAddress, api_config, parse_listen_address
from rhizome.config import ConfigError, StoreConfig, load_file, store_config
from rhizome.store.errors import StoreError
from rhizome.store.keys import check_name


@dataclass(frozen=True)
class KeepaliveSettings:
    """TCP keepalive of client and server sockets (seconds, probes)."""

    idle: int = 10
    interval: int = 5
    count: int = 3


@dataclass(frozen=True)
class ProxyConfig:
    """The [proxy] section, validated."""

    id: str
    read_write_listen: ListenAddress
    read_only_listen: ListenAddress | None = None
    fallback_to_master: bool = False
    max_standby_lag_bytes: int = 16 * 1024 * 1024
    max_connections: int = 2000
    api: ApiConfig = field(default_factory=lambda: ApiConfig(listen=None))
    """/health, /liveness, /readiness and /metrics (the [api] section)."""
    connect_timeout: float = 3.0
    keepalive: KeepaliveSettings = KeepaliveSettings()
    require_tls: bool = False
    """Serve only clients whose first packet asks for encryption (TLS passes through to
    PostgreSQL, which must run with ssl = on); others get an error naming this setting."""


PROXY_KEYS = {
    "id",
    "read_write_listen",
    "read_only_listen",
    "fallback_to_master",
    "max_standby_lag_bytes",
    "max_connections",
    "connect_timeout",
    "require_tls",
    "keepalive_idle",
    "keepalive_interval",
    "keepalive_count",
}


def load_proxy_config(path: str | Path) -> tuple[StoreConfig, ProxyConfig]:
    """Read the whole file: where the store is, and the [proxy] section."""
    data = load_file(path)
    source = str(path)
    return store_config(data, source), proxy_config(data, source)


MOVED_KEYS = {"http_listen": "[api] listen"}


def proxy_config(data: dict[str, Any], source: str) -> ProxyConfig:
    section = data.get("proxy")
    if not isinstance(section, dict):
        raise ConfigError(
            f'{source}: add a [proxy] section with id = "NAME" and read_write_listen = "HOST:PORT"'
        )
    for key, place in MOVED_KEYS.items():
        if key in section:
            raise ConfigError(f"{source}: [proxy] {key} has moved; write it as {place}")
    unknown = sorted(set(section) - PROXY_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown [proxy] settings {unknown}; known: {sorted(PROXY_KEYS)}"
        )
    reader = SectionReader(section, source)
    read_only = section.get("read_only_listen")
    return ProxyConfig(
        id=reader.identifier(),
        read_write_listen=reader.address("read_write_listen", section.get("read_write_listen")),
        read_only_listen=None
        if read_only is None
        else reader.address("read_only_listen", read_only),
        fallback_to_master=reader.boolean("fallback_to_master", False),
        max_standby_lag_bytes=reader.integer("max_standby_lag_bytes", 16 * 1024 * 1024, 0),
        max_connections=reader.integer("max_connections", 2000, 1),
        api=api_config(data, source, "proxy"),
        connect_timeout=reader.seconds("connect_timeout", 3.0),
        keepalive=KeepaliveSettings(
            idle=reader.integer("keepalive_idle", 10, 1),
            interval=reader.integer("keepalive_interval", 5, 1),
            count=reader.integer("keepalive_count", 3, 1),
        ),
        require_tls=reader.boolean("require_tls", False),
    )


class SectionReader:
    """Typed reads of [proxy] settings; every error names the setting and the fix."""

    def __init__(self, section: dict[str, Any], source: str) -> None:
        self.section = section
        self.source = source

    def fail(self, name: str, problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.source}: [proxy] {name} {problem}; {fix}")

    def identifier(self) -> str:
        value = self.section.get("id")
        if not isinstance(value, str):
            raise self.fail("id", "is missing", 'set id = "NAME", unique among the proxies')
        try:
            return check_name("proxy", value)
        except StoreError as error:
            raise self.fail("id", f"is invalid ({error})", "choose another name") from error

    def address(self, name: str, value: object) -> ListenAddress:
        return parse_listen_address(value, f"[proxy] {name}", self.source, "0.0.0.0:5432")

    def boolean(self, name: str, default: bool) -> bool:
        value = self.section.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, f"is {value!r}, not a boolean", "write true or false")
        return value

    def integer(self, name: str, default: int, minimum: int) -> int:
        value = self.section.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(name, f"is {value!r}", f"write a whole number of at least {minimum}")
        return value

    def seconds(self, name: str, default: float) -> float:
        value = self.section.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 600:
            raise self.fail(name, f"is {value!r}", "write a number of seconds in (0, 600]")
        return float(value)
