"""Thin executors: apply one planned fault to the running cluster, return how to heal it."""

from __future__ import annotations

import signal
from collections.abc import Callable

from chaos.cluster import ChaosCluster
from chaos.network import ETCD_CLIENT_PORT, ETCD_PEER_PORT, INTERFACE, in_namespace, run
from chaos.node import Node
from chaos.operations import switchover
from chaos.plan import FAILSAFE_KINDS, Fault
from tests.harness.processes import ServerProcess

Heal = Callable[[], None]
KEEPER_FENCE_BOUND = 10.0


def resolve_target(cluster: ChaosCluster, fault: Fault) -> Node:
    """The master (as published now), or the first/second standby in name order."""
    master = cluster.master_name() or cluster.nodes[0].name
    if fault.target == "master":
        return cluster.node(master)
    standbys = sorted(node.name for node in cluster.nodes if node.name != master)
    return cluster.node(standbys[int(fault.target.removeprefix("standby")) - 1])


def iptables(node: Node, *rules: tuple[str, ...]) -> None:
    for rule in rules:
        run(in_namespace(node.namespace, ["iptables", "-w", "-A", *rule]))


def flush(node: Node) -> Heal:
    def heal() -> None:
        run(in_namespace(node.namespace, ["iptables", "-w", "-F"]))

    return heal


def flush_all(cluster: ChaosCluster) -> Heal:
    heals = [flush(each) for each in cluster.nodes]

    def heal() -> None:
        for each in heals:
            each()

    return heal


def _tcp(chain: str, port: int) -> tuple[str, ...]:
    return (chain, "-p", "tcp", "--dport", str(port), "-j", "DROP")


def keeper_kill(node: Node) -> Heal:
    node.keeper.kill_keeper_only()

    def heal() -> None:
        fenced = node.keeper.wait_postgres_gone(KEEPER_FENCE_BOUND)
        node.keeper.reap()
        node.keeper.start()
        if not fenced:
            raise FaultFinding(f"PostgreSQL of {node.name} outlived its killed keeper")

    return heal


def inject(cluster: ChaosCluster, fault: Fault, node: Node) -> Heal:
    """Apply `fault` to `node` (or the whole cluster); the callable undoes it."""
    kind = fault.kind
    if kind == "node-kill":
        node.kill()
        return node.restart
    if kind == "node-freeze":
        node.freeze()
        return node.thaw
    if kind == "keeper-kill":
        return keeper_kill(node)
    if kind == "keeper-freeze":
        node.keeper.signal_keeper_only(signal.SIGSTOP)
        return lambda: node.keeper.signal_keeper_only(signal.SIGCONT)
    if kind == "postgres-kill":
        node.keeper.crash_postgres()
        return lambda: None
    if kind == "postgres-freeze":
        node.keeper.postgres_tree_signal(signal.SIGSTOP)
        return lambda: node.keeper.postgres_tree_signal(signal.SIGCONT)
    if kind in ("proxy-kill", "etcd-kill"):
        process = node.proxy if kind == "proxy-kill" else node.etcd
        process.kill()
        return process.start if kind == "proxy-kill" else node.etcd.launch
    if kind in ("proxy-freeze", "etcd-freeze"):
        process = node.proxy if kind == "proxy-freeze" else node.etcd
        process.freeze()
        return process.thaw
    if kind in FAILSAFE_KINDS:
        return freeze_all_etcd(cluster, node.proxy if kind == "etcd-freeze-all-and-proxy" else None)
    return inject_network(cluster, fault, node)


def freeze_all_etcd(cluster: ChaosCluster, proxy: ServerProcess | None) -> Heal:
    """SIGSTOP every etcd member (after `proxy`, when given); the heal thaws them together."""
    frozen = ([proxy] if proxy is not None else []) + [node.etcd for node in cluster.nodes]
    for process in frozen:
        process.freeze()

    def heal() -> None:
        for process in reversed(frozen):
            process.thaw()

    return heal


def inject_network(cluster: ChaosCluster, fault: Fault, node: Node) -> Heal:
    kind = fault.kind
    if kind == "node-isolate":
        iptables(
            node, ("INPUT", "-i", "eth0", "-j", "DROP"), ("OUTPUT", "-o", "eth0", "-j", "DROP")
        )
    elif kind == "node-etcd-cut":  # its agents reach no etcd member; peers and clients still work
        iptables(node, _tcp("OUTPUT", ETCD_CLIENT_PORT))
    elif kind == "etcd-minority":  # its member is cut off from the other members
        iptables(node, _tcp("INPUT", ETCD_PEER_PORT), _tcp("OUTPUT", ETCD_PEER_PORT))
    elif kind == "etcd-blackhole":  # its member answers nobody, packets dropped
        iptables(node, _tcp("INPUT", ETCD_CLIENT_PORT), _tcp("INPUT", ETCD_PEER_PORT),
                 _tcp("OUTPUT", ETCD_PEER_PORT))  # fmt: skip
    elif kind == "etcd-outage":  # no agent anywhere reaches any member; quorum intact
        for each in cluster.nodes:
            iptables(each, _tcp("INPUT", ETCD_CLIENT_PORT))
        return flush_all(cluster)
    elif kind == "etcd-no-quorum":  # every member cut off from the others; clients reach theirs
        for each in cluster.nodes:
            iptables(each, _tcp("INPUT", ETCD_PEER_PORT), _tcp("OUTPUT", ETCD_PEER_PORT))
        return flush_all(cluster)
    elif kind == "proxy-master-cut":
        iptables(node, proxy_master_cut_rule(cluster))
    elif kind == "node-inbound-drop":  # asymmetric: it still sends, it receives nothing
        iptables(node, ("INPUT", "-i", INTERFACE, "-j", "DROP"))
    elif kind == "switchover":
        switchover(cluster)
        return lambda: None
    else:
        raise ValueError(f"no executor for fault kind {kind!r}")
    return flush(node)


def proxy_master_cut_rule(cluster: ChaosCluster) -> tuple[str, ...]:
    """The node's proxy (it runs as root) reaches no PostgreSQL port of the master published
    now; its standby (PostgreSQL and keeper run as postgres) still replicates from it."""
    master = cluster.node(cluster.master_name() or cluster.nodes[0].name)
    return ("OUTPUT", "-d", master.address, "-p", "tcp", "--dport", str(master.keeper.port),
            "-m", "owner", "--uid-owner", "0", "-j", "DROP")  # fmt: skip


class FaultFinding(RuntimeError):
    """A fault's healing found a safety problem (reported, the campaign goes on)."""
