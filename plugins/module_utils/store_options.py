# Copyright: rhizome developers
# SPDX-License-Identifier: Apache-2.0
"""What every rhizome.pg module shares: the store options, opening the store, errors.

The modules use the rhizome library itself (installed on the node in the
virtualenv the agent role creates), so they must run with that virtualenv's
Python. The store is found exactly as `rhizomectl` finds it
(`rhizome.cli.context.resolve_store_config`), except that $RHIZOME_CONFIG is
ignored: a task says where its cluster is.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from rhizome.cli.context import DEFAULT_CONFIG_PATH, StoreOptions, resolve_store_config
    from rhizome.cli.errors import CliError
    from rhizome.config import ConfigError
    from rhizome.etcd import EtcdError, EtcdUnavailable
    from rhizome.spec import SpecError
    from rhizome.store.cluster_store import ClusterStore
    from rhizome.store.errors import StoreError
except ImportError:
    RHIZOME_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    RHIZOME_IMPORT_ERROR = None

DEFAULT_CONFIG = "/etc/rhizome/rhizomectl.toml"
VIRTUALENV_PYTHON = "/opt/rhizome/venv/bin/python"

STORE_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "config": {"type": "path", "default": DEFAULT_CONFIG},
    "endpoints": {"type": "list", "elements": "str"},
    "cluster": {"type": "str"},
}
"""The options documented by the rhizome.pg.store documentation fragment."""

Result = dict[str, Any]


def require_rhizome(module: AnsibleModule, *import_errors: str | None) -> None:
    """Fail the task, naming the fix, when this Python cannot import rhizome."""
    error = next((e for e in (RHIZOME_IMPORT_ERROR, *import_errors) if e is not None), None)
    if error is not None:
        fix = (
            "rhizome is installed in a virtualenv by the rhizome.pg.agent role: run this module "
            f"with that virtualenv's Python (ansible_python_interpreter: {VIRTUALENV_PYTHON})"
        )
        module.fail_json(msg=f"{missing_required_lib('rhizome')}. {fix}", exception=error)


def store_options(params: dict[str, Any]) -> StoreOptions:
    """The module options as rhizomectl's global options (a default config file is optional)."""
    endpoints: list[str] | None = params.get("endpoints")
    config: str = params.get("config") or DEFAULT_CONFIG
    options = StoreOptions(
        config=None if config in (DEFAULT_CONFIG, DEFAULT_CONFIG_PATH) else config,
        endpoints=None if endpoints is None else ",".join(endpoints),
        cluster=params.get("cluster"),
    )
    self_sufficient = options.endpoints is not None and options.cluster is not None
    if not self_sufficient and not os.path.exists(config):
        raise ConfigError(
            f"the configuration file {config} does not exist: set the option config to the "
            "rhizome configuration file naming the cluster and its etcd, or give both "
            "endpoints and cluster"
        )
    return options


def open_store(params: dict[str, Any]) -> ClusterStore:
    """The cluster's store, found as rhizomectl finds it (nothing is contacted yet)."""
    return resolve_store_config(store_options(params), environment={}).open()


def failure(error: Exception) -> Result:
    """fail_json's arguments for an error of the rhizome library, in an operator's words."""
    if isinstance(error, SpecError):
        header = str(error).splitlines()[0]
        return {"msg": f"{header} {' | '.join(error.problems)}", "problems": list(error.problems)}
    if isinstance(error, EtcdUnavailable):
        return {
            "msg": f"the store is unreachable: {error}; check that etcd runs at the endpoints "
            "given (option endpoints, or [etcd] endpoints in the config file) and that this "
            "host can reach them"
        }
    return {"msg": str(error)}


def run_with_store(
    module: AnsibleModule, action: Callable[[ClusterStore], Result], *import_errors: str | None
) -> None:
    """Open the store, run `action` on it and exit with its result, or fail with a clear message."""
    require_rhizome(module, *import_errors)
    try:
        store = open_store(module.params)
    except (ConfigError, EtcdError, StoreError) as error:
        module.fail_json(**failure(error))
    try:
        result = action(store)
    except (CliError, ConfigError, SpecError, EtcdError, StoreError) as error:
        module.fail_json(**failure(error))
    finally:
        store.client.close()
    module.exit_json(**result)
