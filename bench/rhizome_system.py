"""rhizome under test: tests/harness's LocalCluster (three keepers, one sentinel) plus one
rhizome-proxy, with the default spec. Clients write through the proxy's read-write port.

Offers what bench/side_by_side.py asks of each system: the proxy endpoint, the
current primary, a health wait, faults on the primary's node, a switchover, and
the agent processes whose idle cost is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.probes import Endpoint
from tests.harness.agents import etcd_section
from tests.harness.cluster import LocalCluster, wait_for
from tests.harness.etcd import EtcdServer, http_get
from tests.harness.keeper import fencing_guards
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.processes import ServerProcess
from tests.harness.tls import TlsFiles

HEALTH_TIMEOUT = 180.0


class RhizomeSystem:
    name = "rhizome"

    def __init__(
        self,
        directory: Path,
        etcd: EtcdServer,
        spec: dict[str, Any] | None = None,
        keeper_count: int = 3,
        etcd_api: str = "v3",
        tls: TlsFiles | None = None,
        etcd_urls: list[str] | None = None,
    ) -> None:
        """`etcd_urls`: every member of a multi-member etcd (default: `etcd`'s URL only)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.cluster = LocalCluster(
            directory,
            etcd,
            keeper_count=keeper_count,
            spec=spec,
            etcd_api=etcd_api,
            etcd_urls=etcd_urls,
        )
        self.etcd = etcd
        self.etcd_api = etcd_api
        self.tls = tls
        if tls is not None:  # PostgreSQL's TLS, passed through by a proxy that requires it
            for keeper in self.cluster.keepers.values():
                keeper.use_tls(tls.server_cert_file, tls.server_key_file, tls.ca_file)
        self.proxy_port = free_port()
        self.proxy_read_only_port = free_port()
        self.proxy_http_port = free_port()
        config = directory / "proxy.toml"
        config.write_text(
            f'cluster = "main"\n{etcd_section(self.cluster.etcd_urls, etcd_api)}'
            f'[proxy]\nid = "bench"\nread_write_listen = "{LOOPBACK}:{self.proxy_port}"\n'
            f'read_only_listen = "{LOOPBACK}:{self.proxy_read_only_port}"\n'
            f"require_tls = {'true' if tls else 'false'}\n"
            f'[api]\nlisten = "{LOOPBACK}:{self.proxy_http_port}"\n'
        )
        command = [sys.executable, "-m", "rhizome.proxy.main", "-c", str(config)]
        self.proxy = ServerProcess(command, directory / "proxy.log", env=dict(os.environ))

    @property
    def endpoint(self) -> Endpoint:
        """The proxy's read-write port (verified TLS when the system runs with it)."""
        return self.proxy_endpoint(self.proxy_port)

    @property
    def read_only_endpoint(self) -> Endpoint:
        return self.proxy_endpoint(self.proxy_read_only_port)

    def proxy_endpoint(self, port: int) -> Endpoint:
        any_keeper = next(iter(self.cluster.keepers.values()))
        options: tuple[tuple[str, str], ...] = ()
        if self.tls is not None:
            options = (("sslmode", "verify-full"), ("sslrootcert", str(self.tls.ca_file)))
        return Endpoint(LOOPBACK, port, any_keeper.superuser_password, options)

    def start(self) -> None:
        self.cluster.start()
        self.proxy.start()
        self.wait_healthy()

    def stop(self) -> None:
        self.proxy.stop()
        self.cluster.stop()

    # -- observing -------------------------------------------------------------------

    def primary(self) -> str:
        return self.cluster.wait_for_master(HEALTH_TIMEOUT)

    def proxy_target(self) -> str | None:
        try:
            status, body = http_get(f"http://{LOOPBACK}:{self.proxy_http_port}/health")
        except OSError:
            return None
        return json.loads(body).get("read_write_target") if status == 200 else None

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> str:
        """Until a master runs, both standbys stream from it and the proxy routes to it."""
        master = self.cluster.wait_for_master(timeout)
        self.cluster.wait_for_streaming(len(self.cluster.keepers) - 1, timeout)
        keeper = self.cluster.keepers[master]
        wait_for(
            lambda: self.proxy_target() == f"{master} ({keeper.host}:{keeper.port})",
            timeout,
            f"rhizome-proxy to route to {master}",
        )
        return master

    def diagnostics(self) -> str:
        return self.cluster.diagnostics() + f"\n--- proxy ---\n{self.proxy.log_tail()}"

    # -- faults and operations -------------------------------------------------------

    def host_death(self, node: str) -> Callable[[], None]:
        keeper = self.cluster.keepers[node]
        keeper.kill()
        return keeper.start

    def postgres_crash(self, node: str) -> Callable[[], None]:
        self.cluster.keepers[node].crash_postgres()
        return lambda: None

    def freeze(self, node: str) -> Callable[[], None]:
        keeper = self.cluster.keepers[node]
        keeper.freeze()
        return keeper.thaw

    def switchover(self) -> None:
        """`rhizomectl switchover --wait`: returns once the sentinel reports it done."""
        endpoints = ",".join(self.cluster.etcd_urls)
        command = [sys.executable, "-m", "rhizome.cli.main", "--endpoints", endpoints]
        command += ["--cluster", "main", "--etcd-api", self.etcd_api]
        command += ["switchover", "--wait", "--timeout", "60"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"rhizomectl switchover failed: {result.stdout}{result.stderr}")

    def agent_processes(self) -> dict[str, list[int]]:
        """Agent kind -> PIDs (PostgreSQL itself excluded; each keeper's fencing guard)."""
        keepers = [keeper.pid for keeper in self.cluster.keepers.values()]
        return {
            "keeper": keepers,
            "fencing guard": [pid for keeper in keepers for pid in fencing_guards(keeper)],
            "sentinel": [sentinel.process.pid for sentinel in self.cluster.sentinels],
            "rhizome-proxy": [self.proxy.pid],
        }
