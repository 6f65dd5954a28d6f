"""What every rhizomectl command works with: the cluster's store and the output streams.

The store settings come from the shared TOML configuration (see
`rhizome.config`): `--config FILE`, else $RHIZOME_CONFIG, else
/etc/rhizome/rhizomectl.toml. `--endpoints`, `--cluster` and `--etcd-api`
override the file; with the first two given no file is needed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from rhizome.config import ConfigError, StoreConfig, load_file, store_config
from rhizome.store.cluster_store import ClusterStore

DEFAULT_CONFIG_PATH = "/etc/rhizome/rhizomectl.toml"
CONFIG_ENVIRONMENT = "RHIZOME_CONFIG"
COMMAND_LINE = "the command line"


@dataclass(frozen=True)
class StoreOptions:
    """The global options that say where the cluster lives."""

    config: str | None = None
    endpoints: str | None = None
    cluster: str | None = None
    etcd_api: str | None = None


def split_endpoints(text: str) -> list[str]:
    """The URLs of `--endpoints URL,URL`."""
    endpoints = [endpoint.strip() for endpoint in text.split(",") if endpoint.strip()]
    if not endpoints:
        raise ConfigError("--endpoints needs at least one URL, e.g. http://10.0.0.1:2379")
    return endpoints


def resolve_store_config(
    options: StoreOptions, environment: Mapping[str, str] = os.environ
) -> StoreConfig:
    """The store settings from the configuration file and the overriding options."""
    named_path = options.config or environment.get(CONFIG_ENVIRONMENT)
    path = named_path or DEFAULT_CONFIG_PATH
    self_sufficient = options.endpoints is not None and options.cluster is not None
    if self_sufficient and named_path is None and not os.path.exists(path):
        return store_config(overridden({}, options), COMMAND_LINE)
    try:
        data = load_file(path)
    except ConfigError as error:
        if named_path is None and not os.path.exists(path):
            raise ConfigError(
                f"{error}; pass --config FILE, set {CONFIG_ENVIRONMENT}, "
                "or give --endpoints URL,URL and --cluster NAME"
            ) from error
        raise
    return store_config(overridden(data, options), path)


def overridden(data: dict[str, Any], options: StoreOptions) -> dict[str, Any]:
    """The configuration data with `--endpoints`, `--cluster` and `--etcd-api` applied."""
    result = dict(data)
    if options.cluster is not None:
        result["cluster"] = options.cluster
    etcd = result.get("etcd")
    etcd = {**(etcd if isinstance(etcd, dict) else {})}
    if options.endpoints is not None:
        etcd["endpoints"] = split_endpoints(options.endpoints)
    if options.etcd_api is not None:
        etcd["api"] = options.etcd_api
    if etcd:
        result["etcd"] = etcd
    return result


@dataclass
class Context:
    """The store of the cluster a command acts on, and where it writes."""

    store: ClusterStore
    out: TextIO
    err: TextIO
    clock: Callable[[], float] = field(default=time.time)

    @property
    def cluster(self) -> str:
        return self.store.keys.cluster

    def say(self, text: str = "") -> None:
        """A line of the command's output."""
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        """A line the operator should notice, on stderr so that output stays parseable."""
        print(f"rhizomectl: warning: {text}", file=self.err)


@dataclass
class Terminal:
    """Where a command that needs no store writes (rhizomectl upgrade ...: only PostgreSQL)."""

    out: TextIO
    err: TextIO

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"rhizomectl: warning: {text}", file=self.err, flush=True)
