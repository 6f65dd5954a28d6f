"""`python -m rhizome.check_config`: the roles' configuration check, on real files."""

from pathlib import Path

import pytest

from rhizome.check_config import main

STORE = 'cluster = "main"\n[etcd]\nendpoints = ["http://10.0.0.1:2379"]\n'


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "program.toml"
    path.write_text(text)
    return str(path)


def test_a_good_proxy_file_passes(tmp_path: Path) -> None:
    path = write(tmp_path, STORE + '[proxy]\nid = "app1"\nread_write_listen = "0.0.0.0:6432"\n')
    assert main(["proxy", path]) == 0


def test_a_wrong_setting_fails_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        STORE + '[proxy]\nid = "app1"\nread_write_listen = "0.0.0.0:6432"\nmax_conections = 5\n',
    )
    assert main(["proxy", path]) == 2
    assert "max_conections" in capsys.readouterr().err


def test_a_sentinel_id_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sentinel", write(tmp_path, STORE + '[sentinel]\nid = "s1"\n')]) == 0
    assert main(["sentinel", write(tmp_path, STORE + '[sentinel]\nid = "Not Valid"\n')]) == 2
    assert "[sentinel] id" in capsys.readouterr().err


def test_a_sentinel_api_section_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sentinel = STORE + '[sentinel]\nid = "s1"\n[api]\n'
    assert main(["sentinel", write(tmp_path, sentinel + 'listen = "127.0.0.1:9644"\n')]) == 0
    assert main(["sentinel", write(tmp_path, sentinel + 'listen = "0.0.0.0:9644"\n')]) == 2
    assert "reachable from other hosts" in capsys.readouterr().err


def test_rhizomectl_needs_the_store_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rhizomectl", write(tmp_path, STORE)]) == 0
    assert main(["rhizomectl", write(tmp_path, "[etcd]\nendpoints = []\n")]) == 2
    assert "rhizomectl:" in capsys.readouterr().err


def test_a_keeper_file_without_its_section_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keeper", write(tmp_path, STORE)]) == 2
    assert "[keeper]" in capsys.readouterr().err


def test_an_unknown_program_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["postgres", "/nonexistent"]) == 2
    assert "usage" in capsys.readouterr().err
