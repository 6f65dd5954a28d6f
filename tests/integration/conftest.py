"""Fixtures shared by the integration tests: the keepers' store and factory, the proxy's."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from rhizome.etcd import EtcdClient, EtcdSettings
from rhizome.store.cluster_store import ClusterStore
from tests.harness.etcd import EtcdServer
from tests.harness.keeper import KeeperFactory, KeeperProcess
from tests.integration.backup_support import BackedCluster, start_backed_cluster
from tests.integration.test_proxy_support import ProxyProcess, StandInSentinel


@pytest.fixture
def store(etcd: EtcdServer) -> Iterator[ClusterStore]:
    """Cluster "main" on the test's etcd (a module may define its own)."""
    client = EtcdClient(EtcdSettings(endpoints=(etcd.client_url,), request_timeout=1.0))
    yield ClusterStore(client, "main")
    client.close()


@pytest.fixture
def keeper_factory(etcd: EtcdServer, tmp_path: Path) -> Iterator[KeeperFactory]:
    """Creates keepers against the test's etcd; stops them and removes their files, and
    kills a guard a failed test left holding PostgreSQL."""
    factory = KeeperFactory([etcd.client_url], tmp_path / "keepers")
    yield factory
    leftovers = [pid for keeper in factory.created for pid in guard_and_postgres(keeper)]
    try:
        factory.cleanup()
    finally:
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def guard_and_postgres(keeper: KeeperProcess) -> list[int]:
    """The PIDs of the keeper's guard and postmaster, read before its files are removed."""
    pids = [keeper.postgres_pid or 0]
    with contextlib.suppress(OSError, ValueError, KeyError):
        pids.append(int(json.loads((keeper.state_dir / "handoff.json").read_text())["guard_pid"]))
    return [pid for pid in pids if pid > 0]


@pytest.fixture
def etcd_api() -> str:
    """The etcd API the agents use; a test parametrizes it to run on "v2" too."""
    return "v3"


@pytest.fixture
def sentinel(etcd, etcd_api):
    """A stand-in for the sentinel: the test writes state and keeper documents through it."""
    stand_in = StandInSentinel(etcd.client_url, etcd_api=etcd_api)
    yield stand_in
    stand_in.close()


@pytest.fixture
def proxy(etcd, tmp_path, sentinel, etcd_api):
    """A rhizome-proxy process with default settings, following that cluster."""
    process = ProxyProcess(tmp_path / "proxy", etcd.client_url, etcd_api)
    yield process
    process.stop()


@pytest.fixture
def backed_cluster(tmp_path: Path, etcd: EtcdServer) -> Iterator[BackedCluster]:
    """Three keepers and a sentinel archiving to a pgBackRest repository (backup_support)."""
    yield from start_backed_cluster(tmp_path, etcd)
