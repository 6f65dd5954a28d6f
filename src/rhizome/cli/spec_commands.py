"""`rhizomectl init` and `spec show|apply|patch`, and the compare-and-swap loop
every spec change goes through (pause, resume, keeper maintenance and removal too).

A change is computed from the stored spec, validated, shown as a diff and
written only if the spec is still at the revision it was computed from. When
somebody else wrote first, the change is computed and diffed again against
the new spec before the next attempt, so nobody's change is lost unseen.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from rhizome.cli.context import Context
from rhizome.cli.errors import EXIT_OK, OperationFailed, OperationRefused, UsageError
from rhizome.cli.spec_edit import (
    assignments_patch,
    load_spec_file,
    parse_merge_patch,
    patched_spec,
    spec_diff,
    spec_text,
)
from rhizome.pgconfig.check import changed_parameters, check_values, raise_value_problems
from rhizome.spec import ClusterSpec, parse_spec
from rhizome.store.view import Stored

WRITE_ATTEMPTS = 5
"""How often a spec change is recomputed when others keep writing the spec first."""


class SpecOutcome(Enum):
    UNCHANGED = "unchanged"
    DRY_RUN = "dry run"
    WRITTEN = "written"


@dataclass(frozen=True)
class SpecChange:
    """How to compute a new spec from the stored one, and how to report it."""

    edit: Callable[[ClusterSpec], ClusterSpec]
    new_label: str
    dry_run: bool = False
    show_diff: bool = True
    check_values: bool = False
    """Check new pg_parameters values against the cluster's PostgreSQL first."""


def require_spec(context: Context) -> Stored[ClusterSpec]:
    """The stored spec; refuses when there is none (StoreDocumentError when corrupt)."""
    stored = context.store.read_spec()
    if stored is None:
        raise OperationRefused(
            f"cluster {context.cluster} has no spec yet; create it with `rhizomectl init [FILE]`"
        )
    return stored


@dataclass(frozen=True)
class SpecUpdate:
    """What a spec change did: its outcome, the spec revision after it, the specs compared."""

    outcome: SpecOutcome
    revision: int
    """The revision written; the stored revision when unchanged or in a dry run."""
    before: ClusterSpec
    """The stored spec the change was computed from (the last attempt's)."""
    before_revision: int
    """The revision of that stored spec."""
    after: ClusterSpec
    """The spec computed (written unless unchanged or in a dry run)."""


def change_spec(context: Context, change: SpecChange) -> tuple[SpecOutcome, int]:
    """Apply `change` with compare-and-swap; returns the outcome and the spec revision."""
    update = update_spec(context, change)
    return update.outcome, update.revision


def update_spec(context: Context, change: SpecChange) -> SpecUpdate:
    """Apply `change` with compare-and-swap; says what it did and the specs it compared."""
    for attempt in range(WRITE_ATTEMPTS):
        stored = require_spec(context)
        new_spec = change.edit(stored.document)
        if change.check_values:
            check_parameter_values(context, stored.document, new_spec)
        if attempt > 0:
            context.say(
                f"the spec was changed by somebody else (now revision {stored.mod_revision}); "
                "compared again:"
            )
        old_label = f"stored spec (revision {stored.mod_revision})"
        diff = spec_diff(stored.document, new_spec, old_label, change.new_label)
        revision = stored.mod_revision
        if not diff:
            return SpecUpdate(SpecOutcome.UNCHANGED, revision, stored.document, revision, new_spec)
        if change.show_diff:
            context.say(diff)
        if change.dry_run:
            return SpecUpdate(SpecOutcome.DRY_RUN, revision, stored.document, revision, new_spec)
        written = context.store.write_spec(new_spec, revision)
        if written is not None:
            return SpecUpdate(SpecOutcome.WRITTEN, written, stored.document, revision, new_spec)
    raise OperationFailed(
        f"the spec changed {WRITE_ATTEMPTS} times while writing; nothing was written, try again"
    )


def check_parameter_values(
    context: Context, before: ClusterSpec | None, after: ClusterSpec
) -> None:
    """Refuse (SpecError) pg_parameters values PostgreSQL would refuse; warn when unchecked."""
    changed = changed_parameters(before, after)
    if not changed:
        return
    keepers = [stored.document for stored in context.store.read_view().keepers.values()]
    check = check_values(changed, keepers)
    for reason in check.unchecked:
        context.warn(
            f"pg_parameters values not checked: {reason}; the keepers still refuse to write a "
            "value their PostgreSQL rejects (see rhizomectl status)"
        )
    raise_value_problems(check)


def report_spec_change(context: Context, outcome: SpecOutcome, revision: int) -> None:
    if outcome is SpecOutcome.UNCHANGED:
        context.say(f"no change: the stored spec (revision {revision}) already says so")
    elif outcome is SpecOutcome.DRY_RUN:
        context.say("dry run: nothing written")
    else:
        context.say(f"wrote the spec of cluster {context.cluster} (revision {revision})")


def run_init(context: Context, arguments: argparse.Namespace) -> int:
    """Create the first spec, from a file or the defaults; refuses when a spec exists."""
    source = arguments.file
    spec = parse_spec(load_spec_file(source, sys.stdin)) if source else ClusterSpec()
    check_parameter_values(context, None, spec)
    written = context.store.write_spec(spec, expected_revision=0)
    if written is None:
        raise OperationRefused(
            f"cluster {context.cluster} already has a spec; change it with "
            "`rhizomectl spec apply FILE` or `rhizomectl spec patch`"
        )
    origin = source if source else "the defaults"
    context.say(f"created the spec of cluster {context.cluster} from {origin} (revision {written})")
    context.say("the sentinel initialises the cluster once a keeper reports")
    return EXIT_OK


def run_spec_show(context: Context, arguments: argparse.Namespace) -> int:
    stored = require_spec(context)
    if arguments.non_defaults:
        changed = stored.document.model_dump(mode="json", exclude_defaults=True)
        context.say(json.dumps(changed, indent=2, sort_keys=True))
    else:
        context.say(spec_text(stored.document))
    return EXIT_OK


def run_spec_apply(context: Context, arguments: argparse.Namespace) -> int:
    """Replace the spec by a file's, after validating it and showing the diff."""
    new_spec = parse_spec(load_spec_file(arguments.file, sys.stdin))
    change = SpecChange(
        lambda _: new_spec, arguments.file, dry_run=arguments.dry_run, check_values=True
    )
    report_spec_change(context, *change_spec(context, change))
    return EXIT_OK


def run_spec_patch(context: Context, arguments: argparse.Namespace) -> int:
    """Change some fields of the stored spec (merge patch and/or assignments)."""
    patches = []
    if arguments.merge is not None:
        patches.append(parse_merge_patch(arguments.merge))
    if arguments.assignments:
        patches.append(assignments_patch(arguments.assignments))
    if not patches:
        raise UsageError("nothing to patch: give FIELD.PATH=VALUE assignments or --merge")
    change = SpecChange(
        lambda spec: patched_spec(spec, *patches),
        "patched spec",
        dry_run=arguments.dry_run,
        check_values=True,
    )
    report_spec_change(context, *change_spec(context, change))
    return EXIT_OK
