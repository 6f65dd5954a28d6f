"""Shared pieces of the backup tests: a three-keeper cluster archiving to a repository."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from rhizome.cli.main import main as rhizomectl
from tests.harness.cluster import LocalCluster, wait_for
from tests.harness.keeper import remove_data_dir
from tests.harness.pgbackrest import BackupRepository
from tests.harness.processes import descendant_pids

TIMEOUT = 60.0
BACKUP_SPEC = {"backup": {"enabled": True}}


class BackedCluster:
    """A LocalCluster whose keepers archive to `repository` (stanza created)."""

    def __init__(self, cluster: LocalCluster, repository: BackupRepository) -> None:
        self.cluster = cluster
        self.repository = repository

    def master(self) -> str:
        return self.cluster.wait_for_master(TIMEOUT)

    def ctl(self, *arguments: str, node: str | None = None) -> int:
        """rhizomectl against the cluster; backup commands get `node`'s pgBackRest files."""
        extra: list[str] = []
        if arguments and arguments[0] == "backup":
            node = node or self.master()
            keeper = self.cluster.keepers[node]
            extra = [
                "--pgbackrest-config", str(self.repository.configs[node]),
                "--pgpass-file", str(keeper.state_dir / "pgpass"),
            ]  # fmt: skip
        endpoints = ["--endpoints", self.cluster.etcd.client_url, "--cluster", "main"]
        return rhizomectl([*endpoints, *arguments, *extra])

    def wait_archived(self, names: set[str], timeout: float = TIMEOUT) -> None:
        def present() -> bool:
            return names <= self.repository.archived()

        try:
            wait_for(present, timeout, f"{sorted(names)} in the archive")
        except AssertionError as error:
            missing = sorted(names - self.repository.archived())
            diagnostics = self.cluster.diagnostics()
            raise AssertionError(f"{error}; missing {missing}\n{diagnostics}") from None


def start_backed_cluster(
    tmp_path: Path, etcd, repository: BackupRepository | None = None
) -> Iterator[BackedCluster]:
    """The `backed_cluster` fixture's body (conftest.py): started, stanza created."""
    cluster = LocalCluster(tmp_path, etcd, spec=BACKUP_SPEC)
    repository = repository or BackupRepository()
    repository.configure(cluster.keepers)
    backed = BackedCluster(cluster, repository)
    try:
        try:
            cluster.start()
        except AssertionError as error:
            raise AssertionError(f"{error}\n{cluster.diagnostics()}") from error
        assert backed.ctl("backup", "stanza-create") == 0
        yield backed
    finally:
        cluster.stop()
        repository.cleanup()


def clone_from_repository(backed: BackedCluster, node: str) -> str:
    """Remove `node`'s data and restart its keeper with clone_from = "repository"; once it
    streams, its log since the restart, checked: restored once, never copied from the
    master; the archive read through the keeper's restore_command, none of pgBackRest's
    recovery settings left in postgresql.auto.conf (pg_basebackup would copy them to
    nodes without pgBackRest, which then cannot start)."""
    keeper = backed.cluster.keepers[node]
    keeper.stop()
    remove_data_dir(keeper.data_dir)
    keeper.extra_settings["clone_from"] = "repository"
    keeper.write_config()
    keeper.start()
    backed.cluster.wait_for_streaming(len(backed.cluster.keepers) - 1, TIMEOUT)
    since_start = keeper.log_tail(400).rsplit("starting:", 1)[-1]
    assert since_start.count("restored from the repository") == 1, since_start
    assert "base backup from" not in since_start, since_start
    auto_conf = (keeper.data_dir / "postgresql.auto.conf").read_text()
    assert "restore_command" not in auto_conf, auto_conf
    ((command,),) = keeper.execute("SHOW restore_command")
    assert "archive-get" in command and str(backed.repository.configs[node]) in command
    return since_start


def segment_names(keeper, count: int) -> list[str]:
    """Write and switch WAL `count` times on `keeper`: the completed segments' names."""
    names = []
    keeper.execute("CREATE TABLE IF NOT EXISTS filler (payload text)")
    for _ in range(count):
        keeper.execute("INSERT INTO filler SELECT md5(i::text) FROM generate_series(1, 1000) i")
        ((name,),) = keeper.execute("SELECT pg_walfile_name(pg_current_wal_lsn())")
        keeper.execute("SELECT pg_switch_wal()")
        names.append(name)
    return names


def cpu_seconds(pid: int) -> float:
    """CPU time of a postmaster's tree: every live member's, and each member's finished
    (waited for) children's, e.g. the archiver's archive_command runs."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for member in {pid} | descendant_pids(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        total += utime + stime + cutime + cstime
    return total / ticks
