"""`rhizomectl switchover|failover`: operator commands for the leader sentinel.

rhizomectl checks what it can see at once (paused cluster, unknown target,
target already master...) and refuses with one clear line; otherwise it
creates `commands/<kind>-<time>-<random>` (create-if-absent) with a timeout
after which the sentinel abandons it. With --wait it follows the store until
the sentinel records the command's result in `state.command_results`.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import socket
import time

from rhizome.cli.context import Context
from rhizome.cli.errors import OperationFailed, OperationRefused
from rhizome.cli.spec_commands import require_spec
from rhizome.cli.waiting import follow_if_asked
from rhizome.sentinel.decision.candidates import (
    SWITCHOVER_RULES,
    CandidateChoice,
    choose_candidate,
    named_candidate,
)
from rhizome.sentinel.decision.model import ClusterObservation, Progress
from rhizome.sentinel.decision.pause_holds import hold_blockers
from rhizome.spec import ClusterSpec
from rhizome.store.documents import ClusterState, Command, CommandKind
from rhizome.store.view import ClusterView

DEFAULT_COMMAND_TIMEOUT = 60.0
"""Seconds the sentinel may take to carry a command out before abandoning it."""

OLD_MASTER_STOPPED_WARNING = (
    "!!! --old-master-stopped: YOU ASSERT THAT THE OLD MASTER'S POSTGRESQL IS STOPPED "
    "(e.g. its host is powered off). It was held while the cluster was paused: nothing "
    "fences it, and if it still runs, two PostgreSQL instances accept writes after this "
    "failover. Clients connected to it directly keep writing to it. !!!"
)


def command_name(kind: str, now: float) -> str:
    """A unique, sortable command name, e.g. switchover-20240501-120003-a1b2."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{kind}-{stamp}-{secrets.token_hex(2)}"


def requester(tool: str = "rhizomectl") -> str:
    """Who asks, for the command's requested_by: "rhizomectl user@host"."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    return f"{tool} {user}@{socket.gethostname()}"


def command_refusal(
    view: ClusterView,
    spec: ClusterSpec,
    kind: CommandKind,
    target: str | None,
    *,
    old_master_stopped: bool = False,
) -> str | None:
    """Why the command cannot be carried out now, or None (pure)."""
    state = view.state.document if view.state else None
    if spec.paused:
        return "the cluster is paused; resume it first with `rhizomectl resume`"
    if state is None or not state.initialized:
        return "the cluster is not initialised yet: there is no master to replace"
    if kind == "switchover" and state.operation is not None:
        operation = state.operation
        return f"a {operation.kind} is in progress (phase {operation.phase}); wait for it"
    if kind == "switchover" and state.master is None:
        return "there is no master to switch over from; use `rhizomectl failover --to KEEPER`"
    if view.commands:
        name = min(view.commands)
        pending = view.commands[name].document
        return f"command {name} ({pending.kind}) is still pending; wait for it"
    if kind == "failover" and not old_master_stopped:
        held = hold_blockers(state, {name: item.document for name, item in view.keepers.items()})
        if held:
            return "; ".join(held)
    if target is None:
        if not state.keepers_with_role("standby"):
            return "there is no standby to switch over to"
        return None
    return target_refusal(view, spec, state, target)


def target_refusal(
    view: ClusterView, spec: ClusterSpec, state: ClusterState, target: str
) -> str | None:
    """Why `target` cannot become master, or None."""
    assignment = state.assignment_of(target)
    if assignment is None:
        known = ", ".join(sorted(state.assignments)) or "none"
        return f"keeper {target} is unknown (keepers of the cluster: {known})"
    if target == state.master:
        return f"keeper {target} is already the master"
    if assignment.role != "standby":
        return f"keeper {target} is assigned {assignment.role}; only a standby can be promoted"
    if target not in view.keepers:
        return f"keeper {target} is down (it publishes no observation); choose a live standby"
    settings = spec.keeper_settings(target)
    if settings.maintenance:
        return f"keeper {target} is in maintenance; end it with `keeper maintenance {target} off`"
    if settings.no_failover:
        return f"keeper {target} has no_failover set in the spec; it is never promoted"
    return None


def switchover_choice(
    view: ClusterView, spec: ClusterSpec, target: str | None, now: float
) -> CandidateChoice:
    """The keeper the leader sentinel would promote for a switchover now, or why none (pure).

    The sentinel's own candidate rules (health, settings, lag bound) applied to
    what the store shows; the sentinel decides again when it gets the command.
    """
    state = view.state.document if view.state else ClusterState()
    observation = ClusterObservation(
        spec=spec,
        state=state,
        keepers={name: stored.document for name, stored in view.keepers.items()},
        proxies={name: stored.document for name, stored in view.proxies.items()},
        commands=view.commands,
        now=now,
    )
    progress = Progress(observation, state)
    if target is None:
        return choose_candidate(progress, state.master, SWITCHOVER_RULES)
    return named_candidate(progress, target, state.master, SWITCHOVER_RULES)


def submit(
    context: Context,
    kind: CommandKind,
    target: str | None,
    timeout: float,
    requested_by: str | None = None,
    *,
    old_master_stopped: bool = False,
) -> Command:
    """Check, then create the command; raises OperationRefused with the reason."""
    spec = require_spec(context).document
    view = context.store.read_view()
    refusal = command_refusal(view, spec, kind, target, old_master_stopped=old_master_stopped)
    if refusal is not None:
        raise OperationRefused(f"{kind} refused: {refusal}")
    if view.leader is None:
        context.warn("no sentinel leads now: the command waits until one is elected")
    now = context.clock()
    command = Command(
        name=command_name(kind, now),
        kind=kind,
        target=target,
        requested_at=now,
        requested_by=requested_by or requester(),
        timeout=timeout,
        old_master_stopped=old_master_stopped,
    )
    if not context.store.submit_command(command):
        raise OperationFailed(f"a command named {command.name} already exists; try again")
    return command


def run_command(context: Context, arguments: argparse.Namespace, kind: CommandKind) -> int:
    old_master_stopped = bool(getattr(arguments, "old_master_stopped", False))
    command = submit(
        context, kind, arguments.to, arguments.timeout, old_master_stopped=old_master_stopped
    )
    target = command.target or "the best standby"
    context.say(f"submitted {kind} command {command.name} (to {target})")
    if old_master_stopped:
        context.warn(OLD_MASTER_STOPPED_WARNING)
    if kind == "failover":
        context.warn(
            f"a forced failover skips the lag and synchronous replication checks: commits "
            f"the old master acknowledged but {target} has not received are lost"
        )
    return follow_if_asked(context, command, arguments.wait, arguments.timeout)


def run_switchover(context: Context, arguments: argparse.Namespace) -> int:
    return run_command(context, arguments, "switchover")


def run_failover(context: Context, arguments: argparse.Namespace) -> int:
    return run_command(context, arguments, "failover")
