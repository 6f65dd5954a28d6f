"""Which etcd binary the tests run: Debian 12's etcd 3.4 on PATH, Debian 13's etcd 3.5
unpacked by scripts/install-etcd-3.5.sh, or any directory named by RHIZOME_ETCD_BIN_DIR."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BIN_DIR_VARIABLE = "RHIZOME_ETCD_BIN_DIR"
"""Where `etcd` (and `etcdctl`) come from for every test that does not ask for a release."""
ETCD35_DIR = Path(os.environ.get("RHIZOME_ETCD35_DIR", "/opt/rhizome/etcd-3.5"))
ETCD_RELEASES: dict[str, Path | None] = {"3.4": None, "3.5": ETCD35_DIR / "usr" / "bin"}
"""The releases that the etcd client and store tests run against; None: the one on PATH."""

FULL_LEADERSHIP_CHECK = (((3, 4, 31), (3, 4, 34)), ((3, 5, 13), (3, 5, 16)))
"""[from, to) etcd versions whose lessor always asks the cluster whether it still
leads before revoking (`ensureLeadership`); the others let a leader thawed from
a freeze revoke leases renewed through the other members (etcd issue 15247,
tests/integration/test_etcd_leader_freeze.py)."""


@functools.cache
def _version_of(program: str) -> tuple[int, ...]:
    """(major, minor, patch) that `program --version` reports; () when it cannot run."""
    try:
        output = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return ()
    found = re.search(r"etcd Version: (\d+)\.(\d+)\.(\d+)", output)
    return tuple(int(part) for part in found.groups()) if found else ()


@dataclass(frozen=True)
class EtcdBinary:
    """etcd and etcdctl from one directory (None: from PATH)."""

    directory: Path | None = None

    @property
    def etcd(self) -> str:
        return str(self.directory / "etcd") if self.directory else "etcd"

    @property
    def etcdctl(self) -> str:
        """The directory's etcdctl, else the one on PATH (the v3 API is the same)."""
        if self.directory and (self.directory / "etcdctl").exists():
            return str(self.directory / "etcdctl")
        return "etcdctl"

    @property
    def version(self) -> tuple[int, ...]:
        return _version_of(self.etcd)

    @property
    def revokes_after_a_stall(self) -> bool:
        """Whether a thawed old leader of this etcd may revoke renewed leases (issue 15247)."""
        return not any(low <= self.version < high for low, high in FULL_LEADERSHIP_CHECK)

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version)) or "unknown"

    def is_release(self, release: str) -> bool:
        """True when this etcd runs and reports release ("3.5") as its major.minor."""
        return self.version[:2] == tuple(int(part) for part in release.split("."))


def default_binary() -> EtcdBinary:
    """RHIZOME_ETCD_BIN_DIR's etcd when set, else the one on PATH."""
    directory = os.environ.get(BIN_DIR_VARIABLE)
    return EtcdBinary(Path(directory) if directory else None)


def release_binary(release: str) -> EtcdBinary:
    """The binary of one of ETCD_RELEASES; raise LookupError naming the fix when missing."""
    binary = EtcdBinary(ETCD_RELEASES[release])
    if binary.is_release(release):
        return binary
    where = binary.directory or f"PATH ({shutil.which('etcd') or 'no etcd'})"
    found = f"etcd {binary.version_text}" if binary.version else "no etcd that runs"
    raise LookupError(
        f"etcd {release} is missing: {where} has {found};"
        " run `make deps` as root (scripts/install-system-deps.sh)"
    )
