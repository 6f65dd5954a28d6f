# Copyright: rhizome developers
# SPDX-License-Identifier: Apache-2.0
# Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports:
# ruff: noqa: E402
"""rhizome.pg.maintenance: pause or resume a cluster, put a keeper in or out of maintenance."""

from __future__ import annotations

DOCUMENTATION = r"""
module: maintenance
short_description: Pause a rhizome PostgreSQL cluster, or put a keeper in maintenance
version_added: 0.1.0
description:
  - Pauses or resumes the whole cluster (the spec's C(paused) flag, as C(rhizomectl pause) and
    C(rhizomectl resume) do). While paused, the sentinel makes no automatic change at all -
    no failover, no switchover, no change of the synchronous standby set.
  - Puts one keeper in maintenance or ends it (the spec's C(keepers.<name>.maintenance), as
    C(rhizomectl keeper maintenance NAME on|off) does). A keeper in maintenance is never
    promoted (no failover or switchover to it) and the proxies' read-only port leaves it out,
    so that its node can be stopped, patched or rebooted.
  - Both can be given in one task; the spec is then changed once.
  - The spec is changed with compare-and-swap, computed again when somebody else wrote it in
    between, and only when it changes; other fields of the spec are kept.
  - The rhizome library itself computes the change (see C(rhizomectl pause) and
    C(rhizomectl keeper maintenance)).
author:
  - rhizome developers (!UNKNOWN)
options:
  cluster_state:
    description:
      - V(paused) pauses the cluster's sentinel, V(running) ends a pause.
      - Left out, the pause is not touched.
      - It is not named C(cluster) because O(cluster) names the cluster.
    type: str
    choices: [paused, running]
  keeper:
    description:
      - The keeper whose maintenance O(state) sets; it must be known to the cluster (named in
        the spec or the sentinel's state, or publishing observations).
    type: str
  state:
    description:
      - V(on) puts O(keeper) in maintenance, V(off) ends its maintenance.
      - Quote the value in YAML (C("on")), or YAML reads a boolean.
      - Putting the master in maintenance is allowed, with a warning - the sentinel then does
        not fail over when the master goes away; move the master first with
        M(rhizome.pg.switchover).
    type: str
    choices: ['on', 'off']
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - rhizome.pg.store
attributes:
  check_mode:
    support: full
    details: Computes and validates the new spec and reports the change; writes nothing.
  diff_mode:
    support: full
    details: The whole spec before and after, as JSON with sorted keys and every default.
  platform:
    platforms: posix
notes:
  - At least one of O(cluster_state) and O(keeper) must be given; O(keeper) and O(state) go
    together.
seealso:
  - module: rhizome.pg.switchover
  - module: rhizome.pg.keeper
  - module: rhizome.pg.cluster_info
"""

EXAMPLES = r"""
- name: Pause the cluster for manual work
  rhizome.pg.maintenance:
    config: /etc/rhizome/rhizomectl.toml
    cluster_state: paused
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  run_once: true

- name: Take this node's keeper out of the read-only pool and of failover
  rhizome.pg.maintenance:
    cluster: main
    endpoints: ["https://10.0.0.1:2379"]
    keeper: "{{ rhizome_keeper_name }}"
    state: "on"
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python

- name: End the keeper's maintenance and resume the cluster
  rhizome.pg.maintenance:
    keeper: pg2
    state: "off"
    cluster_state: running
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  run_once: true
"""

RETURN = r"""
paused:
  description: Whether the cluster is paused after the task (would be, in check mode).
  returned: success
  type: bool
  sample: false
maintenance:
  description: Whether O(keeper) is in maintenance after the task (would be, in check mode).
  returned: success, when O(keeper) is given
  type: bool
  sample: true
spec:
  description: The full resulting spec, defaults included (the spec that would be written in
    check mode).
  returned: success
  type: dict
  sample: {paused: false, keepers: {pg2: {maintenance: true}}}
revision:
  description: The etcd revision of the stored spec after the task; the revision it was
    compared with in check mode or when nothing changed.
  returned: success
  type: int
  sample: 1042
"""

import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rhizome.pg.plugins.module_utils.operations import (
    OPERATIONS_IMPORT_ERROR,
    buffered_context,
    settings_change,
    spec_update_result,
)
from ansible_collections.rhizome.pg.plugins.module_utils.store_options import (
    STORE_ARGUMENT_SPEC,
    Result,
    run_with_store,
)

try:
    from rhizome.cli.operations import (
        maintenance_patch,
        master_maintenance_warning,
        read_checked_view,
        require_known_keeper,
    )
    from rhizome.cli.spec_commands import update_spec
    from rhizome.store.cluster_store import ClusterStore
except ImportError:
    IMPORT_ERROR: str | None = traceback.format_exc()
else:
    IMPORT_ERROR = None


def set_maintenance(module: AnsibleModule, store: ClusterStore) -> Result:
    """Change the pause and/or the keeper's maintenance in one compare-and-swap write."""
    context = buffered_context(store)
    cluster_state: str | None = module.params["cluster_state"]
    keeper: str | None = module.params["keeper"]
    patch: dict[str, Any] = {}
    labels: list[str] = []
    if cluster_state is not None:
        patch["paused"] = cluster_state == "paused"
        labels.append(cluster_state)
    if keeper is not None:
        wanted = module.params["state"] == "on"
        view = read_checked_view(context)
        require_known_keeper(context, view, keeper)
        warning = master_maintenance_warning(view, keeper) if wanted else None
        if warning is not None:
            module.warn(warning)
        patch |= maintenance_patch(keeper, wanted)
        labels.append(f"{keeper} maintenance {module.params['state']}")
    change = settings_change(patch, ", ".join(labels), dry_run=module.check_mode)
    update = update_spec(context, change)
    result = spec_update_result(module, update)
    result["paused"] = update.after.paused
    if keeper is not None:
        result["maintenance"] = update.after.keeper_settings(keeper).maintenance
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "cluster_state": {"type": "str", "choices": ["paused", "running"]},
            "keeper": {"type": "str"},
            "state": {"type": "str", "choices": ["on", "off"]},
        },
        required_one_of=[("cluster_state", "keeper")],
        required_together=[("keeper", "state")],
        supports_check_mode=True,
    )
    run_with_store(
        module, lambda store: set_maintenance(module, store), IMPORT_ERROR, OPERATIONS_IMPORT_ERROR
    )


if __name__ == "__main__":
    main()
