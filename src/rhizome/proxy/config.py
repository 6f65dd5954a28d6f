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
    http_listen = "127.0.0.1:9642"     # /health and /metrics
    connect_timeout = 3.0              # seconds to connect to a PostgreSQL server
    keepalive_idle = 10                # TCP keepalive on both sides, seconds
    keepalive_interval = 5
    keepalive_count = 3

The timing (lease, renewal, close deadline, hold timeout) is not here: it is
the cluster's, read from the spec in the store and followed when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rhizome.config import ConfigError, StoreConfig, load_file, store_config
from rhizome.store.errors import StoreError
from rhizome.store.keys import check_name

DEFAULT_HTTP_LISTEN = "127.0.0.1:9642"


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


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
    http_listen: ListenAddress | None = None
    connect_timeout: float = 3.0
    keepalive: KeepaliveSettings = KeepaliveSettings()


PROXY_KEYS = {
    "id",
    "read_write_listen",
    "read_only_listen",
    "fallback_to_master",
    "max_standby_lag_bytes",
    "max_connections",
    "http_listen",
    "connect_timeout",
    "keepalive_idle",
    "keepalive_interval",
    "keepalive_count",
}


def load_proxy_config(path: str | Path) -> tuple[StoreConfig, ProxyConfig]:
    """Read the whole file: where the store is, and the [proxy] section."""
    data = load_file(path)
    source = str(path)
    return store_config(data, source), proxy_config(data, source)


def proxy_config(data: dict[str, Any], source: str) -> ProxyConfig:
    section = data.get("proxy")
    if not isinstance(section, dict):
        raise ConfigError(
            f'{source}: add a [proxy] section with id = "NAME" and read_write_listen = "HOST:PORT"'
        )
    unknown = sorted(set(section) - PROXY_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown [proxy] settings {unknown}; known: {sorted(PROXY_KEYS)}"
        )
    reader = SectionReader(section, source)
    read_only = section.get("read_only_listen")
    http = section.get("http_listen", DEFAULT_HTTP_LISTEN)
    return ProxyConfig(
        id=reader.identifier(),
        read_write_listen=reader.address("read_write_listen", section.get("read_write_listen")),
        read_only_listen=None
        if read_only is None
        else reader.address("read_only_listen", read_only),
        fallback_to_master=reader.boolean("fallback_to_master", False),
        max_standby_lag_bytes=reader.integer("max_standby_lag_bytes", 16 * 1024 * 1024, 0),
        max_connections=reader.integer("max_connections", 2000, 1),
        http_listen=None if http in ("", "off") else reader.address("http_listen", http),
        connect_timeout=reader.seconds("connect_timeout", 3.0),
        keepalive=KeepaliveSettings(
            idle=reader.integer("keepalive_idle", 10, 1),
            interval=reader.integer("keepalive_interval", 5, 1),
            count=reader.integer("keepalive_count", 3, 1),
        ),
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
        fix = f'write {name} = "HOST:PORT", e.g. "0.0.0.0:5432"'
        if not isinstance(value, str):
            raise self.fail(name, "is missing or not a string", fix)
        host, separator, port_text = value.rpartition(":")
        host = host.strip("[]")
        if not separator or not host or not port_text.isdigit():
            raise self.fail(name, f"is {value!r}, not HOST:PORT", fix)
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise self.fail(name, f"has port {port}, outside 1..65535", fix)
        return ListenAddress(host, port)

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
