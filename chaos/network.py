"""Network namespaces for the campaign: one per node, one for the clients, one switch.

Every address lives inside a namespace this module created: each node and the
client namespace get a veth pair whose other end sits in the switch
namespace, on a bridge there. Nothing is added to the host's own namespace,
so removing the namespaces removes every link and address with them.

Command lists are built by pure functions (unit-tested); `run` executes them.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
CLONE_NEWNET = 0x40000000
INTERFACE = "eth0"


@dataclass(frozen=True)
class Layout:
    """Names and addresses of one campaign's namespaces (third octet `subnet`)."""

    prefix: str
    subnet: int
    node_count: int = 3

    @classmethod
    def for_process(cls, node_count: int = 3) -> Layout:
        pid = os.getpid()
        return cls(prefix=f"rz-chaos-{pid}", subnet=pid % 200 + 20, node_count=node_count)

    @property
    def switch_namespace(self) -> str:
        return f"{self.prefix}-sw"

    @property
    def client_namespace(self) -> str:
        return f"{self.prefix}-c"

    def node_namespace(self, index: int) -> str:
        return f"{self.prefix}-n{index}"

    def node_address(self, index: int) -> str:
        return f"10.250.{self.subnet}.{10 + index}"

    @property
    def client_address(self) -> str:
        return f"10.250.{self.subnet}.100"

    @property
    def attached(self) -> list[tuple[str, str]]:
        """(namespace, address) of every namespace on the bridge, nodes first."""
        nodes = [
            (self.node_namespace(i), self.node_address(i)) for i in range(1, 1 + self.node_count)
        ]
        return [*nodes, (self.client_namespace, self.client_address)]

    @property
    def namespaces(self) -> list[str]:
        return [self.switch_namespace, *(namespace for namespace, _ in self.attached)]


def setup_commands(layout: Layout) -> list[list[str]]:
    """Create the namespaces, the bridge and one veth pair per attached namespace."""
    switch = layout.switch_namespace
    commands = [["ip", "netns", "add", namespace] for namespace in layout.namespaces]
    commands += [
        ["ip", "-n", switch, "link", "add", "br0", "type", "bridge"],
        ["ip", "-n", switch, "link", "set", "br0", "up"],
    ]
    for number, (namespace, address) in enumerate(layout.attached, start=1):
        port = f"v{number}"
        commands += [
            ["ip", "-n", switch, "link", "add", port, "type", "veth", "peer", "name", INTERFACE,
             "netns", namespace],
            ["ip", "-n", switch, "link", "set", port, "master", "br0"],
            ["ip", "-n", switch, "link", "set", port, "up"],
            ["ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", INTERFACE],
            ["ip", "-n", namespace, "link", "set", INTERFACE, "up"],
            ["ip", "-n", namespace, "link", "set", "lo", "up"],
        ]  # fmt: skip
    return commands


def teardown_commands(layout: Layout) -> list[list[str]]:
    """Delete every namespace (its veth ends and addresses go with it)."""
    return [["ip", "netns", "delete", namespace] for namespace in layout.namespaces]


def run(command: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
    return result


def namespace_pids(namespace: str) -> set[int]:
    """PIDs of every process in a namespace (empty when it is gone)."""
    result = run(["ip", "netns", "pids", namespace], check=False)
    return {int(word) for word in result.stdout.split() if word.isdigit()}


def create(layout: Layout) -> None:
    for command in setup_commands(layout):
        run(command)


def destroy(layout: Layout) -> None:
    """Kill whatever still runs in the namespaces, then delete them; never raises."""
    for namespace in layout.namespaces:
        for pid in namespace_pids(namespace):
            with suppress(ProcessLookupError):
                os.kill(pid, 9)
    for command in teardown_commands(layout):
        run(command, check=False)


def in_namespace(namespace: str, argv: Sequence[str]) -> list[str]:
    """argv run inside a namespace (`ip netns exec` execs in place: same PID)."""
    return ["ip", "netns", "exec", namespace, *argv]


def as_user(user: str, argv: Sequence[str]) -> list[str]:
    """argv run as an unprivileged user (setpriv execs in place: same PID)."""
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]


@contextmanager
def entered(namespace: str) -> Iterator[None]:
    """Run the calling thread (and threads it starts) in a namespace; back afterwards."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as original, open(f"/run/netns/{namespace}") as target:
        if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {namespace} failed")
        try:
            yield
        finally:
            libc.setns(original.fileno(), CLONE_NEWNET)
