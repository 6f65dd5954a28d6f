"""Configuration files shared by every rhizome program (TOML).

Every program reads one TOML file with the cluster name and how to reach
etcd, plus a section of its own::

    cluster = "main"            # /rhizome/<cluster>/ in etcd
    store_root = "/rhizome"     # optional

    [etcd]
    endpoints = ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
    username = "rhizome"                       # optional
    password_file = "/etc/rhizome/etcd.pass"   # with username; mode 0600
    ca_file = "/etc/rhizome/etcd-ca.pem"       # optional
    cert_file = "/etc/rhizome/etcd-client.pem" # optional, with key_file
    key_file = "/etc/rhizome/etcd-client.key"
    connect_timeout = 0.5
    request_timeout = 2.0
    endpoint_order = "spread"  # or "listed": see below
    api = "v3"                 # or "v2": etcd's v2 API (etcd 3.4/3.5 with --enable-v2)

Each agent starts at a random endpoint ("spread", the default), so that one
frozen or unreachable etcd member slows only some agents' first request after
it failed (every agent then moves on to a member that answers); "listed"
starts every agent at the first endpoint listed.

`api = "v2"` keeps the cluster's documents in etcd's v2 key space, through
python-etcd (rhizome.etcd_v2), for sites whose etcd still runs with v2; etcd
3.6 removed it. The two key spaces are separate: every agent and rhizomectl
of a cluster must use the same API (docs/runbooks/etcd-v2.md).

Secrets are never written in the file itself: only paths of files readable
by the program's user alone.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rhizome.etcd import EtcdClient, EtcdConfigurationError, EtcdSettings
from rhizome.etcd.interface import StoreClient
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.errors import StoreError
from rhizome.store.keys import DEFAULT_ROOT, ClusterKeys

ETCD_KEYS = {
    "endpoints",
    "username",
    "password_file",
    "ca_file",
    "cert_file",
    "key_file",
    "connect_timeout",
    "request_timeout",
    "endpoint_order",
    "api",
}
ETCD_APIS = ("v3", "v2")
LEASE_DIRECTORY = "_leases"
"""Under the store root: the markers of the v2 API's leases (rhizome.etcd_v2.leases)."""


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file, the setting and the fix."""


@dataclass(frozen=True)
class StoreConfig:
    """Where the cluster lives: etcd settings, cluster name and key root."""

    etcd: EtcdSettings
    cluster: str
    root: str = DEFAULT_ROOT
    api: str = "v3"

    def open(self) -> ClusterStore:
        return ClusterStore(open_client(self.etcd, self.api, self.root), self.cluster, self.root)


def open_client(settings: EtcdSettings, api: str, root: str = DEFAULT_ROOT) -> StoreClient:
    """The client of the chosen etcd API ("v3" or "v2")."""
    if api == "v2":
        from rhizome.etcd_v2 import EtcdV2Client  # python-etcd only where it is used

        return EtcdV2Client(settings, lease_directory=f"{root}/{LEASE_DIRECTORY}")
    return EtcdClient(settings)


def load_file(path: str | Path) -> dict[str, Any]:
    """Parse a TOML configuration file."""
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except FileNotFoundError as error:
        raise ConfigError(f"configuration file {path} does not exist") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"configuration file {path} is not valid TOML: {error}") from error


def read_secret_file(path: str, what: str) -> str:
    """Read a secret (first line, stripped) from a file nobody else may read."""
    try:
        status = os.stat(path)
        with open(path, encoding="utf-8") as file:
            secret = file.readline().strip()
    except OSError as error:
        raise ConfigError(f"cannot read the {what} file {path}: {error.strerror}") from error
    if status.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the {what} file {path} is readable by other users; run chmod 0600 {path}"
        )
    if not secret:
        raise ConfigError(f"the {what} file {path} is empty; write the {what} on its first line")
    return secret


def store_config(data: dict[str, Any], source: str) -> StoreConfig:
    """The `cluster`, `store_root` and `[etcd]` settings of a parsed configuration."""
    cluster = data.get("cluster")
    if not isinstance(cluster, str):
        raise ConfigError(f'{source}: set cluster = "NAME" (the cluster\'s name in etcd)')
    root = data.get("store_root", DEFAULT_ROOT)
    etcd = data.get("etcd")
    if not isinstance(etcd, dict):
        raise ConfigError(f'{source}: add an [etcd] section with endpoints = ["http://..."]')
    unknown = sorted(set(etcd) - ETCD_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown [etcd] settings {unknown}; known: {sorted(ETCD_KEYS)}"
        )
    api = etcd.get("api", "v3")
    if api not in ETCD_APIS:
        raise ConfigError(
            f'{source}: [etcd] api = {api!r} is unknown; use "v3" (the default) or "v2"'
            " (etcd's v2 API, etcd started with --enable-v2)"
        )
    try:
        ClusterKeys(cluster, root)
        settings = etcd_settings(etcd, source)
        return StoreConfig(etcd=settings, cluster=cluster, root=root, api=api)
    except (StoreError, EtcdConfigurationError, TypeError) as error:
        raise ConfigError(f"{source}: {error}") from error


def etcd_settings(etcd: dict[str, Any], source: str) -> EtcdSettings:
    endpoints = etcd.get("endpoints")
    if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
        raise ConfigError(f"{source}: [etcd] endpoints must be a list of URLs")
    password = None
    if "password_file" in etcd:
        password = read_secret_file(str(etcd["password_file"]), "etcd password")
    return EtcdSettings(
        endpoints=tuple(endpoints),
        username=etcd.get("username"),
        password=password,
        ca_file=etcd.get("ca_file"),
        cert_file=etcd.get("cert_file"),
        key_file=etcd.get("key_file"),
        connect_timeout=float(etcd.get("connect_timeout", 0.5)),
        request_timeout=float(etcd.get("request_timeout", 2.0)),
        endpoint_order=str(etcd.get("endpoint_order", "spread")),
    )
