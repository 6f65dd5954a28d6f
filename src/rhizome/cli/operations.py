"""`rhizomectl pause|resume` and `keeper maintenance|remove`: spec changes with checks.

Each is a merge patch of the stored spec written through `change_spec` (compare-
and-swap, recomputed when somebody else wrote first). Removal is a per-keeper
spec setting, `keepers.<name>.removed` (see "Removing a keeper" in
docs/protocol.md): rhizomectl writes only the spec and commands, never the
state nor a keeper's own document.
"""

from __future__ import annotations

import argparse
from typing import Any

from rhizome.cli.context import Context
from rhizome.cli.errors import EXIT_OK, OperationFailed, OperationRefused
from rhizome.cli.keeper_status import REMOVAL_SETTING, keeper_names
from rhizome.cli.spec_commands import SpecChange, SpecOutcome, change_spec, require_spec
from rhizome.cli.spec_edit import patched_spec
from rhizome.spec import KeeperSettings
from rhizome.store.view import ClusterView


def patch_change(
    patch: dict[str, Any], label: str, show_diff: bool = False, dry_run: bool = False
) -> SpecChange:
    return SpecChange(
        lambda spec: patched_spec(spec, patch), label, dry_run=dry_run, show_diff=show_diff
    )


def run_pause(context: Context, arguments: argparse.Namespace) -> int:
    outcome, revision = change_spec(context, patch_change({"paused": True}, "paused"))
    if outcome is SpecOutcome.UNCHANGED:
        context.say(f"cluster {context.cluster} is already paused (spec revision {revision})")
    else:
        context.say(
            f"paused cluster {context.cluster} (spec revision {revision}): the sentinel makes "
            "no automatic change until `rhizomectl resume`"
        )
    return EXIT_OK


def run_resume(context: Context, arguments: argparse.Namespace) -> int:
    outcome, revision = change_spec(context, patch_change({"paused": False}, "resumed"))
    if outcome is SpecOutcome.UNCHANGED:
        context.say(f"cluster {context.cluster} is not paused (spec revision {revision})")
    else:
        context.say(f"resumed cluster {context.cluster} (spec revision {revision})")
    return EXIT_OK


def read_checked_view(context: Context) -> ClusterView:
    """The whole cluster, after making sure the spec exists and is readable."""
    require_spec(context)  # names the key when the spec is corrupt
    return context.store.read_view()


def require_known_keeper(context: Context, view: ClusterView, name: str) -> None:
    known = keeper_names(view)
    if name not in known:
        listed = ", ".join(known) if known else "none yet"
        raise OperationRefused(
            f"keeper {name} is unknown in cluster {context.cluster} (known keepers: {listed})"
        )


def maintenance_patch(name: str, wanted: bool) -> dict[str, Any]:
    """The spec merge patch setting or ending keeper `name`'s maintenance."""
    return {"keepers": {name: {"maintenance": wanted}}}


def master_maintenance_warning(view: ClusterView, name: str) -> str | None:
    """What to tell an operator putting the master in maintenance, or None."""
    master = view.state.document.master if view.state else None
    if name != master:
        return None
    return (
        f"{name} is the master: while in maintenance the sentinel does not fail over when "
        "it goes away; to move the master elsewhere, run `rhizomectl switchover` first"
    )


def run_maintenance(context: Context, arguments: argparse.Namespace) -> int:
    """keeper maintenance NAME on|off: spec.keepers[NAME].maintenance."""
    name: str = arguments.name
    wanted = arguments.mode == "on"
    view = read_checked_view(context)
    require_known_keeper(context, view, name)
    warning = master_maintenance_warning(view, name) if wanted else None
    if warning is not None:
        context.warn(warning)
    patch = maintenance_patch(name, wanted)
    outcome, revision = change_spec(context, patch_change(patch, f"maintenance {arguments.mode}"))
    already = "already " if outcome is SpecOutcome.UNCHANGED else ""
    state = "in maintenance" if wanted else "out of maintenance"
    context.say(f"keeper {name} is {already}{state} (spec revision {revision})")
    return EXIT_OK


def removal_patch(name: str, removed: bool) -> dict[str, Any]:
    """The spec merge patch marking keeper `name` removed, or clearing the mark (undo)."""
    if REMOVAL_SETTING not in KeeperSettings.model_fields:
        raise OperationFailed(
            f"this rhizome version cannot remove keepers: its spec has no "
            f"keepers.<name>.{REMOVAL_SETTING} setting"
        )
    return {"keepers": {name: {REMOVAL_SETTING: True if removed else None}}}


def run_remove(context: Context, arguments: argparse.Namespace) -> int:
    """keeper remove NAME [--undo]: spec.keepers[NAME].removed, never for the master."""
    name: str = arguments.name
    view = read_checked_view(context)
    require_known_keeper(context, view, name)
    if not arguments.undo:
        refuse_master_removal(context, view, name)
    patch = removal_patch(name, removed=not arguments.undo)
    outcome, revision = change_spec(context, patch_change(patch, "removal"))
    if arguments.undo:
        already = "was not" if outcome is SpecOutcome.UNCHANGED else "is no longer"
        context.say(f"keeper {name} {already} marked removed (spec revision {revision})")
        return EXIT_OK
    already = "already " if outcome is SpecOutcome.UNCHANGED else ""
    context.say(f"keeper {name} is {already}marked removed (spec revision {revision}): the")
    context.say("sentinel assigns it the role removed, its keeper stops PostgreSQL for good and")
    context.say("the master drops its replication slot; then stop the keeper on its host")
    return EXIT_OK


def refuse_master_removal(context: Context, view: ClusterView, name: str) -> None:
    state = view.state.document if view.state else None
    if state is None:
        return
    if state.master == name:
        raise OperationRefused(
            f"keeper {name} is the master of cluster {context.cluster}; move the master first "
            f"with `rhizomectl switchover`, then remove {name}"
        )
    operation = state.operation
    if operation is not None and operation.target == name:
        raise OperationRefused(
            f"keeper {name} is becoming master ({operation.kind}, phase {operation.phase}); "
            "wait for it to finish, switch over to another keeper, then remove it"
        )
