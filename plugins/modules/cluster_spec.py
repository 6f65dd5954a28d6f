# Copyright: rhizome developers
# SPDX-License-Identifier: Apache-2.0
# Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports:
# ruff: noqa: E402
"""rhizome.pg.cluster_spec: apply the declared cluster spec to the store, idempotently."""

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_spec
short_description: Apply the declared spec of a rhizome PostgreSQL cluster
version_added: 0.1.0
description:
  - Writes the cluster spec declared in the inventory (timings, synchronous replication,
    PostgreSQL parameters, pg_hba entries, per-keeper settings) to the cluster's store in etcd,
    where the sentinel and the keepers read it.
  - Creates the spec when the cluster has none yet, as C(rhizomectl init) does.
  - The new spec is validated before anything is written; an invalid spec fails the task with
    every problem named by its field, and the store is left untouched.
  - Every new or changed C(pg_parameters) value is checked against the PostgreSQL version the
    cluster runs (the versions its keepers report), with the PostgreSQL binaries installed on
    the host the module runs on (C(postgres --describe-config) and C(postgres -C) over a
    scratch file; no server or credentials needed). A value PostgreSQL refuses fails the task,
    in check mode too, naming the parameter, the value and the accepted form. When the
    binaries of that version are not installed there, the task warns that it could not check.
  - The spec is written with compare-and-swap; when somebody else changes it in between, the
    change is computed again from the new spec (a few times at most).
  - The rhizome library itself computes and validates the spec (see C(rhizomectl spec)).
author:
  - rhizome developers (!UNKNOWN)
options:
  spec:
    description:
      - The declared fields of the cluster spec, as C(rhizomectl spec show) prints them, for
        example C(timing), C(synchronous_replication), C(max_standby_lag_bytes),
        C(pg_parameters), C(pg_hba), C(use_pg_rewind), C(init_mode), C(initial_master),
        C(paused), C(dead_keeper_removal_after) and C(keepers).
      - Every field, its default and its meaning are documented in the rhizome package
        (C(rhizome.spec)).
    type: dict
    required: true
  mode:
    description:
      - V(merge) applies O(spec) as a JSON merge patch (RFC 7386) over the stored spec. Fields
        it does not name keep their stored values, so operational flags other tools set
        (C(paused), C(keepers.<name>.maintenance), C(keepers.<name>.removed)) survive.
        Objects such as C(pg_parameters) merge key by key, lists such as C(pg_hba) are replaced
        whole, and a null value resets a field to its default.
      - V(replace) makes O(spec) the whole spec; every field it leaves out takes its default
        (this also clears C(paused) and per-keeper settings it does not declare).
    type: str
    choices: [merge, replace]
    default: merge
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - rhizome.pg.store
attributes:
  check_mode:
    support: full
    details: Computes, validates and reports the change; writes nothing.
  diff_mode:
    support: full
    details: The whole spec before and after, as JSON with sorted keys and every default.
  platform:
    platforms: posix
seealso:
  - module: rhizome.pg.cluster_info
"""

EXAMPLES = r"""
- name: Apply the cluster spec declared in the inventory
  rhizome.pg.cluster_spec:
    cluster: main
    endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"]
    spec:
      timing:
        failover_delay: 1.0
      synchronous_replication:
        enabled: true
      pg_parameters:
        max_connections: "200"
        shared_buffers: 1GB
      pg_hba:
        - {type: host, database: all, user: app, address: 10.0.1.0/24, method: scram-sha-256}
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  run_once: true

- name: Declare the whole spec (undeclared fields, paused included, return to their defaults)
  rhizome.pg.cluster_spec:
    config: /etc/rhizome/rhizomectl.toml
    spec: "{{ rhizome_cluster_spec }}"
    mode: replace
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  run_once: true
"""

RETURN = r"""
spec:
  description: The full resulting spec, defaults included (the spec that would be written in
    check mode).
  returned: success
  type: dict
  sample:
    timing: {failover_delay: 1.0, keeper_lease_ttl: 5.0}
    synchronous_replication: {enabled: true, min_standbys: 1, max_standbys: 1}
    paused: false
revision:
  description: The etcd revision of the stored spec after the task; the revision it was
    compared with in check mode, 0 when there is no spec yet.
  returned: success
  type: int
  sample: 1042
created:
  description: Whether the cluster had no spec and the task creates it.
  returned: success
  type: bool
  sample: false
problems:
  description: Each problem of an invalid spec, naming its field, what is wrong and the fix.
  returned: failure because the spec is invalid
  type: list
  elements: str
  sample:
    - "timing.failover_dealy: is not a known field; remove it or correct its spelling"
    - "pg_parameters.work_mem: 'banana' is not an integer; give an integer from 64 to 2147483647
      in its base unit (a memory or time parameter also takes a unit, such as 64MB or 5s)"
"""

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rhizome.pg.plugins.module_utils.operations import spec_diff
from ansible_collections.rhizome.pg.plugins.module_utils.store_options import (
    STORE_ARGUMENT_SPEC,
    Result,
    run_with_store,
)

try:
    from rhizome.cli.errors import OperationFailed
    from rhizome.cli.spec_commands import WRITE_ATTEMPTS
    from rhizome.cli.spec_declaration import DeclarationMode, declared_spec
    from rhizome.pgconfig.check import changed_parameters, check_values, raise_value_problems
    from rhizome.spec import ClusterSpec
    from rhizome.store.cluster_store import ClusterStore
except ImportError:
    IMPORT_ERROR: str | None = traceback.format_exc()
else:
    IMPORT_ERROR = None

MODES = ["merge", "replace"]
"""rhizome.cli.spec_declaration.DECLARATION_MODES, known before rhizome is imported."""


def apply_spec(module: AnsibleModule, store: ClusterStore) -> Result:
    """Write the declared spec with compare-and-swap, computing it again after a conflict."""
    declaration: dict[str, Any] = module.params["spec"]
    mode: DeclarationMode = module.params["mode"]
    for _attempt in range(WRITE_ATTEMPTS):
        stored = store.read_spec()
        new_spec = declared_spec(stored.document if stored else None, declaration, mode)
        revision = stored.mod_revision if stored else 0
        if stored is not None and stored.document == new_spec:
            return outcome(new_spec, revision, changed=False, created=False)
        check_parameter_values(module, store, stored.document if stored else None, new_spec)
        written = revision if module.check_mode else store.write_spec(new_spec, revision)
        if written is not None:
            result = outcome(new_spec, written, changed=True, created=stored is None)
            if module._diff:
                before = stored.document if stored else None
                written_revision = None if module.check_mode else written
                result["diff"] = spec_diff(before, revision, new_spec, written_revision)
            return result
    raise OperationFailed(
        f"the spec changed {WRITE_ATTEMPTS} times while writing; nothing was written, try again"
    )


def check_parameter_values(
    module: AnsibleModule, store: ClusterStore, before: ClusterSpec | None, after: ClusterSpec
) -> None:
    """Fail (SpecError) on pg_parameters values PostgreSQL would refuse, in check mode too."""
    changed = changed_parameters(before, after)
    if not changed:
        return
    keepers = [stored.document for stored in store.read_view().keepers.values()]
    check = check_values(changed, keepers)
    for reason in check.unchecked:
        module.warn(f"pg_parameters values not checked: {reason}")
    raise_value_problems(check)


def outcome(spec: ClusterSpec, revision: int, *, changed: bool, created: bool) -> Result:
    return {
        "changed": changed,
        "created": created,
        "revision": revision,
        "spec": spec.model_dump(mode="json"),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "spec": {"type": "dict", "required": True},
            "mode": {"type": "str", "choices": MODES, "default": "merge"},
        },
        supports_check_mode=True,
    )
    run_with_store(module, lambda store: apply_spec(module, store), IMPORT_ERROR)


if __name__ == "__main__":
    main()
