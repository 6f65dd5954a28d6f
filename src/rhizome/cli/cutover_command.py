"""`rhizomectl upgrade cutover --successor CLUSTER`: hand the cluster over (major upgrade).

rhizomectl checks what it can see (docs/design/major-upgrade.md): this
cluster has a running master whose keeper reports the upgrade's logical slots,
nothing else is in progress, and the successor is another initialised rhizome
cluster of the same store with a running master. Then it submits a `cutover`
command for the leader sentinel, and with --wait follows it to its result.
"""

from __future__ import annotations

import argparse

from rhizome.cli.commands import command_name, requester
from rhizome.cli.context import Context
from rhizome.cli.errors import EXIT_OK, OperationFailed, OperationRefused
from rhizome.cli.spec_commands import require_spec
from rhizome.cli.waiting import report_result, wait_for_result
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import Command
from rhizome.store.view import ClusterView


def cutover_refusal(view: ClusterView, cluster: str, successor: str) -> str | None:
    """Why this cluster cannot be handed over now (pure)."""
    state = view.state.document if view.state is not None else None
    spec = view.spec.document if view.spec is not None else None
    if successor == cluster:
        return "the successor must be another cluster (the one `upgrade prepare` fed)"
    if spec is not None and spec.paused:
        return "the cluster is paused; resume it first with `rhizomectl resume`"
    if state is None or state.master is None:
        return "the cluster has no master to hand over"
    if state.successor is not None:
        return f"the cluster was handed over to {state.successor} already"
    if state.operation is not None:
        operation = state.operation
        return f"a {operation.kind} is in progress (phase {operation.phase}); wait for it"
    if view.commands:
        name = min(view.commands)
        return f"command {name} ({view.commands[name].document.kind}) is still pending; wait for it"
    master = view.keepers.get(state.master)
    if master is None or master.document.upgrade_confirmed_lsn is None:
        return (
            f"master {state.master} reports no logical slot rhizome_upgrade_*: run"
            " `rhizomectl upgrade prepare` first"
        )
    return None


def successor_refusal(view: ClusterView, successor: str) -> str | None:
    """Why the successor cluster cannot take clients now (pure)."""
    state = view.state.document if view.state is not None else None
    if state is None or not state.initialized:
        return f"cluster {successor} does not exist in this store or is not initialised"
    master = view.keepers.get(state.proxy_target.master or "")
    if master is None or not master.document.accepts_writes:
        return f"cluster {successor} has no running master its proxies route to"
    if state.successor is not None:
        return f"cluster {successor} was itself handed over to {state.successor}"
    return None


def run_cutover(context: Context, arguments: argparse.Namespace) -> int:
    require_spec(context)
    successor: str = arguments.successor
    view = context.store.read_view()
    refusal = cutover_refusal(view, context.cluster, successor)
    if refusal is None:
        keys = context.store.keys
        successor_store = ClusterStore(context.store.client, successor, keys.root)
        refusal = successor_refusal(successor_store.read_view(), successor)
    if refusal is not None:
        raise OperationRefused(f"cutover refused: {refusal}")
    now = context.clock()
    command = Command(
        name=command_name("cutover", now), kind="cutover", successor=successor,
        requested_at=now, requested_by=requester(), timeout=arguments.timeout,
    )  # fmt: skip
    if not context.store.submit_command(command):
        raise OperationFailed(f"a command named {command.name} already exists; try again")
    context.say(f"submitted cutover command {command.name} (to cluster {successor})")
    if not arguments.wait:
        context.say("follow it with `rhizomectl status`, or pass --wait next time")
        return EXIT_OK
    result = wait_for_result(context, command, arguments.timeout)
    return report_result(context, command.name, result, arguments.timeout)
