# Copyright: rhizome developers
# SPDX-License-Identifier: Apache-2.0
# Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports:
# ruff: noqa: E402
"""rhizome.pg.keeper: remove a keeper from a cluster, or undo its removal."""

from __future__ import annotations

DOCUMENTATION = r"""
module: keeper
short_description: Remove a keeper from a rhizome PostgreSQL cluster, or undo the removal
version_added: 0.1.0
description:
  - With O(state=absent), marks the keeper removed in the cluster's spec
    (C(keepers.<name>.removed), as C(rhizomectl keeper remove NAME) does). The sentinel then
    assigns it the role C(removed), its keeper stops its PostgreSQL for good and the master
    drops its replication slot; afterwards stop the keeper's service on its host.
  - With O(state=present), clears the mark (as C(rhizomectl keeper remove NAME --undo) does),
    so that the keeper may join the cluster again.
  - Refuses to remove the master, or a keeper a failover or switchover is promoting; move the
    master away first with M(rhizome.pg.switchover).
  - The spec is changed with compare-and-swap and only when it changes; the rhizome library
    itself computes the change.
author:
  - rhizome developers (!UNKNOWN)
options:
  name:
    description:
      - The keeper's name. It must be known to the cluster (named in the spec or the
        sentinel's state, or publishing observations).
    type: str
    required: true
  state:
    description:
      - V(absent) removes the keeper from the cluster, V(present) undoes a removal.
    type: str
    choices: [absent, present]
    required: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - rhizome.pg.store
attributes:
  check_mode:
    support: full
    details: Checks the keeper and computes the new spec; writes nothing.
  diff_mode:
    support: full
    details: The whole spec before and after, as JSON with sorted keys and every default.
  platform:
    platforms: posix
seealso:
  - module: rhizome.pg.switchover
  - module: rhizome.pg.maintenance
  - module: rhizome.pg.cluster_info
"""

EXAMPLES = r"""
- name: Remove the keeper of a node that is being retired
  rhizome.pg.keeper:
    config: /etc/rhizome/rhizomectl.toml
    name: pg3
    state: absent
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  run_once: true

- name: Let it join the cluster again
  rhizome.pg.keeper:
    cluster: main
    endpoints: ["https://10.0.0.1:2379"]
    name: pg3
    state: present
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  run_once: true
"""

RETURN = r"""
removed:
  description: Whether the keeper is marked removed after the task (would be, in check mode).
  returned: success
  type: bool
  sample: true
spec:
  description: The full resulting spec, defaults included (the spec that would be written in
    check mode).
  returned: success
  type: dict
  sample: {keepers: {pg3: {removed: true}}}
revision:
  description: The etcd revision of the stored spec after the task; the revision it was
    compared with in check mode or when nothing changed.
  returned: success
  type: int
  sample: 1042
"""

import traceback

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
    from rhizome.cli.keeper_status import REMOVAL_SETTING
    from rhizome.cli.operations import (
        read_checked_view,
        refuse_master_removal,
        removal_patch,
        require_known_keeper,
    )
    from rhizome.cli.spec_commands import update_spec
    from rhizome.store.cluster_store import ClusterStore
except ImportError:
    IMPORT_ERROR: str | None = traceback.format_exc()
else:
    IMPORT_ERROR = None


def set_removal(module: AnsibleModule, store: ClusterStore) -> Result:
    """Mark the keeper removed (never the master) or clear the mark."""
    context = buffered_context(store)
    name: str = module.params["name"]
    remove = module.params["state"] == "absent"
    view = read_checked_view(context)
    require_known_keeper(context, view, name)
    if remove:
        refuse_master_removal(context, view, name)
    patch = removal_patch(name, removed=remove)
    update = update_spec(context, settings_change(patch, "removal", dry_run=module.check_mode))
    result = spec_update_result(module, update)
    result["removed"] = bool(getattr(update.after.keeper_settings(name), REMOVAL_SETTING, False))
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["absent", "present"], "required": True},
        },
        supports_check_mode=True,
    )
    run_with_store(
        module, lambda store: set_removal(module, store), IMPORT_ERROR, OPERATIONS_IMPORT_ERROR
    )


if __name__ == "__main__":
    main()
