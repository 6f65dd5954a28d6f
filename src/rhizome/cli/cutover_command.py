"""`rhizomectl upgrade cutover --successor CLUSTER`: hand the cluster over (major upgrade).

rhizomectl checks what it can see (docs/design/major-upgrade.md): this
cluster has a running master and nothing else in progress; with the logical
method its keeper reports the upgrade's logical slots and the successor is
another initialised rhizome cluster of the same store with a running master;
with the link method the successor is not initialised yet (it is made from
this master's data after the cutover, `rhizomectl upgrade link`). Then it
submits a `cutover` command for the leader sentinel, and with --wait follows
it to its result.
"""

from __future__ import annotations

import argparse

from rhizome.cli.commands import command_name, requester
from rhizome.cli.context import Context, Terminal
from rhizome.cli.errors import EXIT_OK, OperationFailed, OperationRefused, UsageError
from rhizome.cli.spec_commands import require_spec
from rhizome.cli.waiting import follow_if_asked
from rhizome.config import ConfigError
from rhizome.keeper.config import load_configuration
from rhizome.keeper.datadir import ToolError
from rhizome.store.cluster_store import ClusterStore
from rhizome.store.documents import Command, CutoverMethod
from rhizome.store.view import ClusterView
from rhizome.upgrade.link import LinkRefused, run_link


def cutover_refusal(view: ClusterView, cluster: str, successor: str, method: str) -> str | None:
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
    if method == "logical" and (master is None or master.document.upgrade_confirmed_lsn is None):
        return (
            f"master {state.master} reports no logical slot rhizome_upgrade_*: run"
            " `rhizomectl upgrade prepare` first"
        )
    return None


def successor_refusal(view: ClusterView, successor: str, method: str) -> str | None:
    """Why the successor cluster cannot take clients now (pure)."""
    state = view.state.document if view.state is not None else None
    if method == "link":
        if state is not None and state.initialized:
            return (f"cluster {successor} is initialised already: the link method makes it from"
                    " this master's data after the cutover; name a new cluster")  # fmt: skip
        return None
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
    method: CutoverMethod = arguments.method
    refusal = cutover_refusal(view, context.cluster, successor, method)
    if refusal is None:
        keys = context.store.keys
        successor_store = ClusterStore(context.store.client, successor, keys.root)
        refusal = successor_refusal(successor_store.read_view(), successor, method)
    if refusal is not None:
        raise OperationRefused(f"cutover refused: {refusal}")
    now = context.clock()
    command = Command(
        name=command_name("cutover", now), kind="cutover", successor=successor, method=method,
        requested_at=now, requested_by=requester(), timeout=arguments.timeout,
    )  # fmt: skip
    if not context.store.submit_command(command):
        raise OperationFailed(f"a command named {command.name} already exists; try again")
    context.say(f"submitted cutover command {command.name} (to cluster {successor})")
    return follow_if_asked(context, command, arguments.wait, arguments.timeout)


def run_link_command(terminal: Terminal, arguments: argparse.Namespace) -> int:
    """`rhizomectl upgrade link`: pg_upgrade --link the stopped old master's data."""
    try:
        old = load_configuration(arguments.old_config).keeper
        new = load_configuration(arguments.new_config).keeper
    except ConfigError as error:
        raise UsageError(str(error)) from error
    try:
        seconds = run_link(old, new)
    except (LinkRefused, ToolError) as error:
        raise OperationFailed(f"upgrade link: {error}; the old data is unchanged") from error
    if seconds is None:
        terminal.say(f"{new.data_dir} was upgraded already: nothing to do")
    else:
        terminal.say(
            f"pg_upgrade --link done in {seconds:.1f} s: start the successor's keeper on"
            f" {new.data_dir} (spec init_mode: existing); its standbys clone from it"
        )
    return EXIT_OK
