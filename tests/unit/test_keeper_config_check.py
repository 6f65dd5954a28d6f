"""The keeper's per-pass configuration check: rendered once, files read only when they may
have changed (real files in a temporary data directory)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from rhizome.keeper import config_check
from rhizome.keeper.conffiles import ConfigRequest, render_configuration, write_configuration
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.config_check import RACY_SECONDS, ConfigurationCheck
from rhizome.keeper.tls import PostgresTls, files_digest
from rhizome.spec import parse_spec
from tests.unit.test_keeper_conffiles import keeper

LATER = time.time_ns() + int(3600e9)  # every file is settled by then
STANDBY = ConfigRequest(standby=True)


@pytest.fixture
def compares(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records each time the files are read and compared."""
    calls: list[Path] = []
    real = config_check.configuration_differs

    def counting(data_dir: Path, rendered: object, standby: bool) -> bool:
        calls.append(data_dir)
        return real(data_dir, rendered, standby)  # type: ignore[arg-type]

    monkeypatch.setattr(config_check, "configuration_differs", counting)
    return calls


def written(tmp_path: Path, now_ns: int = LATER) -> ConfigurationCheck:
    node = keeper(tmp_path)
    node.data_dir.mkdir()
    check = ConfigurationCheck(node, now_ns=lambda: now_ns)
    spec = parse_spec({})
    assert check.differs(spec, STANDBY)  # nothing written yet
    write_configuration(node.data_dir, render_configuration(node, spec, STANDBY), standby=True)
    return check


def test_settled_files_are_compared_once(tmp_path: Path, compares: list[Path]):
    check = written(tmp_path)
    compares.clear()
    for _ in range(3):
        assert not check.differs(parse_spec({}), STANDBY)  # an equal spec, another object
    assert len(compares) == 1


def test_an_edited_file_is_read_again(tmp_path: Path, compares: list[Path]):
    check = written(tmp_path)
    assert not check.differs(parse_spec({}), STANDBY)
    with (tmp_path / "data" / "postgresql.conf").open("a") as file:
        file.write("work_mem = '1GB'\n")
    assert check.differs(parse_spec({}), STANDBY)


def test_a_new_spec_or_request_is_rendered_and_compared(tmp_path: Path):
    check = written(tmp_path)
    assert not check.differs(parse_spec({}), STANDBY)
    assert check.differs(parse_spec({"pg_parameters": {"work_mem": "8MB"}}), STANDBY)
    assert check.differs(parse_spec({}), ConfigRequest(standby=False))  # standby.signal


def test_recently_modified_files_are_always_read_again(tmp_path: Path, compares: list[Path]):
    check = written(tmp_path, now_ns=time.time_ns() + int(RACY_SECONDS * 1e9) - int(0.5e9))
    compares.clear()
    for _ in range(3):
        assert not check.differs(parse_spec({}), STANDBY)
    assert len(compares) == 3  # within the timestamps' granularity an edit may keep them


def tls_keeper(tmp_path: Path) -> KeeperConfig:
    """A keeper whose TLS files are real files in tmp_path/pki (only their bytes matter)."""
    pki = tmp_path / "pki"
    pki.mkdir()
    files = PostgresTls(pki / "server.crt", pki / "server.key", pki / "ca.crt")
    for path in files.files:
        path.write_text(f"{path.name} 1\n")
    files.key_file.chmod(0o600)
    node = dataclasses.replace(keeper(tmp_path), tls=files)
    node.data_dir.mkdir()
    return node


def replace_file(path: Path, content: str) -> None:
    """As Ansible's copy does: a new file renamed over the old one."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(content)
    temporary.chmod(path.stat().st_mode)
    temporary.replace(path)


def test_renewed_tls_files_change_the_configuration(tmp_path: Path):
    node = tls_keeper(tmp_path)
    check = ConfigurationCheck(node, now_ns=lambda: LATER)
    spec = parse_spec({})
    assert node.tls is not None and check.differs(spec, STANDBY)
    digest = files_digest(node.tls)
    rendered = render_configuration(node, spec, STANDBY, digest)
    assert f"# tls_files_digest = {digest}\n" in rendered.postgresql_conf
    write_configuration(node.data_dir, rendered, standby=True)
    assert not check.differs(spec, STANDBY)
    for path in node.tls.files:
        replace_file(path, f"{path.name} renewed {time.time_ns()}\n")
        assert check.differs(spec, STANDBY), f"a new {path.name} is not noticed"
        write_configuration(
            node.data_dir, render_configuration(node, spec, STANDBY, files_digest(node.tls)), True
        )
        assert not check.differs(spec, STANDBY)
    assert check.tls_problem is None


def test_tls_files_being_written_are_digested_again(tmp_path: Path):
    node = tls_keeper(tmp_path)
    check = ConfigurationCheck(node, now_ns=time.time_ns)  # the files were just written
    spec = parse_spec({})
    assert node.tls is not None
    write_configuration(
        node.data_dir, render_configuration(node, spec, STANDBY, files_digest(node.tls)), True
    )
    assert not check.differs(spec, STANDBY)
    with node.tls.cert_file.open("a") as file:  # an append that may keep the file's times
        file.write("the rest of the chain\n")
    assert check.differs(spec, STANDBY)


def test_a_tls_key_others_can_read_is_reported(tmp_path: Path):
    node = tls_keeper(tmp_path)
    assert node.tls is not None
    node.tls.key_file.chmod(0o644)
    check = ConfigurationCheck(node, now_ns=lambda: LATER)
    check.differs(parse_spec({}), STANDBY)
    assert check.tls_problem is not None and "has mode 0644" in check.tls_problem
    node.tls.key_file.unlink()
    check.differs(parse_spec({}), STANDBY)
    assert check.tls_problem == f"tls_key_file {node.tls.key_file}: No such file or directory"
