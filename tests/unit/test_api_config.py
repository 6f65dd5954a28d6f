"""The [api] section: defaults per agent, files, and the rule for APIs open to other hosts."""

from __future__ import annotations

import pytest

from rhizome.api.config import ApiConfig, ListenAddress, api_config
from rhizome.config import ConfigError


def token_file(tmp_path, mode: int = 0o600):
    path = tmp_path / "api.token"
    path.write_text("s3cret-token\n")
    path.chmod(mode)
    return str(path)


@pytest.mark.parametrize(("agent", "port"), [("keeper", 9643), ("sentinel", 9644), ("proxy", 9642)])
def test_each_agent_listens_on_localhost_by_default(agent, port):
    assert api_config({}, "f.toml", agent) == ApiConfig(ListenAddress("127.0.0.1", port))


def test_off_disables_the_api():
    assert api_config({"api": {"listen": "off"}}, "f.toml", "keeper").listen is None


def test_the_token_is_read_from_its_file_and_never_shown(tmp_path):
    config = api_config({"api": {"token_file": token_file(tmp_path)}}, "f.toml", "keeper")
    assert config.token == "s3cret-token"
    assert "s3cret" not in repr(config)


def test_a_token_file_others_can_read_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="chmod 0600"):
        api_config({"api": {"token_file": token_file(tmp_path, 0o644)}}, "f.toml", "keeper")


@pytest.mark.parametrize(
    ("section", "says"),
    [
        ({"listen": "9643"}, "not HOST:PORT"),
        ({"listen": "127.0.0.1:99999"}, "outside 1..65535"),
        ({"listn": "127.0.0.1:1"}, "unknown [api] settings ['listn']"),
        ({"cert_file": "/etc/api.pem"}, "cert_file and key_file go together"),
        ({"client_ca_file": "/etc/ca.pem"}, "client_ca_file needs TLS"),
        ({"cert_file": "api.pem", "key_file": "/k"}, "must be an absolute path"),
        ({"listen": "0.0.0.0:9643"}, "reachable from other hosts"),
        (
            {"listen": "10.0.0.1:9643", "cert_file": "/c", "key_file": "/k"},
            "token_file or client_ca",
        ),
    ],
)
def test_bad_settings_name_the_setting_and_the_fix(section, says):
    with pytest.raises(ConfigError) as raised:
        api_config({"api": section}, "f.toml", "keeper")
    assert says in str(raised.value) and "f.toml" in str(raised.value)


def test_an_api_on_another_address_with_tls_and_a_token_is_accepted(tmp_path):
    section = {"listen": "[::]:9643", "cert_file": "/c", "key_file": "/k",
               "token_file": token_file(tmp_path)}  # fmt: skip
    config = api_config({"api": section}, "f.toml", "keeper")
    assert config.listen == ListenAddress("::", 9643) and str(config.listen) == "[::]:9643"


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True),
                         ("localhost", True), ("0.0.0.0", False), ("db1", False)])  # fmt: skip
def test_loopback_addresses(host, loopback):
    assert ListenAddress(host, 1).loopback is loopback
