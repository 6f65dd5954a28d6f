"""The data directory's contents: initdb, base backup, pg_rewind, markers (and where a
backup restored by repository_clone ends).

A base backup or a rewind first leaves an "incomplete" marker in the state
directory and removes it only on success: data left half-copied by a crash
or a failed pg_rewind is never started, but cloned again.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from rhizome.keeper.commands import basebackup_argv, initdb_argv, rewind_argv
from rhizome.keeper.conffiles import Upstream
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.passwords import passfile_line, write_private_file
from rhizome.keeper.timelines import LocalHistory, format_lsn, parse_lsn

log = logging.getLogger(__name__)

MANAGED_SLOTS = "replication-slots"
INCOMPLETE_MARKER = "data-incomplete"
RESTORED_END = "restored-backup-end"
REMOVED_MARKER = "data-removed"
TOOL_TIMEOUT = 6 * 3600.0


class ToolError(RuntimeError):
    """A PostgreSQL program failed; the message carries the end of its output."""


def prepare_state_dir(keeper: KeeperConfig) -> None:
    """Create the state directory (0700) and write the passfile (0600)."""
    keeper.state_dir.mkdir(mode=0o700, parents=False, exist_ok=True)
    keeper.state_dir.chmod(0o700)
    keeper.socket_dir.mkdir(mode=0o700, exist_ok=True)
    write_private_file(
        keeper.passfile,
        passfile_line(keeper.replication_user, keeper.replication_password)
        + passfile_line(keeper.superuser, keeper.superuser_password),
    )


def marker(keeper: KeeperConfig, name: str) -> Path:
    return keeper.state_dir / name


def is_marked(keeper: KeeperConfig, name: str) -> bool:
    return marker(keeper, name).exists()


def set_marker(keeper: KeeperConfig, name: str, present: bool) -> None:
    path = marker(keeper, name)
    if present:
        path.write_text("rhizome-keeper\n")
    else:
        path.unlink(missing_ok=True)


def record_restored_end(keeper: KeeperConfig, end: LocalHistory) -> None:
    """Where the backup just restored into the data directory ends (repository_clone)."""
    assert end.end is not None
    marker(keeper, RESTORED_END).write_text(f"{end.timeline} {format_lsn(end.end)}\n")


def restored_end(keeper: KeeperConfig) -> LocalHistory | None:
    """The recorded end of the restored backup; the caller asks only while the copy has
    not been started (backup_label present)."""
    try:
        timeline, lsn = marker(keeper, RESTORED_END).read_text().split()
        return LocalHistory(int(timeline), parse_lsn(lsn))
    except (OSError, ValueError):
        return None


def managed_slots(keeper: KeeperConfig) -> set[str]:
    """The replication slots this keeper created as master (and has not dropped)."""
    try:
        return set(marker(keeper, MANAGED_SLOTS).read_text().split())
    except OSError:
        return set()


def record_managed_slots(keeper: KeeperConfig, names: set[str]) -> None:
    marker(keeper, MANAGED_SLOTS).write_text("".join(f"{name}\n" for name in sorted(names)))


def empty_data_dir(data_dir: Path) -> None:
    """Remove everything inside the data directory (kept: it may be a mount point)."""
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700)
        return
    for entry in data_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    data_dir.chmod(0o700)


def run_tool(argv: list[str], what: str, timeout: float = TOOL_TIMEOUT) -> str:
    """Run a PostgreSQL program; its output, or ToolError with the output when it fails."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        argv, capture_output=True, text=True, env=environment, timeout=timeout, check=False
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        tail = " | ".join(output.splitlines()[-5:])
        raise ToolError(f"{what} failed (exit code {result.returncode}): {tail}")
    if output:
        log.debug("%s: %s", what, output)
    return output


def initdb(keeper: KeeperConfig) -> None:
    """A new data directory with checksums, the superuser's password from a 0600 file."""
    empty_data_dir(keeper.data_dir)
    password_file = keeper.state_dir / "initdb-password"
    write_private_file(password_file, keeper.superuser_password + "\n")
    try:
        run_tool(initdb_argv(keeper, password_file), "initdb")
    except ToolError:
        empty_data_dir(keeper.data_dir)
        raise
    finally:
        password_file.unlink(missing_ok=True)
    log.info("initialised a new data directory in %s (checksums on)", keeper.data_dir)


def base_backup(keeper: KeeperConfig, upstream: Upstream) -> None:
    """Clone the upstream into an emptied data directory."""
    log.info("base backup from %s (%s:%d)", upstream.name, upstream.host, upstream.port)
    set_marker(keeper, INCOMPLETE_MARKER, True)
    set_marker(keeper, RESTORED_END, False)
    empty_data_dir(keeper.data_dir)
    run_tool(basebackup_argv(keeper, upstream), "pg_basebackup")
    set_marker(keeper, INCOMPLETE_MARKER, False)
    set_marker(keeper, REMOVED_MARKER, False)
    log.info("base backup from %s done", upstream.name)


def rewind(keeper: KeeperConfig, upstream: Upstream) -> bool:
    """Rewind the (stopped) data directory onto the upstream's timeline.

    Returns False when pg_rewind found nothing to rewind.
    """
    log.info("pg_rewind from %s (%s:%d)", upstream.name, upstream.host, upstream.port)
    set_marker(keeper, INCOMPLETE_MARKER, True)
    set_marker(keeper, RESTORED_END, False)
    output = run_tool(rewind_argv(keeper, upstream), "pg_rewind")
    set_marker(keeper, INCOMPLETE_MARKER, False)
    if "no rewind required" in output:
        log.info("pg_rewind from %s: no rewind required", upstream.name)
        return False
    log.info("pg_rewind from %s done", upstream.name)
    return True
