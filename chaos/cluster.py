"""The campaign's cluster: namespaces, three nodes, the spec, and what observers read.

`ChaosCluster` is a context manager: leaving it (normally, on an error or on
Ctrl-C) stops every process and deletes every namespace.
"""

from __future__ import annotations

import secrets
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from chaos import network
from chaos.api_security import ApiSecurity
from chaos.convergence import convergence_problems, live_problems
from chaos.node import PROXY_PORT, Node
from rhizome.etcd import EtcdClient, EtcdError, EtcdSettings
from rhizome.spec import parse_spec
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.errors import StoreError
from rhizome.store.view import ClusterView

START_TIMEOUT = 180.0


def cluster_spec(mode: str, failsafe: bool = False) -> dict[str, Any]:
    """The spec the campaign runs with: defaults, synchronous replication in sync mode."""
    if mode not in ("sync", "async"):
        raise ValueError(f"mode must be sync or async, got {mode!r}")
    spec: dict[str, Any] = {"synchronous_replication": {"enabled": mode == "sync"}}
    return {**spec, "failsafe": True} if failsafe else spec


class ChaosCluster:
    def __init__(self, directory: Path, mode: str, layout: network.Layout | None = None,
                 failsafe: bool = False) -> None:  # fmt: skip
        """`failsafe`: the spec's failsafe on, every agent's API on its node's address."""
        self.directory = directory
        self.mode = mode
        self.failsafe = failsafe
        self.layout = layout or network.Layout.for_process()
        self.password = "chaos-" + secrets.token_hex(8)
        count = self.layout.node_count
        addresses = [self.layout.node_address(i) for i in range(1, count + 1)]
        urls = [f"http://{address}:2379" for address in addresses]
        self.etcd_urls = urls
        self.api = ApiSecurity.create(addresses) if failsafe else None
        self.nodes = [
            Node(i, self.layout.node_namespace(i), addresses[i - 1],
                 directory / f"n{i}", urls, self.password, self.api)
            for i in range(1, count + 1)
        ]  # fmt: skip
        settings = EtcdSettings(endpoints=tuple(urls), request_timeout=1.0)
        self.store = ClusterStore(EtcdClient(settings), "main")
        self._exit_stack = ExitStack()

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> ChaosCluster:
        if self.api is not None:
            self._exit_stack.callback(self.api.remove)
        self._exit_stack.callback(network.destroy, self.layout)
        network.create(self.layout)
        self._exit_stack.callback(self._stop_nodes)
        self._exit_stack.enter_context(network.entered(self.layout.client_namespace))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        self._exit_stack.close()

    def _stop_nodes(self) -> None:
        for node in self.nodes:
            node.stop()

    def start(self, timeout: float = START_TIMEOUT) -> None:
        initial = ",".join(f"{node.etcd.name}={node.etcd.peer_url}" for node in self.nodes)
        for node in self.nodes:
            node.etcd.initial_cluster = initial
            node.etcd.launch()
        for node in self.nodes:
            node.etcd.wait_ready()
        spec = parse_spec(cluster_spec(self.mode, self.failsafe))
        assert self.store.write_spec(spec, 0) is not None
        for node in self.nodes:
            node.start_agents()
        self.wait_converged(timeout)

    # -- observing -----------------------------------------------------------------------

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def view(self) -> ClusterView | None:
        try:
            return self.store.read_view()
        except (EtcdError, StoreError, OSError):
            return None

    def master_name(self) -> str | None:
        view = self.view()
        if view is None or view.state is None:
            return None
        return view.state.document.proxy_target.master

    def problems(self) -> list[str]:
        view = self.view()
        if view is None:
            return ["the store cannot be read"]
        names = [node.name for node in self.nodes]
        problems = convergence_problems(view, names, [node.proxy_id for node in self.nodes])
        master = self.master_name()
        return problems or live_problems(self, self.node(master or ""))

    def wait_converged(self, timeout: float) -> list[str]:
        """Seconds-bounded wait for convergence; the remaining problems (empty: converged)."""
        deadline = time.monotonic() + timeout
        while problems := self.problems():
            if time.monotonic() > deadline:
                return problems
            time.sleep(0.25)
        return []

    @property
    def lag_bound_bytes(self) -> int:
        """How far behind the old master a standby may be and still be promoted."""
        return parse_spec(cluster_spec(self.mode)).max_standby_lag_bytes

    @property
    def proxy_endpoints(self) -> list[tuple[str, int]]:
        return [(node.address, PROXY_PORT) for node in self.nodes]

    @property
    def postgres_endpoints(self) -> list[tuple[str, int]]:
        return [(node.address, node.keeper.port) for node in self.nodes]

    def diagnostics(self, lines: int = 30) -> str:
        return "\n".join(node.log_tails(lines) for node in self.nodes)
