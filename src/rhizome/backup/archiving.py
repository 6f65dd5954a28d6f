"""What a keeper renders for WAL archiving (pure).

While the spec's backup.enabled is true, every keeper with a pgBackRest
configuration renders archive_mode = on and an archive_command pushing to
pgBackRest, whatever its role: a standby with archive_mode = on archives
nothing (PostgreSQL marks streamed segments done), so only the master
archives and a promotion needs no restart. It also renders a restore_command
fetching from the archive (a primary ignores it): a standby whose upstream
recycled the WAL it needs fetches it there, and a copy restored from the
repository replays the archive before it streams. Being the keeper's, these
settings follow the spec (gone when backups are turned off) and are never
copied by pg_basebackup into another node, as postgresql.auto.conf would be.
A keeper without `pgbackrest_config` renders nothing of it (its
postgresql.conf stays as it was) and reports the missing setting instead.
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
    return _pgbackrest_command(target, "archive-push") + " %p"


def restore_command(target: ArchiveTarget) -> str:
    """`pgbackrest ... archive-get %f "%p"`: a standby (or a copy restored from the
    repository) fetches from the archive what its upstream no longer holds."""
    return _pgbackrest_command(target, "archive-get") + ' %f "%p"'


def _pgbackrest_command(target: ArchiveTarget, command: str) -> str:
    words = [PGBACKREST, *target.options(), command]
    return " ".join(shlex.quote(word).replace("%", "%%") for word in words)


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
        "restore_command": restore_command(target),
    }
    return Archiving(parameters=parameters, settings=target)
