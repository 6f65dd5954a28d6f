"""What a keeper renders for WAL archiving (pure).

While the spec's backup.enabled is true, every keeper with a pgBackRest
configuration renders archive_mode = on and an archive_command pushing to
pgBackRest, whatever its role: a standby with archive_mode = on archives
nothing (PostgreSQL marks streamed segments done), so only the master
archives and a promotion needs no restart. A keeper without
`pgbackrest_config` renders nothing of it (its postgresql.conf stays as it
was) and reports the missing setting instead.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from rhizome.backup.pgbackrest import PGBACKREST, config_options
from rhizome.spec.backup import BackupSettings
from rhizome.spec.postgres import ParameterValue


@dataclass(frozen=True)
class Archiving:
    """The keeper's archiving parameters, or why it renders none."""

    parameters: dict[str, ParameterValue] = field(default_factory=dict)
    problem: str | None = None
    settings: ArchiveTarget | None = None


@dataclass(frozen=True)
class ArchiveTarget:
    """Where this keeper archives: its pgBackRest configuration and the stanza."""

    config: Path
    stanza: str
    data_dir: Path

    def options(self) -> list[str]:
        """pgBackRest's options for this node (no secret: those stay in the file)."""
        return [*config_options(self.config, self.stanza), f"--pg1-path={self.data_dir}"]


def archive_command(target: ArchiveTarget) -> str:
    """`pgbackrest ... archive-push %p`, each value shell-quoted and '%' doubled."""
    words = [PGBACKREST, *target.options(), "archive-push"]
    quoted = " ".join(shlex.quote(word).replace("%", "%%") for word in words)
    return quoted + " %p"


def archiving(
    backup: BackupSettings,
    cluster: str,
    pgbackrest_config: Path | None,
    data_dir: Path,
    config_source: str = "the keeper's configuration",
) -> Archiving:
    """The parameters to render (managed by the keeper) for this spec and keeper."""
    if not backup.enabled:
        return Archiving()
    if pgbackrest_config is None:
        return Archiving(
            problem=f"backup.enabled is true in the spec but [keeper] pgbackrest_config is not "
            f"set in {config_source}: this keeper archives nothing; set pgbackrest_config = "
            '"/etc/pgbackrest/pgbackrest.conf" (this node\'s pgBackRest configuration) and '
            "restart the keeper, or set backup.enabled to false"
        )
    target = ArchiveTarget(pgbackrest_config, backup.stanza_for(cluster), data_dir)
    parameters: dict[str, ParameterValue] = {
        "archive_mode": "on",
        "archive_command": archive_command(target),
    }
    return Archiving(parameters=parameters, settings=target)
