"""A pgBackRest repository on loopback for a LocalCluster (a posix repository under /tmp,
or a bucket of an S3Server).

Each keeper gets a pgBackRest configuration of its own, as a node would: its
own data directory as pg1, the other keepers as pg2.. (all local paths and
ports on loopback), and its own lock and log directories, so that a test can
stop one node's archiving (`pgbackrest stop` with that node's file) without
touching the others'. Everything belongs to the postgres user, who runs the
keepers and therefore archive_command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.harness.keeper import OS_USER, KeeperProcess
from tests.harness.s3 import S3Server

STANZA = "main"


def _wal_name(file_name: str) -> str:
    """The WAL file's name from the archive's file name (checksum and .gz removed)."""
    return file_name.split("-", 1)[0].removesuffix(".gz")


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)


class BackupRepository:
    """The repository and each keeper's pgbackrest.conf."""

    def __init__(self, stanza: str = STANZA, s3: S3Server | None = None) -> None:
        self.stanza = stanza
        self.root = Path(tempfile.mkdtemp(prefix="rhizome-pgbackrest-", dir="/tmp"))
        self.root.chmod(0o700)
        _chown(self.root)
        self.repo = self._directory("repo")
        self.repository_options = [f"repo1-path={self.repo}"]
        self.s3 = s3
        if s3 is not None:
            ca_file = self.root / "s3-ca.pem"
            shutil.copyfile(s3.tls.ca_file, ca_file)
            _chown(ca_file)
            self.repository_options = s3.repository_options(ca_file)
        self.configs: dict[str, Path] = {}
        self.passfiles: dict[str, Path] = {}

    def _directory(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(exist_ok=True)
        _chown(path)
        return path

    def configure(self, keepers: dict[str, KeeperProcess]) -> None:
        """Write every keeper's configuration and point its keeper at it (before start)."""
        for name, keeper in keepers.items():
            others = [other for other_name, other in keepers.items() if other_name != name]
            path = self.root / f"{name}.conf"
            path.write_text(self.config_text(name, [keeper, *others]))
            _chown(path)
            self.configs[name] = path
            self.passfiles[name] = keeper.state_dir / "pgpass"  # the keeper writes it
            keeper.extra_settings["pgbackrest_config"] = str(path)
            keeper.write_config()

    def config_text(self, name: str, nodes: list[KeeperProcess]) -> str:
        lines = [
            "[global]",
            *self.repository_options,
            f"log-path={self._directory('log-' + name)}",
            f"lock-path={self._directory('lock-' + name)}",
            f"spool-path={self._directory('spool-' + name)}",
            "log-level-console=warn",
            "log-level-file=detail",
            "start-fast=y",
            "repo1-retention-full=2",
            "archive-timeout=30",
            "",
            f"[{self.stanza}]",
        ]
        for index, node in enumerate(nodes, start=1):
            lines += [
                f"pg{index}-path={node.data_dir}",
                f"pg{index}-port={node.port}",
                f"pg{index}-socket-path={node.state_dir}",
            ]
        return "\n".join(lines) + "\n"

    def pgbackrest(self, node: str, *arguments: str) -> subprocess.CompletedProcess[str]:
        """Run pgbackrest as postgres with `node`'s configuration (no check of the result)."""
        argv = ["pgbackrest", f"--config={self.configs[node]}", f"--stanza={self.stanza}"]
        prefix = ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", "--"]
        return subprocess.run(
            [*prefix, *argv, *arguments] if os.geteuid() == 0 else [*argv, *arguments],
            capture_output=True, text=True, timeout=300, check=False, cwd="/",
            env={**os.environ, "PGPASSFILE": str(self.passfiles[node])},
        )  # fmt: skip

    def archived(self) -> set[str]:
        """Names of the WAL files in the archive (segments, .partial and history files)."""
        if self.s3 is not None:
            return self._archived_in_s3()
        names: set[str] = set()
        archive = self.repo / "archive" / self.stanza
        for path in archive.rglob("*"):
            if path.is_file() and not path.name.startswith("archive.info"):
                names.add(_wal_name(path.name))
        return names

    def _archived_in_s3(self) -> set[str]:
        node = next(iter(self.configs))
        listed = self.pgbackrest(node, "repo-ls", "--recurse", "--output=json",
                                 f"archive/{self.stanza}")  # fmt: skip
        if listed.returncode != 0:
            return set()
        files = [path.rsplit("/", 1)[-1] for path, entry in json.loads(listed.stdout).items()
                 if entry.get("type") == "file"]  # fmt: skip
        return {_wal_name(name) for name in files if not name.startswith("archive.info")}

    def log_text(self, node: str) -> str:
        texts = [path.read_text(errors="replace") for path in (self.root / f"log-{node}").glob("*")]
        return "\n".join(texts)

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
