"""The [keeper] section: defaults, and each bad setting named with its fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rhizome.config import ConfigError
from rhizome.keeper.config import keeper_config, load_configuration
from rhizome.keeper.main import main

BIN_DIR = "/usr/lib/postgresql/15/bin"


def secret(path: Path, text: str = "secret", mode: int = 0o600) -> Path:
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return path


def config_file(tmp_path: Path, **overrides: object) -> Path:
    keeper = {
        "name": "pg1", "data_dir": str(tmp_path / "data"), "host": "10.0.0.1",
        "bin_dir": BIN_DIR,
        "superuser_password_file": str(secret(tmp_path / "super.pass")),
        "replication_password_file": str(secret(tmp_path / "repl.pass", "other")),
        **overrides,
    }  # fmt: skip
    lines = ['cluster = "main"', "[etcd]", 'endpoints = ["http://127.0.0.1:2379"]', "[keeper]"]
    for key, value in keeper.items():
        if value is not None:
            lines.append(f"{key} = {value}" if isinstance(value, int) else f'{key} = "{value}"')
    path = tmp_path / "keeper.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_defaults(tmp_path):
    keeper = load_configuration(config_file(tmp_path)).keeper
    assert keeper.port == 5432 and keeper.listen_addresses == "10.0.0.1"
    assert keeper.state_dir == tmp_path / "data.rhizome" and keeper.socket_dir == keeper.state_dir
    assert keeper.superuser == "postgres" and keeper.replication_user == "replicator"
    assert keeper.superuser_password == "secret" and keeper.replication_password == "other"
    assert keeper.lock_file == tmp_path / "data.rhizome.lock"
    assert "secret" not in repr(keeper)
    assert keeper.watchdog == "off" and keeper.watchdog_device == Path("/dev/watchdog")


def test_watchdog_settings(tmp_path):
    path = config_file(tmp_path, watchdog="required", watchdog_device="/dev/watchdog1")
    keeper = load_configuration(path).keeper
    assert keeper.watchdog == "required" and keeper.watchdog_device == Path("/dev/watchdog1")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": None}, "[keeper] name is required"),
        ({"name": "PG 1"}, "[keeper] name 'PG 1' is invalid"),
        ({"port": 0}, "[keeper] port must be an integer from 1 to 65535"),
        ({"port": "5432"}, "[keeper] port must be an integer"),
        ({"data_dir": "relative/data"}, "must be an absolute path"),
        ({"data_dir": "/nonexistent/parent/data"}, "its parent directory does not exist"),
        ({"bin_dir": "/tmp"}, "[keeper] bin_dir /tmp lacks postgres"),
        ({"superuser": "Bad-Name"}, "[keeper] superuser 'Bad-Name' is invalid"),
        ({"replication_user": "postgres"}, "superuser and replication_user must differ"),
        ({"replication_password_file": None}, "[keeper] replication_password_file is required"),
        ({"log_level": "loud"}, "log_level must be one of"),
        ({"colour": "blue"}, "unknown [keeper] settings ['colour']"),
        ({"watchdog": "on"}, '[keeper] watchdog must be "off", "automatic" or "required"'),
        ({"watchdog_device": "watchdog"}, "[keeper] watchdog_device 'watchdog' must be an abs"),
        ({"clone_from": "primary"}, "[keeper] clone_from 'primary' is invalid"),
        ({"clone_from": "repository"}, "clone_from 'repository' needs pgbackrest_config"),
    ],
)
def test_bad_settings_are_named(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as caught:
        load_configuration(config_file(tmp_path, **overrides))
    assert message in str(caught.value)


def test_a_readable_password_file_is_refused(tmp_path):
    shared = secret(tmp_path / "shared.pass", mode=0o644)
    with pytest.raises(ConfigError, match="chmod 0600"):
        load_configuration(config_file(tmp_path, superuser_password_file=str(shared)))


def test_main_prints_one_line_exits_2_and_creates_nothing(tmp_path, capsys):
    path = config_file(tmp_path, port=99999)
    before = sorted(tmp_path.iterdir())
    assert main(["--config", str(path)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("rhizome-keeper: error: ")
    assert "[keeper] port" in error[0]
    assert sorted(tmp_path.iterdir()) == before


def install_root(tmp_path: Path, *majors: str) -> Path:
    """A stand-in for /usr/lib/postgresql with the programs of each major version."""
    root = tmp_path / "usr-lib-postgresql"
    root.mkdir()
    for major in majors:
        programs = root / major / "bin"
        programs.mkdir(parents=True)
        for name in ("postgres", "initdb", "pg_basebackup", "pg_rewind", "pg_controldata"):
            (programs / name).write_text("#!/bin/sh\n")
            (programs / name).chmod(0o755)
    return root


def section_without_bin_dir(tmp_path: Path) -> dict[str, object]:
    return {
        "name": "pg1", "data_dir": str(tmp_path / "data"), "host": "10.0.0.1",
        "superuser_password_file": str(secret(tmp_path / "super.pass")),
        "replication_password_file": str(secret(tmp_path / "repl.pass", "other")),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("installed", "data_version", "expected"),
    [
        (["17"], None, "17"),  # a new node: the only version installed
        (["15"], None, "15"),
        (["15", "17"], "15", "15"),  # the data directory's own version wins
        (["15", "17"], "17", "17"),
    ],
)
def test_bin_dir_defaults_to_the_data_or_installed_version(
    tmp_path, installed, data_version, expected
):
    root = install_root(tmp_path, *installed)
    if data_version:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "PG_VERSION").write_text(data_version + "\n")
    keeper = keeper_config(section_without_bin_dir(tmp_path), "keeper.toml", root)
    assert keeper.bin_dir == root / expected / "bin"


@pytest.mark.parametrize(
    ("installed", "message"),
    [
        ([], "bin_dir is not set and {root} has no version to take it from; set bin_dir"),
        (["15", "17"], "bin_dir is not set and {root} has versions 15, 17 to take it from"),
    ],
)
def test_bin_dir_without_a_default_is_asked_for(tmp_path, installed, message):
    root = install_root(tmp_path, *installed)
    with pytest.raises(ConfigError) as caught:
        keeper_config(section_without_bin_dir(tmp_path), "keeper.toml", root)
    assert message.format(root=root) in str(caught.value)


def test_bin_dir_of_the_data_version_must_be_installed(tmp_path):
    root = install_root(tmp_path, "17")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "PG_VERSION").write_text("15\n")
    with pytest.raises(ConfigError, match=r"bin_dir .*/15/bin lacks postgres"):
        keeper_config(section_without_bin_dir(tmp_path), "keeper.toml", root)


def tls_files(tmp_path: Path, key_mode: int = 0o600) -> dict[str, object]:
    return {
        "tls_cert_file": str(secret(tmp_path / "server.crt", "PEM", 0o644)),
        "tls_key_file": str(secret(tmp_path / "server.key", "PEM", key_mode)),
        "tls_ca_file": str(secret(tmp_path / "ca.crt", "PEM", 0o644)),
    }


def test_tls_files_are_loaded(tmp_path):
    keeper = load_configuration(config_file(tmp_path, **tls_files(tmp_path))).keeper
    assert keeper.tls is not None and keeper.tls.key_file == tmp_path / "server.key"
    assert load_configuration(config_file(tmp_path)).keeper.tls is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tls_ca_file": None}, "tls_cert_file, tls_key_file needs tls_ca_file too"),
        (
            {"tls_cert_file": "relative.crt"},
            "tls_cert_file 'relative.crt' must be an absolute path",
        ),
        (
            {"tls_ca_file": "/nonexistent/ca.crt"},
            "tls_ca_file /nonexistent/ca.crt is not a readable file",
        ),
    ],
)
def test_bad_tls_settings_are_named(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        load_configuration(config_file(tmp_path, **{**tls_files(tmp_path), **change}))


def test_a_tls_key_others_can_read_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="has mode 0644; PostgreSQL needs 0600"):
        load_configuration(config_file(tmp_path, **tls_files(tmp_path, key_mode=0o644)))
