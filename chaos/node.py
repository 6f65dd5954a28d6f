"""One database node in its own network namespace: an etcd member, a keeper with its
PostgreSQL (as the postgres user), a sentinel and a proxy, with the configuration
files the agents read when deployed (built by tests/harness where a builder exists).

Every process runs through `ip netns exec NODE ...`, which execs in place, so the
harness's process-group fault injection (freeze, kill of a whole tree) applies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from chaos.api_security import KEEPER_API_PORT, PROXY_API_PORT, ApiSecurity
from chaos.network import ETCD_CLIENT_PORT, ETCD_PEER_PORT, as_user, in_namespace
from tests.harness.agents import shared_config
from tests.harness.etcd import EtcdServer, _etcd_free_environment
from tests.harness.keeper import OS_USER, PYTHON, SUPERUSER, KeeperProcess
from tests.harness.processes import ServerProcess, is_alive

POSTGRES_PORT = 5432
PROXY_PORT = 6432


class NodeEtcd(EtcdServer):
    """An etcd member listening on its node's address, inside the node's namespace."""

    def __init__(self, name: str, base_dir: Path, namespace: str, address: str) -> None:
        super().__init__(name, base_dir, cluster_token="rhizome-chaos")
        self.namespace = namespace
        self.address = address
        self.client_port, self.peer_port = ETCD_CLIENT_PORT, ETCD_PEER_PORT

    @property
    def client_url(self) -> str:
        return f"http://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:{self.peer_port}"

    def launch(self) -> None:
        argv = in_namespace(self.namespace, self._command_line())
        self._process = ServerProcess(argv, self.log_path, env=_etcd_free_environment())
        self._process.start()


class NodeKeeper(KeeperProcess):
    """A keeper (and its PostgreSQL) on the node's address, run as postgres in the namespace."""

    def __init__(self, name: str, endpoints: list[str], log_dir: Path, namespace: str,
                 address: str, password: str, api: ApiSecurity | None = None) -> None:  # fmt: skip
        self.api = api  # before the base class writes the configuration a first time
        super().__init__(name, endpoints, log_dir, superuser_password=password, log_level="info")
        self.namespace = namespace
        self.host = address
        self.port = POSTGRES_PORT
        self.write_config()

    def config_text(self) -> str:
        text = super().config_text()
        if self.api is None:
            return text
        return text.split("[api]")[0] + self.api.section(self.host, KEEPER_API_PORT)

    def start(self) -> None:
        if self.is_running:
            raise RuntimeError(f"keeper {self.name} already runs")
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        if "PYTHONPATH" in os.environ:
            environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
        program = [PYTHON, "-m", "rhizome.keeper.main", "--config", str(self.config_path)]
        argv = in_namespace(self.namespace, as_user(OS_USER, program))
        self._process = ServerProcess(argv, self.log_path, env=environment, cwd=self.root_dir)
        self._process.start()

    def dsn(self, dbname: str = "postgres") -> str:
        return (
            f"host={self.host} port={self.port} user={SUPERUSER} dbname={dbname} connect_timeout=2"
        )

    def kill_keeper_only(self) -> None:
        """SIGKILL the keeper process alone (its PostgreSQL must be fenced by others)."""
        if self._process is not None and self._process.is_running:
            os.kill(self._process.pid, signal.SIGKILL)

    def signal_keeper_only(self, signal_number: int) -> None:
        if self._process is not None and self._process.is_running:
            os.kill(self._process.pid, signal_number)

    def postgres_tree_signal(self, signal_number: int) -> None:
        """Signal the postmaster and every descendant (SIGSTOP first so none appears)."""
        from tests.harness.processes import descendant_pids

        pid = self.postgres_pid
        if pid is None:
            return
        for member in [pid, *descendant_pids(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(member, signal_number)

    def wait_postgres_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (pid := self.postgres_pid) is not None and is_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def reap(self) -> None:
        """Collect a dead keeper's exit status (and kill what is left of its group)."""
        if self._process is not None:
            self._process.stop(timeout=5)


def agent_process(namespace: str, module: str, config: Path, log: Path) -> ServerProcess:
    argv = in_namespace(namespace, [sys.executable, "-m", module, "-c" if "proxy" in module
                                    else "--config", str(config)])  # fmt: skip
    return ServerProcess(argv, log, env=dict(os.environ))


class Node:
    """The processes of one node; `address` is its only address, in `namespace`."""

    def __init__(self, index: int, namespace: str, address: str, directory: Path,
                 etcd_urls: list[str], password: str,
                 api: ApiSecurity | None = None) -> None:  # fmt: skip
        self.name = f"n{index}"
        self.namespace = namespace
        self.address = address
        directory.mkdir(parents=True, exist_ok=True)
        self.etcd = NodeEtcd(f"etcd{index}", directory, namespace, address)
        self.keeper = NodeKeeper(self.name, etcd_urls, directory, namespace, address, password, api)
        sentinel_config = directory / "sentinel.toml"
        sentinel_config.write_text(
            shared_config(etcd_urls) + f'\n[sentinel]\nid = "sentinel-{self.name}"\n'
        )
        proxy_config = directory / "proxy.toml"
        proxy_config.write_text(
            shared_config(etcd_urls) + f'\n[proxy]\nid = "proxy-{self.name}"\n'
            f'read_write_listen = "{address}:{PROXY_PORT}"\nconnect_timeout = 1.0\n'
            + (api.section(address, PROXY_API_PORT) if api else
               f'[api]\nlisten = "127.0.0.1:{PROXY_API_PORT}"\n')
        )  # fmt: skip
        self.sentinel = agent_process(namespace, "rhizome.sentinel.main", sentinel_config,
                                      directory / "sentinel.log")  # fmt: skip
        self.proxy = agent_process(namespace, "rhizome.proxy.main", proxy_config,
                                   directory / "proxy.log")  # fmt: skip

    @property
    def proxy_id(self) -> str:
        return f"proxy-{self.name}"

    def start_agents(self) -> None:
        self.keeper.start()
        self.sentinel.start()
        self.proxy.start()

    def owners(self) -> list[Any]:
        """Everything on the node, PostgreSQL's keeper first (a host death stops it first)."""
        return [self.keeper, self.proxy, self.sentinel, self.etcd]

    def freeze(self) -> None:
        for owner in self.owners():
            owner.freeze()

    def thaw(self) -> None:
        for owner in reversed(self.owners()):
            owner.thaw()

    def kill(self) -> None:
        """Host death: freeze everything, then kill every tree."""
        self.freeze()
        for owner in self.owners():
            owner.kill()

    def restart(self) -> None:
        """Boot after a host death: the etcd member rejoins, then the agents start."""
        self.etcd.launch()
        self.start_agents()

    def stop(self) -> None:
        for action in (self.proxy.stop, self.sentinel.stop, self.keeper.cleanup, self.etcd.stop):
            with contextlib.suppress(Exception):
                action()

    def log_tails(self, lines: int = 30) -> str:
        parts = [f"--- {self.name} keeper ---\n{self.keeper.log_tail(lines)}"]
        parts += [f"--- {self.name} sentinel ---\n{self.sentinel.log_tail(lines)}"]
        parts += [f"--- {self.name} proxy ---\n{self.proxy.log_tail(lines)}"]
        return "\n".join(parts)
