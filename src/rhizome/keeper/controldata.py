"""What the control file says about a data directory (pg_controldata, parsed)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from rhizome.keeper.timelines import parse_lsn

C_LOCALE = {"LANG": "C", "LC_ALL": "C", "PATH": "/usr/bin:/bin"}
# Cluster states of a data directory that was (last) a primary.
PRIMARY_STATES = frozenset({"in production", "shut down", "shutting down", "in crash recovery"})
CLEAN_STATES = frozenset({"shut down", "shut down in recovery"})


@dataclass(frozen=True)
class ControlData:
    """The fields of pg_control the keeper decides on."""

    system_identifier: str
    cluster_state: str
    timeline: int
    checkpoint_lsn: int
    minimum_recovery_lsn: int
    minimum_recovery_timeline: int
    checksums: bool

    @property
    def was_primary(self) -> bool:
        """The data was last used by a primary (not a standby)."""
        return self.cluster_state in PRIMARY_STATES

    @property
    def clean_shutdown(self) -> bool:
        return self.cluster_state in CLEAN_STATES

    @property
    def latest_timeline(self) -> int:
        return max(self.timeline, self.minimum_recovery_timeline)

    @property
    def known_end(self) -> int | None:
        """The end of the WAL this data holds, when the control file tells it exactly.

        Only a cleanly shut down primary ends at its shutdown checkpoint; a
        standby may hold WAL beyond its minimum recovery point, and a crashed
        primary beyond its last checkpoint.
        """
        return self.checkpoint_lsn if self.cluster_state == "shut down" else None


def has_data(data_dir: Path) -> bool:
    """Whether the directory holds a PostgreSQL data directory (not necessarily usable)."""
    return (data_dir / "PG_VERSION").is_file() and (data_dir / "global" / "pg_control").is_file()


def read_control_data(program: str, data_dir: Path) -> ControlData:
    """Run pg_controldata; raises RuntimeError with its output when it fails."""
    result = subprocess.run(
        [program, "-D", str(data_dir)],
        capture_output=True,
        text=True,
        env=C_LOCALE,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"pg_controldata failed: {(result.stderr or result.stdout).strip()}")
    return parse_control_data(result.stdout)


def parse_control_data(text: str) -> ControlData:
    fields = {}
    for line in text.splitlines():
        name, separator, value = line.partition(":")
        if separator:
            fields[name.strip()] = value.strip()
    try:
        return ControlData(
            system_identifier=fields["Database system identifier"],
            cluster_state=fields["Database cluster state"],
            timeline=int(fields["Latest checkpoint's TimeLineID"]),
            checkpoint_lsn=parse_lsn(fields["Latest checkpoint location"]),
            minimum_recovery_lsn=parse_lsn(fields["Minimum recovery ending location"]),
            minimum_recovery_timeline=int(fields["Min recovery ending loc's timeline"]),
            checksums=fields.get("Data page checksum version", "0") != "0",
        )
    except (KeyError, ValueError) as error:
        raise RuntimeError(f"unexpected pg_controldata output ({error})") from error
