"""Run rhizome agents (sentinel, proxy) as real processes for integration tests."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.harness.etcd import EtcdServer
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.processes import ServerProcess


def etcd_section(etcd_urls: list[str], api: str = "v3") -> str:
    """The [etcd] section of an agent's TOML configuration (api: etcd's v3 or v2 API)."""
    endpoints = ", ".join(f'"{url}"' for url in etcd_urls)
    return f'[etcd]\nendpoints = [{endpoints}]\nrequest_timeout = 1.0\napi = "{api}"\n'


def shared_config(etcd_urls: list[str], cluster: str = "main", api: str = "v3") -> str:
    """The cluster and [etcd] part every agent's TOML configuration starts with."""
    return f'cluster = "{cluster}"\n\n' + etcd_section(etcd_urls, api)


class SentinelProcess:
    """`rhizome-sentinel` in its own process group, logging to a file."""

    def __init__(
        self,
        directory: Path,
        sentinel_id: str,
        etcd_urls: list[str],
        cluster: str = "main",
        etcd_api: str = "v3",
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.sentinel_id = sentinel_id
        self.config_path = directory / f"{sentinel_id}.toml"
        self.api_port = free_port()
        self.config_path.write_text(
            shared_config(etcd_urls, cluster, etcd_api) + f'\n[sentinel]\nid = "{sentinel_id}"\n'
            f'[api]\nlisten = "{LOOPBACK}:{self.api_port}"\n'
        )
        argv = [sys.executable, "-m", "rhizome.sentinel.main", "--config", str(self.config_path)]
        self.process = ServerProcess(argv, directory / f"{sentinel_id}.log")

    @classmethod
    def for_etcd(
        cls,
        directory: Path,
        sentinel_id: str,
        etcd: EtcdServer,
        cluster: str = "main",
        etcd_api: str = "v3",
    ) -> SentinelProcess:
        return cls(directory, sentinel_id, [etcd.client_url], cluster, etcd_api)

    def start(self) -> SentinelProcess:
        self.process.start()
        return self

    def log_text(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()
