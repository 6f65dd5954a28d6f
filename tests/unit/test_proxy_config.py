"""The proxy's configuration file: the shared settings plus [proxy]."""

from __future__ import annotations

import re

import pytest

from rhizome.api.config import ListenAddress
from rhizome.config import ConfigError
from rhizome.proxy.config import KeepaliveSettings, load_proxy_config

COMMON = 'cluster = "main"\n[etcd]\nendpoints = ["http://127.0.0.1:2379"]\n'


def load(tmp_path, proxy_section: str):
    path = tmp_path / "proxy.toml"
    path.write_text(COMMON + proxy_section)
    return load_proxy_config(path)


def test_a_minimal_section_gets_safe_defaults(tmp_path):
    store, config = load(tmp_path, '[proxy]\nid = "p1"\nread_write_listen = "0.0.0.0:5432"\n')
    assert store.cluster == "main"
    assert config.id == "p1"
    assert config.read_write_listen == ListenAddress("0.0.0.0", 5432)
    assert config.read_only_listen is None
    assert config.api.listen == ListenAddress("127.0.0.1", 9642), "metrics stay on localhost"
    assert not config.fallback_to_master
    assert config.max_connections == 2000
    assert config.keepalive == KeepaliveSettings()


def test_every_setting_is_read(tmp_path):
    _, config = load(
        tmp_path,
        "[proxy]\n"
        'id = "p2"\nread_write_listen = "[::1]:6432"\nread_only_listen = "10.0.0.5:6433"\n'
        "fallback_to_master = true\nmax_standby_lag_bytes = 0\n"
        "max_connections = 10\nconnect_timeout = 0.5\nkeepalive_idle = 30\n"
        'keepalive_interval = 2\nkeepalive_count = 9\n[api]\nlisten = "off"\n',
    )
    assert config.read_write_listen == ListenAddress("::1", 6432)
    assert str(config.read_write_listen) == "[::1]:6432"
    assert config.read_only_listen == ListenAddress("10.0.0.5", 6433)
    assert config.api.listen is None
    assert config.fallback_to_master and config.max_standby_lag_bytes == 0
    assert config.max_connections == 10 and config.connect_timeout == 0.5
    assert config.keepalive == KeepaliveSettings(idle=30, interval=2, count=9)


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("", "add a [proxy] section"),
        ('[proxy]\nread_write_listen = "0.0.0.0:5432"\n', "[proxy] id is missing"),
        ('[proxy]\nid = "P 1"\nread_write_listen = "0.0.0.0:5432"\n', "[proxy] id is invalid"),
        ('[proxy]\nid = "p"\n', "read_write_listen is missing"),
        ('[proxy]\nid = "p"\nread_write_listen = "5432"\n', "not HOST:PORT"),
        ('[proxy]\nid = "p"\nread_write_listen = "h:70000"\n', "outside 1..65535"),
        ('[proxy]\nid = "p"\nread_write_listen = "h:1"\nmax_connections = 0\n', "at least 1"),
        ('[proxy]\nid = "p"\nread_write_listen = "h:1"\nfallback_to_master = "yes"\n', "boolean"),
        ('[proxy]\nid = "p"\nread_write_listen = "h:1"\nconnect_timeout = 0\n', "(0, 600]"),
        ('[proxy]\nid = "p"\nread_write_listen = "h:1"\nlisten = "h:2"\n', "unknown [proxy]"),
    ],
)
def test_bad_settings_name_the_setting_and_the_fix(tmp_path, section, problem):
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load(tmp_path, section)
