# Copyright: rhizome developers
# SPDX-License-Identifier: Apache-2.0
# Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports:
# ruff: noqa: E402
"""rhizome.pg.cluster_info: the master, standbys, lags, synchronous set and health of a cluster."""

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_info
short_description: Report the topology and health of a rhizome PostgreSQL cluster
version_added: 0.1.0
description:
  - Reads every document of the cluster from its store in etcd at one revision and returns the
    master, the standbys with their lag, the synchronous standby set, whether the cluster is
    paused, the agents and the settings waiting for a restart, and whether the cluster is
    healthy.
  - The same view as C(rhizomectl status), computed by the rhizome library itself.
  - Read-only; it never changes anything.
author:
  - rhizome developers (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - rhizome.pg.store
attributes:
  check_mode:
    support: full
    details: The module only reads, so it runs the same in check mode.
  diff_mode:
    support: none
    details: The module changes nothing.
  platform:
    platforms: posix
seealso:
  - module: rhizome.pg.cluster_spec
"""

EXAMPLES = r"""
- name: Read the cluster's topology
  rhizome.pg.cluster_info:
    cluster: main
    endpoints: ["http://127.0.0.1:2379"]
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  register: rhizome
  run_once: true

- name: Wait until there is one master and every standby streams from it
  rhizome.pg.cluster_info:
    config: /etc/rhizome/rhizomectl.toml
  vars:
    ansible_python_interpreter: /opt/rhizome/venv/bin/python
  register: rhizome
  until: rhizome.cluster_info.healthy
  retries: 60
  delay: 2
  run_once: true

- name: Say which standbys lag
  ansible.builtin.debug:
    msg: "{{ item.name }} is {{ item.lag_bytes }} bytes behind {{ rhizome.cluster_info.master }}"
  loop: "{{ rhizome.cluster_info.standbys | selectattr('lag_bytes') | list }}"
"""

RETURN = r"""
cluster_info:
  description: The cluster as read at one store revision.
  returned: success
  type: dict
  contains:
    cluster:
      description: The cluster's name.
      type: str
      sample: main
    store_revision:
      description: The etcd revision everything was read at.
      type: int
    spec_revision:
      description: The etcd revision of the spec; null when there is no spec.
      type: int
    state_generation:
      description: The generation of the sentinel's state; null before a sentinel published one.
      type: int
    master:
      description: The keeper assigned the master role; null when there is none.
      type: str
      sample: pg1
    master_host:
      description: Where the master's PostgreSQL listens, as its keeper reports; null when down.
      type: str
    master_port:
      description: The master's PostgreSQL port, as its keeper reports; null when down.
      type: int
    standbys:
      description: Every keeper other than the master (standbys, and keepers fenced, removed or
        not assigned yet), sorted by name.
      type: list
      elements: dict
      contains:
        name: {description: The keeper's name., type: str}
        role:
          description: Its assigned role (standby, fenced, removed), null when not assigned yet.
          type: str
        follow: {description: The keeper it is assigned to stream from., type: str}
        host: {description: Its PostgreSQL host; null when its keeper is down., type: str}
        port: {description: Its PostgreSQL port; null when its keeper is down., type: int}
        state:
          description: Words describing it, as in C(rhizomectl status), for example
            V(standby), V(healthy), V(maintenance).
          type: list
          elements: str
        alive: {description: Its keeper publishes observations., type: bool}
        streaming: {description: It is streaming from the master., type: bool}
        lag_bytes: {description: Bytes behind the master; null when unknown., type: int}
        synchronous: {description: It is a confirmed synchronous standby., type: bool}
        maintenance: {description: The operator put it in maintenance., type: bool}
        removed: {description: It is removed or its removal is requested., type: bool}
        pending_restart:
          description: Its PostgreSQL parameters that only apply after a restart.
          type: list
          elements: str
    synchronous:
      description: Synchronous replication enabled in the spec, and the synchronous standby
        set the sentinel requested and the master confirmed.
      type: dict
      sample: {enabled: true, requested: [pg2], confirmed: [pg2]}
    paused:
      description: Whether the sentinel is paused; null when there is no spec.
      type: bool
    operation:
      description: The operation the sentinel is carrying out (failover, switchover), or null.
      type: dict
    pending_commands:
      description: Names of operator commands not finished yet.
      type: list
      elements: str
    sentinel_leader:
      description: The identifier of the leading sentinel; null when none is elected.
      type: str
    proxy_generation:
      description: The generation of the proxies' target in the state.
      type: int
    proxies:
      description: Running proxies, by identifier, with the target generation each applied.
      type: dict
      sample: {proxy-app1: 4}
    pending_restart:
      description: Keepers whose PostgreSQL has settings waiting for a restart.
      type: list
      elements: str
    problems:
      description: Every reason the cluster is not healthy, in words (empty when healthy).
      type: list
      elements: str
      sample: ["standby pg3 is down: its keeper does not report"]
    healthy:
      description: Exactly one master, alive and accepting writes; every standby that is
        neither in maintenance nor removed alive and streaming from it; no unusable store
        document.
      type: bool
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.rhizome.pg.plugins.module_utils.store_options import (
    STORE_ARGUMENT_SPEC,
    Result,
    run_with_store,
)

try:
    from rhizome.cli.cluster_summary import cluster_summary
    from rhizome.store.cluster_store import ClusterStore
except ImportError:
    IMPORT_ERROR: str | None = traceback.format_exc()
else:
    IMPORT_ERROR = None


def read_info(store: ClusterStore) -> Result:
    view = store.read_view()
    return {"changed": False, "cluster_info": cluster_summary(view, store.keys.cluster)}


def main() -> None:
    module = AnsibleModule(argument_spec=STORE_ARGUMENT_SPEC, supports_check_mode=True)
    run_with_store(module, read_info, IMPORT_ERROR)


if __name__ == "__main__":
    main()
