"""A PostgreSQL instance a command runs by itself, away from any keeper (executor).

The restore recovers a node's data this way before its keeper takes it over,
and the restore drill a scratch copy: started with pg_ctl as the data
directory's owner, on its Unix socket only (no network client), without hot
standby (nobody reads a half-recovered copy), until the recovery reached its
end and promoted; then stopped.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rhizome.backup.pgbackrest import as_user
from rhizome.keeper.controldata import C_LOCALE, ControlData, read_control_data

RECOVERY_SIGNAL = "recovery.signal"
ALONE = "-c listen_addresses='' -c hot_standby=off"
"""The recovering server accepts no network client and no read-only session."""
STOP_TIMEOUT = 300
POLL = 0.2


class InstanceFailed(RuntimeError):
    """The instance did not start, recover or stop; the message says why."""


@dataclass(frozen=True)
class LocalInstance:
    data_dir: Path
    bin_dir: Path
    log: Path
    """PostgreSQL's own log (pg_ctl -l)."""
    run_as: str | None
    """As root, the owner to run PostgreSQL's programs as (setpriv)."""

    def program(self, name: str) -> str:
        return str(self.bin_dir / name)

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """A PostgreSQL program as the data directory's owner."""
        return subprocess.run(
            as_user(argv, self.run_as), capture_output=True, text=True, timeout=timeout,
            check=False, cwd="/",
            env={**C_LOCALE, "PATH": os.environ.get("PATH", C_LOCALE["PATH"])},
        )  # fmt: skip

    def running(self) -> bool:
        completed = self.run([self.program("pg_ctl"), "status", "-D", str(self.data_dir)], 30)
        return completed.returncode == 0

    def control(self) -> ControlData:
        return read_control_data(self.program("pg_controldata"), self.data_dir)


def recover_alone(instance: LocalInstance, options: str, timeout: float) -> None:
    """Start the instance with `options` (beyond ALONE) and wait for its promotion."""
    start = [instance.program("pg_ctl"), "start", "-D", str(instance.data_dir), "-W",
             "-l", str(instance.log), "-o", f"{ALONE} {options}".strip()]  # fmt: skip
    started = instance.run(start, 60)
    if started.returncode != 0:
        raise InstanceFailed(f"pg_ctl start failed: {started.stderr.strip()}")
    deadline = time.monotonic() + timeout
    while not (instance.data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(POLL)  # pg_ctl -W returns before the postmaster writes it
    wait_for_promotion(instance, deadline, timeout)


def wait_for_promotion(instance: LocalInstance, deadline: float, timeout: float) -> None:
    """Until PostgreSQL removed recovery.signal and the control file says `in production`
    (recovered and promoted; a restored control file may say so before the recovery
    began); fails when PostgreSQL exits first (a target the archived WAL never reaches)
    or at the deadline."""
    while True:
        state = instance.control().cluster_state
        if state == "in production" and not (instance.data_dir / RECOVERY_SIGNAL).exists():
            return
        if not instance.running():
            raise InstanceFailed(
                "the recovery did not complete (a target that the archived WAL never reaches, "
                f"or a missing WAL file); PostgreSQL logged:\n{log_tail(instance.log)}"
            )
        if time.monotonic() > deadline:
            raise InstanceFailed(f"the recovery is still {state!r} after {timeout:g} s")
        time.sleep(POLL)


def stop(instance: LocalInstance) -> ControlData:
    """Stop cleanly; the control data, which must say `shut down`."""
    argv = [instance.program("pg_ctl"), "stop", "-D", str(instance.data_dir), "-m", "fast",
            "-w", "-t", str(STOP_TIMEOUT)]  # fmt: skip
    stopped = instance.run(argv, STOP_TIMEOUT + 30)
    if stopped.returncode != 0:
        raise InstanceFailed(f"pg_ctl stop failed: {stopped.stderr.strip()}")
    control = instance.control()
    if control.cluster_state != "shut down":
        raise InstanceFailed(f"the data is {control.cluster_state!r} after the stop")
    return control


def give_to_owner(path: Path, reference: Path) -> None:
    """As root, give `path` the owner of `reference`."""
    if os.geteuid() == 0 and reference.exists():
        owner = reference.stat()
        os.chown(path, owner.st_uid, owner.st_gid)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
