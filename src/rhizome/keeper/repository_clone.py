"""A standby's data restored from the backup repository instead of copied from its upstream.

The newest backup that lies on the upstream's timeline history is restored as
a standby; the recovery settings pgBackRest writes into postgresql.auto.conf
are removed (pg_basebackup would copy them to every node cloned from this one
later): the keeper's own restore_command (backup.archiving) has PostgreSQL
replay the archive along that history, then stream. A backup of a timeline
the upstream abandoned (before a failover or a point-in-time restore) could
not follow it and is never chosen. The backup's end (timeline and LSN) is recorded in the
state directory: it is where the copy's WAL ends until PostgreSQL first
starts on it, which pg_control alone does not say (the copy was never shut
down), so the plan sees the copy follows the upstream instead of taking it
for diverged data to rewind.
"""

from __future__ import annotations

import logging

from rhizome.backup import pgbackrest
from rhizome.backup.restore import list_backups, remove_recovery_settings
from rhizome.backup.restore_plan import Backup, RestoreRefused, backup_on_history
from rhizome.keeper import datadir
from rhizome.keeper.conffiles import Upstream
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.observe import fetch_history
from rhizome.keeper.timelines import LocalHistory

log = logging.getLogger(__name__)


def clone_from_repository(
    keeper: KeeperConfig, stanza: str, upstream: Upstream, upstream_timeline: int | None
) -> bool:
    """Restore the chosen backup as a standby; False (the reason logged, the directory
    emptied) when no backup fits or pgBackRest fails: the upstream is cloned instead."""
    chosen = backup_to_restore(keeper, stanza, upstream, upstream_timeline)
    if chosen is None:
        return False
    log.info("restoring a standby from backup %s of the repository (stanza %s)",
             chosen.label, stanza)  # fmt: skip
    datadir.set_marker(keeper, datadir.INCOMPLETE_MARKER, True)
    datadir.empty_data_dir(keeper.data_dir)
    outcome = pgbackrest.run(
        [*repository_options(keeper, stanza), f"--pg1-path={keeper.data_dir}",
         "--type=standby", f"--set={chosen.label}"],
        "restore", timeout=datadir.TOOL_TIMEOUT,
    )  # fmt: skip
    if not outcome.ok:
        log.warning("restore from the repository failed (%s): cloning from the upstream "
                    "instead", outcome.error)  # fmt: skip
        datadir.empty_data_dir(keeper.data_dir)
        return False
    remove_recovery_settings(keeper.data_dir)
    datadir.record_restored_end(keeper, LocalHistory(chosen.timeline, chosen.stop_lsn))
    datadir.set_marker(keeper, datadir.INCOMPLETE_MARKER, False)
    datadir.set_marker(keeper, datadir.REMOVED_MARKER, False)
    log.info("restored from the repository in %.1f s", outcome.seconds)
    return True


def backup_to_restore(
    keeper: KeeperConfig, stanza: str, upstream: Upstream, upstream_timeline: int | None
) -> Backup | None:
    """The newest backup on the upstream's timeline history; None (logged) when there is
    none or the history or the repository cannot be read."""
    if upstream_timeline is None:
        log.info("%s has not reported its timeline yet: cloning from it", upstream.name)
        return None
    history = fetch_history(keeper, upstream, upstream_timeline)
    if history is None:
        log.warning("cannot read %s's timeline history: cloning from it", upstream.name)
        return None
    try:
        backups = list_backups(repository_options(keeper, stanza), stanza, run_as=None)
    except RestoreRefused as error:
        log.warning("cannot list the repository's backups (%s): cloning from %s",
                    error, upstream.name)  # fmt: skip
        return None
    chosen = backup_on_history(backups, upstream_timeline, history)
    if chosen is None:
        log.info("no backup of the repository lies on %s's timeline %d history: cloning "
                 "from it", upstream.name, upstream_timeline)  # fmt: skip
    return chosen


def repository_options(keeper: KeeperConfig, stanza: str) -> list[str]:
    assert keeper.pgbackrest_config is not None  # config.py: clone_from needs it
    return pgbackrest.config_options(keeper.pgbackrest_config, stanza)
