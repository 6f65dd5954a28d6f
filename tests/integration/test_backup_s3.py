"""Backups to an S3-compatible repository (pgBackRest 2.45, PostgreSQL 15, etcd).

The S3 server is moto behind HAProxy with TLS (tests/harness/s3.py). The
keepers archive straight into the bucket; a full backup is taken from a
standby; after a switchover the new timeline's history file is in the bucket
and `pgbackrest check` passes on the new master; a standby made from the
bucket (clone_from = "repository") streams with every row; the restore drill
reads the latest backup back from the bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.cluster import wait_for
from tests.harness.pgbackrest import BackupRepository
from tests.harness.s3 import S3Server
from tests.integration.backup_support import (
    TIMEOUT,
    BackedCluster,
    clone_from_repository,
    start_backed_cluster,
)
from tests.integration.test_backup_restore import backup_then_switch_over, drill, event_ids

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_cluster(tmp_path: Path, etcd) -> Iterator[BackedCluster]:
    server = S3Server()
    try:
        yield from start_backed_cluster(tmp_path, etcd, BackupRepository(s3=server))
    finally:
        server.stop()


def test_archiving_backups_a_clone_and_a_drill_go_through_an_s3_bucket(
    s3_cluster: BackedCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = s3_cluster.cluster
    node, other = backup_then_switch_over(s3_cluster)
    s3_cluster.wait_archived({"00000002.history"})
    assert s3_cluster.ctl("backup", "check", node=other) == 0

    clone_from_repository(s3_cluster, node)
    wait_for(lambda: len(event_ids(cluster, node)) == 60, TIMEOUT, f"{node} to replay the rows")
    assert s3_cluster.ctl("backup", "check", node=other) == 0  # the last rows archived
    drill(s3_cluster, node, 60, capsys)
