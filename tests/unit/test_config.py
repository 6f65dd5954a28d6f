"""Shared configuration loading: TOML, etcd settings, secret files."""

from __future__ import annotations

import os
import re

import pytest

from rhizome.config import ConfigError, load_file, read_secret_file, store_config
from rhizome.etcd_v2 import EtcdV2Client


def write(path, text: str, mode: int = 0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_a_complete_configuration_loads(tmp_path):
    secret = write(tmp_path / "etcd.pass", "s3cret\n")
    config_file = write(
        tmp_path / "keeper.toml",
        f'cluster = "main"\n[etcd]\nendpoints = ["http://127.0.0.1:2379"]\n'
        f'username = "rhizome"\npassword_file = "{secret}"\nrequest_timeout = 1.5\n',
        0o644,
    )
    config = store_config(load_file(config_file), str(config_file))
    assert config.cluster == "main" and config.root == "/rhizome"
    assert config.etcd.password == "s3cret" and config.etcd.request_timeout == 1.5
    assert "s3cret" not in repr(config)
    assert config.api == "v3"


def test_the_v2_api_opens_a_python_etcd_client_with_its_lease_directory_under_the_root(tmp_path):
    text = 'cluster = "main"\nstore_root = "/ha"\n[etcd]\nendpoints = ["http://x:1"]\napi = "v2"\n'
    config_file = write(tmp_path / "v2.toml", text)
    config = store_config(load_file(config_file), str(config_file))
    store = config.open()
    assert isinstance(store.client, EtcdV2Client) and not store.client.multi_key_compare
    assert store.client.lease_directory == "/ha/_leases"
    assert store.client.marker(5) == "/ha/_leases/00000000000000000005"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[etcd]\nendpoints = ["http://127.0.0.1:2379"]\n', "set cluster"),
        ('cluster = "main"\n', "add an [etcd] section"),
        ('cluster = "main"\n[etcd]\nendpoints = "http://x:1"\n', "list of URLs"),
        ('cluster = "main"\n[etcd]\nendpoints = ["x:1"]\n', "http(s)://HOST:PORT"),
        ('cluster = "main"\n[etcd]\nendpoints = ["http://x:1"]\nendpoint = 1\n', "unknown"),
        ('cluster = "Main Cluster"\n[etcd]\nendpoints = ["http://x:1"]\n', "cluster name"),
        ('cluster = "main"\n[etcd\n', "not valid TOML"),
        (
            'cluster = "main"\n[etcd]\nendpoints = ["http://x:1"]\napi = "v4"\n',
            '"v3" (the default) or "v2"',
        ),
    ],
)
def test_bad_configurations_name_the_problem(tmp_path, text, problem):
    config_file = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError, match=re.escape(problem)):
        store_config(load_file(config_file), str(config_file))


def test_secret_files_must_be_private_and_non_empty(tmp_path):
    shared = write(tmp_path / "shared.pass", "x\n", 0o644)
    with pytest.raises(ConfigError, match="chmod 0600"):
        read_secret_file(str(shared), "etcd password")
    empty = write(tmp_path / "empty.pass", "\n")
    with pytest.raises(ConfigError, match="is empty"):
        read_secret_file(str(empty), "etcd password")
    with pytest.raises(ConfigError, match="cannot read"):
        read_secret_file(str(tmp_path / "absent"), "etcd password")
    with pytest.raises(ConfigError, match="does not exist"):
        load_file(tmp_path / "absent.toml")
