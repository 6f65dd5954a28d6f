# Copyright: rhizome developers
# SPDX-License-Identifier: Apache-2.0
"""Documentation of the options every rhizome.pg module uses to reach the cluster's store."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  config:
    description:
      - The rhizome configuration file (TOML) naming the cluster and how to reach etcd
        (C(cluster), C(store_root) and the C([etcd]) section, as C(rhizomectl --config) reads it).
      - When O(endpoints) and O(cluster) are both given and this file is left at its default and
        does not exist, no file is needed.
    type: path
    default: /etc/rhizome/rhizomectl.toml
  endpoints:
    description:
      - etcd client URLs, for example V(https://10.0.0.1:2379); they override the file's.
    type: list
    elements: str
  cluster:
    description:
      - The cluster's name in etcd (its keys are under C(/rhizome/<cluster>/)); overrides the
        file's.
    type: str
requirements:
  - The rhizome Python package (distribution C(rhizome-pg)) in the Python that runs the module.
    The P(rhizome.pg.agent#role) role installs it in the virtualenv C(/opt/rhizome/venv), so
    set C(ansible_python_interpreter=/opt/rhizome/venv/bin/python) on the task.
"""
