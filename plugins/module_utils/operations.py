# Copyright: rhizome developers
# SPDX-License-Identifier: Apache-2.0
"""What the operation modules (switchover, maintenance, keeper) share.

They run rhizomectl's own logic (`rhizome.cli`), which takes a `Context` with
output streams: here both streams go to buffers, and what rhizomectl would
have printed becomes the task's `stdout_lines` and warnings.
"""

from __future__ import annotations

import io
import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rhizome.pg.plugins.module_utils.store_options import Result

try:
    from rhizome.cli.context import Context
    from rhizome.cli.spec_commands import SpecChange, SpecOutcome, SpecUpdate
    from rhizome.cli.spec_edit import patched_spec, spec_text
    from rhizome.spec import ClusterSpec, KeeperSettings
    from rhizome.store.cluster_store import ClusterStore
except ImportError:
    OPERATIONS_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    OPERATIONS_IMPORT_ERROR = None

WARNING_PREFIX = "rhizomectl: warning: "


def buffered_context(store: ClusterStore) -> Context:
    """A rhizomectl Context whose output and warnings go to buffers."""
    return Context(store=store, out=io.StringIO(), err=io.StringIO())


def output_lines(context: Context) -> list[str]:
    """The lines rhizomectl's logic printed."""
    out: Any = context.out
    return [line for line in out.getvalue().splitlines() if line]


def report_warnings(module: AnsibleModule, context: Context) -> None:
    """Pass rhizomectl's warnings on to Ansible."""
    err: Any = context.err
    for line in err.getvalue().splitlines():
        if line:
            module.warn(line.removeprefix(WARNING_PREFIX))


def effective(spec: ClusterSpec) -> ClusterSpec:
    """The spec without per-keeper entries that only repeat the defaults."""
    defaults = KeeperSettings()
    keepers = {name: settings for name, settings in spec.keepers.items() if settings != defaults}
    return spec.model_copy(update={"keepers": keepers})


def settings_change(patch: dict[str, Any], label: str, dry_run: bool) -> SpecChange:
    """rhizomectl's patch_change, except that a patch changing no setting's effect (such as
    maintenance off for a keeper never in maintenance) leaves the spec as it is."""

    def edit(spec: ClusterSpec) -> ClusterSpec:
        new_spec = patched_spec(spec, patch)
        return spec if effective(new_spec) == effective(spec) else new_spec

    return SpecChange(edit, label, dry_run=dry_run, show_diff=False)


def spec_diff(
    before: ClusterSpec | None, before_revision: int, after: ClusterSpec, written: int | None
) -> dict[str, str]:
    """Ansible's diff of a spec change: the whole spec before and after, as
    `rhizomectl spec show` prints it; `written` is the new revision, None in check mode."""
    return {
        "before_header": (
            "no spec yet" if before is None else f"stored spec (revision {before_revision})"
        ),
        "after_header": (
            "spec (check mode: not written)" if written is None else f"spec (revision {written})"
        ),
        "before": "" if before is None else spec_text(before) + "\n",
        "after": spec_text(after) + "\n",
    }


def spec_update_result(module: AnsibleModule, update: SpecUpdate) -> Result:
    """The common result of a spec change: changed, the spec, its revision and the diff."""
    changed = update.outcome is not SpecOutcome.UNCHANGED
    result: Result = {
        "changed": changed,
        "revision": update.revision,
        "spec": update.after.model_dump(mode="json"),
    }
    if changed and module._diff:
        written = update.revision if update.outcome is SpecOutcome.WRITTEN else None
        result["diff"] = spec_diff(update.before, update.before_revision, update.after, written)
    return result
