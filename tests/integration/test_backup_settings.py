"""Bad input: backups enabled on a keeper without a pgBackRest configuration."""

from __future__ import annotations

import pytest

from tests.harness.cluster import LocalCluster, wait_for
from tests.integration.backup_support import BACKUP_SPEC, TIMEOUT

pytestmark = pytest.mark.integration


def test_a_keeper_without_pgbackrest_config_names_the_setting_and_changes_nothing(
    tmp_path, etcd
) -> None:
    cluster = LocalCluster(tmp_path, etcd, keeper_count=1, spec=BACKUP_SPEC)
    try:
        master = cluster.start()
        keeper = cluster.keepers[master]

        def last_error() -> str | None:
            stored = cluster.store.read_view().keepers.get(master)
            return stored.document.last_error if stored is not None else None

        error = wait_for(last_error, TIMEOUT, "the keeper to report the missing setting")
        assert "pgbackrest_config" in error and "backup.enabled" in error, error
        assert keeper.execute("SHOW archive_mode") == [("off",)]
        conf = (keeper.data_dir / "postgresql.conf").read_text()
        assert "archive_command" not in conf and "archive_mode" not in conf
    finally:
        cluster.stop()
