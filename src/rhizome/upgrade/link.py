"""The in-place major upgrade: pg_upgrade --link of a cleanly stopped master's data.

For databases logical replication cannot carry (large objects, heavy DDL):
`rhizomectl upgrade cutover --method link` stops the master cleanly once
every standby has its last record (sentinel/decision/cutover.py); then, on the
old master's host, `rhizomectl upgrade link` makes the successor's first data
directory from it, read from the two keepers' configurations (old and new:
data directory, programs, superuser and its password file):

1. refuse unless the old data was shut down cleanly, the new directory is
   empty and both keepers name the same superuser (pg_upgrade's rule);
2. initdb the new directory exactly as a new keeper would (checksums,
   UTF8, C.UTF-8);
3. `pg_upgrade --check`, then `pg_upgrade --link` (hard links: seconds, not
   a copy), with both passwords in a private password file;
4. mark the new directory done, so that a second run changes nothing.

pg_upgrade renames the old pg_control once the new cluster is complete, so
the old data cannot be started by mistake; the old standbys, which received
the shutdown checkpoint before the cutover, are the rollback copies. The
successor's keeper adopts the directory (spec init_mode: existing) and its
standbys clone from it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rhizome.keeper import datadir
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.controldata import ControlData, read_control_data
from rhizome.keeper.passwords import passfile_line, write_private_file

DONE_MARKER = "rhizome_upgrade_link.done"
"""Written into the new data directory once pg_upgrade finished."""
OLD_PORT = 50432
NEW_PORT = 50433
PG_UPGRADE_TIMEOUT = 6 * 3600.0


class LinkRefused(RuntimeError):
    """The upgrade cannot start; the message names the problem and the fix."""


@dataclass(frozen=True)
class NewDirectory:
    """What the new data directory holds now."""

    exists_non_empty: bool
    done: bool


def link_refusal(old: KeeperConfig, new: KeeperConfig, control: ControlData | None,
                 target: NewDirectory) -> str | None:  # fmt: skip
    """Why pg_upgrade --link must not run now (pure); None when it may."""
    if old.data_dir == new.data_dir:
        return "the old and the new keeper name one data directory: give the new one its own"
    if old.superuser != new.superuser:
        return (f"the new keeper's superuser {new.superuser} is not the old one's"
                f" ({old.superuser}): pg_upgrade needs the same install user")  # fmt: skip
    if control is None:
        return f"{old.data_dir} holds no readable pg_control: is it the old master's data?"
    if control.cluster_state != "shut down":
        return (f"the old data was not shut down cleanly (pg_control: {control.cluster_state}):"
                " run `rhizomectl upgrade cutover --method link` first")  # fmt: skip
    if target.exists_non_empty:
        return (f"{new.data_dir} is not empty: remove what is there (or it holds another"
                " cluster) before the upgrade")  # fmt: skip
    return None


def pg_upgrade_argv(old: KeeperConfig, new: KeeperConfig, check: bool) -> list[str]:
    """The pg_upgrade command (pure): the new version's program, hard links."""
    argv = [
        new.program("pg_upgrade"), "--link",
        "--old-bindir", str(old.bin_dir), "--new-bindir", str(new.bin_dir),
        "--old-datadir", str(old.data_dir), "--new-datadir", str(new.data_dir),
        "--username", new.superuser,
        "--old-port", str(OLD_PORT), "--new-port", str(NEW_PORT),
    ]  # fmt: skip
    return [*argv, "--check"] if check else argv


def new_directory(new: KeeperConfig) -> NewDirectory:
    data = new.data_dir
    non_empty = data.is_dir() and any(data.iterdir())
    return NewDirectory(exists_non_empty=non_empty, done=(data / DONE_MARKER).exists())


def old_control(old: KeeperConfig) -> ControlData | None:
    try:
        return read_control_data(old.program("pg_controldata"), old.data_dir)
    except (RuntimeError, OSError):
        return None


def run_link(old: KeeperConfig, new: KeeperConfig) -> float | None:
    """Upgrade; returns pg_upgrade's seconds, None when it was done already."""
    target = new_directory(new)
    if target.done:
        return None
    refusal = link_refusal(old, new, old_control(old), target)
    if refusal is not None:
        raise LinkRefused(refusal)
    datadir.prepare_state_dir(new)
    datadir.initdb(new)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rhizome-pg_upgrade-") as work:
        passfile = Path(work) / "passfile"
        write_private_file(passfile, passwords(old, new))
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
                       "PGPASSFILE": str(passfile)}  # fmt: skip
        for check in (True, False):
            run_pg_upgrade(pg_upgrade_argv(old, new, check), work, environment)
    (new.data_dir / DONE_MARKER).write_text("rhizome upgrade link\n")
    return time.monotonic() - started


def passwords(old: KeeperConfig, new: KeeperConfig) -> str:
    """Each server's superuser password, told apart by the port pg_upgrade gives it."""
    return passfile_line(old.superuser, old.superuser_password, port=OLD_PORT) + passfile_line(
        new.superuser, new.superuser_password, port=NEW_PORT
    )


def run_pg_upgrade(argv: list[str], work: str, environment: dict[str, str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=work, env=environment,
                            timeout=PG_UPGRADE_TIMEOUT, check=False)  # fmt: skip
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        step = "pg_upgrade --check" if "--check" in argv else "pg_upgrade"
        raise LinkRefused(f"{step} failed: " + " | ".join(output[-8:]))
