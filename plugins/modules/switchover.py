# Copyright: rhizome developers
# SPDX-License-Identifier: Apache-2.0
# Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports:
# ruff: noqa: E402
"""rhizome.pg.switchover: planned change of master, waiting until the sentinel finished it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: switchover
short_description: Switch the master of a rhizome PostgreSQL cluster over to a standby
version_added: 0.1.0
description:
  - Asks the cluster's leader sentinel for a planned switchover to the standby O(target), or to
    the best standby (the most advanced eligible one), and waits until the sentinel finished
    it, as C(rhizomectl switchover --wait) does.
  - The sentinel blocks writes (the proxies hold new connections), has the old master shut
    down cleanly, promotes the target once it has received everything the old master wrote,
    and routes the proxies to it; the old master rejoins as a standby. Nothing acknowledged is
    lost. The task returns the old and the new master and how long writes were paused, as the
    sentinel measured it.
  - Refuses, with the reason and without asking the sentinel, when the cluster is paused, not
    initialised, already in a switchover or failover, or has a command pending; when
    O(target) is unknown, down, not a standby, in maintenance or marked C(no_failover); and
    when no standby is eligible or O(target) is not (unhealthy, or further behind the master
    than the spec's C(max_standby_lag_bytes)) by the sentinel's own rules applied to what the
    store shows. The sentinel checks again when it gets the command and may still refuse;
    the task then fails with its reason.
  - When O(target) is already the master and no operation is in progress, nothing is done.
author:
  - rhizome developers (!UNKNOWN)
options:
  target:
    description:
      - The keeper to make master. Left out, the sentinel chooses the most advanced eligible
        standby.
    type: str
  timeout:
    description:
      - Seconds (more than 0) the sentinel may take to carry the switchover out; it abandons it
        afterwards (the old master keeps or gets back its role). The task waits that long, plus
        a few seconds for the sentinel to record the outcome.
    type: float
    default: 60.0
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - rhizome.pg.store
attributes:
  check_mode:
    support: full
    details: Makes every check and reports whether a switchover would be requested and to whom
      (the standby named, or the one the sentinel would choose now); submits nothing.
  diff_mode:
    support: none
    details: The module changes no document that a diff could show; it returns the old and new
      master.
  platform:
    platforms: posix
seealso:
  - module: rhizome.pg.cluster_info
  - module: rhizome.pg.maintenance
"""

EXAMPLES = r"""
- name: Switch over to pg2
  rhizome.pg.switchover:
    config: /etc/rhizome/rhizomectl.toml
    target: pg2
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  register: switchover
  run_once: true

- name: Report the write pause
  ansible.builtin.debug:
    msg: >-
      {{ switchover.old_master }} -> {{ switchover.new_master }},
      writes paused {{ switchover.write_pause }} s

- name: Move the master away from this node, to the best standby
  rhizome.pg.switchover:
    cluster: main
    endpoints: ["https://10.0.0.1:2379"]
    timeout: 120
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  when: rhizome.cluster_info.master == rhizome_keeper_name
"""

RETURN = r"""
old_master:
  description: The master before the task; null when the cluster had none.
  returned: always
  type: str
  sample: pg1
new_master:
  description: The master after the task. In check mode, the standby the switchover would go
    to (the one named, or the one the sentinel would choose now). After a refusal, the master
    unchanged.
  returned: always
  type: str
  sample: pg2
write_pause:
  description: Seconds the proxies routed writes nowhere during the switchover, measured by the
    sentinel; null when there was no switchover (check mode, nothing to do, refused).
  returned: always
  type: float
  sample: 0.84
command:
  description: The name of the command submitted to the sentinel (its key under
    C(/rhizome/<cluster>/commands/) while pending).
  returned: when a command was submitted
  type: str
  sample: switchover-20240501-120003-a1b2
outcome:
  description: How the sentinel finished the command; V(done), V(refused) or V(abandoned).
    Null when it did not finish it in time.
  returned: when a command was submitted
  type: str
  sample: done
reason:
  description: What the sentinel said about the outcome.
  returned: when the sentinel finished the command
  type: str
stdout_lines:
  description: What C(rhizomectl switchover --wait) would have printed (the command, each
    phase, the outcome).
  returned: when a command was submitted
  type: list
  elements: str
  sample:
    - submitted switchover command switchover-20240501-120003-a1b2 (to pg2)
    - "switchover (to pg2): phase draining"
    - "switchover switchover-20240501-120003-a1b2 done pg1 -> pg2, writes paused 0.8 s: ..."
"""

import time
import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rhizome.pg.plugins.module_utils.operations import (
    OPERATIONS_IMPORT_ERROR,
    buffered_context,
    output_lines,
    report_warnings,
)
from ansible_collections.rhizome.pg.plugins.module_utils.store_options import (
    STORE_ARGUMENT_SPEC,
    Result,
    run_with_store,
)

try:
    from rhizome.cli.commands import (
        command_refusal,
        requester,
        submit,
        switchover_choice,
    )
    from rhizome.cli.errors import CliError, OperationFailed, OperationRefused
    from rhizome.cli.spec_commands import require_spec
    from rhizome.cli.waiting import report_result, wait_for_result
    from rhizome.store.cluster_store import ClusterStore
except ImportError:
    IMPORT_ERROR: str | None = traceback.format_exc()
else:
    IMPORT_ERROR = None

REQUESTER = "ansible rhizome.pg.switchover"
DEFAULT_TIMEOUT = 60.0
"""rhizome.cli.commands.DEFAULT_COMMAND_TIMEOUT, known before rhizome is imported."""


def switch_over(module: AnsibleModule, store: ClusterStore) -> Result:
    """Check, submit the command (not in check mode) and wait for the sentinel's result."""
    context = buffered_context(store)
    target: str | None = module.params["target"]
    timeout: float = module.params["timeout"]
    spec = require_spec(context).document
    view = store.read_view()
    state = view.state.document if view.state else None
    master = state.master if state else None
    unchanged: Result = {"old_master": master, "new_master": master, "write_pause": None}
    if target is not None and state is not None and master == target and state.operation is None:
        return {"changed": False, "msg": f"keeper {target} is already the master", **unchanged}
    refusal = command_refusal(view, spec, "switchover", target)
    choice = switchover_choice(view, spec, target, time.time()) if refusal is None else None
    if choice is not None and choice.best is None:
        refusal = choice.describe()
    if refusal is not None or choice is None:
        raise OperationRefused(f"switchover refused: {refusal}")
    if module.check_mode:
        chosen = "" if target is not None else " (the best standby now)"
        return {
            "changed": True,
            "msg": f"would switch over from {master} to {choice.best}{chosen}",
            **unchanged,
            "new_master": choice.best,
        }
    command = submit(context, "switchover", target, timeout, requester(REQUESTER))
    report_warnings(module, context)
    context.say(f"submitted switchover command {command.name} (to {target or 'the best standby'})")
    submitted: dict[str, Any] = {"command": command.name, "outcome": None, **unchanged}
    try:
        result = wait_for_result(context, command, timeout)
    except CliError as error:
        lines = output_lines(context)
        module.fail_json(msg=str(error), changed=True, stdout_lines=lines, **submitted)
    if result is not None:
        submitted |= {
            "outcome": result.outcome,
            "reason": result.reason,
            "old_master": result.old_master,
            "new_master": result.new_master,
            "write_pause": result.write_pause,
        }
    changed = result is None or result.old_master != result.new_master
    try:
        report_result(context, command.name, result, timeout)
    except OperationFailed as error:
        module.fail_json(
            msg=str(error), changed=changed, stdout_lines=output_lines(context), **submitted
        )
    lines = output_lines(context)
    return {"changed": changed, "msg": lines[-1], "stdout_lines": lines, **submitted}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "target": {"type": "str"},
            "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
        },
        supports_check_mode=True,
    )
    if not module.params["timeout"] > 0:
        module.fail_json(
            msg=f"timeout must be a positive number of seconds, not {module.params['timeout']}"
        )
    run_with_store(
        module, lambda store: switch_over(module, store), IMPORT_ERROR, OPERATIONS_IMPORT_ERROR
    )


if __name__ == "__main__":
    main()
