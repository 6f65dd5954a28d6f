"""pg_upgrade --link: when it may run, and the command it runs (pure parts of upgrade/link.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.controldata import ControlData
from rhizome.upgrade.link import NewDirectory, link_refusal, passwords, pg_upgrade_argv

OLD = KeeperConfig(
    name="pg1", data_dir=Path("/var/lib/postgresql/15/main"), state_dir=Path("/srv/15"),
    socket_dir=Path("/srv/15"), host="10.0.0.1", port=5432, listen_addresses="10.0.0.1",
    bin_dir=Path("/usr/lib/postgresql/15/bin"), superuser="postgres",
    replication_user="replicator", superuser_password="old:secret",
    replication_password="r",
)  # fmt: skip
NEW = replace(OLD, data_dir=Path("/var/lib/postgresql/17/main"), state_dir=Path("/srv/17"),
              bin_dir=Path("/usr/lib/postgresql/17/bin"), superuser_password="new")  # fmt: skip
EMPTY = NewDirectory(exists_non_empty=False, done=False)


def control(state: str) -> ControlData:
    return ControlData(
        system_identifier="7", cluster_state=state, timeline=1, checkpoint_lsn=0,
        minimum_recovery_lsn=0, minimum_recovery_timeline=0, checksums=True,
    )  # fmt: skip


def test_only_a_cleanly_stopped_old_master_and_an_empty_new_directory_are_upgraded():
    assert link_refusal(OLD, NEW, control("shut down"), EMPTY) is None
    refusals = [
        link_refusal(OLD, NEW, control("in production"), EMPTY),
        link_refusal(OLD, NEW, control("shut down in recovery"), EMPTY),
        link_refusal(OLD, NEW, None, EMPTY),
        link_refusal(OLD, NEW, control("shut down"), NewDirectory(True, False)),
        link_refusal(OLD, OLD, control("shut down"), EMPTY),
        link_refusal(OLD, replace(NEW, superuser="admin"), control("shut down"), EMPTY),
    ]
    assert "not shut down cleanly" in (refusals[0] or "") and "--method link" in (refusals[0] or "")
    assert "not shut down cleanly" in (refusals[1] or "")  # a standby's data is not the master's
    assert "pg_control" in (refusals[2] or "") and "not empty" in (refusals[3] or "")
    assert "own" in (refusals[4] or "") and "install user" in (refusals[5] or "")


def test_pg_upgrade_links_with_the_new_versions_program_and_its_own_ports():
    argv = pg_upgrade_argv(OLD, NEW, check=True)
    assert argv[:2] == ["/usr/lib/postgresql/17/bin/pg_upgrade", "--link"]
    assert argv[-1] == "--check" and "--check" not in pg_upgrade_argv(OLD, NEW, check=False)
    assert argv[argv.index("--old-port") + 1] != argv[argv.index("--new-port") + 1]
    assert "secret" not in " ".join(argv)  # passwords go through the password file only
    lines = passwords(OLD, NEW).splitlines()
    assert lines == ["*:50432:*:postgres:old\\:secret", "*:50433:*:postgres:new"]
