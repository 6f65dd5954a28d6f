"""A spec declared elsewhere (an Ansible inventory) applied to the stored spec (pure).

Two modes, as `rhizome.pg.cluster_spec` offers them:

- merge: the declaration is a JSON merge patch (RFC 7386, see `spec_edit`) of
  the stored spec. Fields it does not name keep their stored values, so the
  operational flags other tools set (`paused`, `keepers.<name>.maintenance`,
  `keepers.<name>.removed`) survive; objects such as `pg_parameters` merge key
  by key, lists such as `pg_hba` are replaced whole, and null resets a field
  to its default.
- replace: the declaration is the whole spec; every field it leaves out
  takes its default.

Without a stored spec both modes give the declaration over the defaults.
The result is validated: SpecError lists every problem, naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from rhizome.cli.spec_edit import patched_spec
from rhizome.spec import ClusterSpec

DeclarationMode = Literal["merge", "replace"]
DECLARATION_MODES: tuple[DeclarationMode, ...] = ("merge", "replace")


def declared_spec(
    stored: ClusterSpec | None, declaration: Mapping[str, Any], mode: DeclarationMode
) -> ClusterSpec:
    """The spec the declaration asks for, given the stored one (None: no spec yet)."""
    if mode not in DECLARATION_MODES:
        raise ValueError(f"unknown declaration mode {mode!r}; use one of {DECLARATION_MODES}")
    base = stored if mode == "merge" and stored is not None else ClusterSpec()
    return patched_spec(base, dict(declaration))
