"""The in-place major upgrade (method link) through the proxy, end to end on loopback.

Blue ("main", two keepers) runs behind a proxy under writers; `rhizomectl
upgrade cutover --method link` stops its master cleanly once the standby has
the shutdown checkpoint; `rhizomectl upgrade link`, as the postgres user on the
old master's host, makes green's ("main-17") first data directory with
pg_upgrade --link (15 to 15 here: the machine has no other version); green's
keepers adopt it (init_mode existing) and clone the standby, and the proxy,
which held new clients meanwhile, routes to green's master. Nothing
acknowledged is lost; the downtime is measured, not promised.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench.probes import WritingClient, create_table, failures, longest_pause
from bench.rhizome_system import RhizomeSystem
from tests.harness.cluster import LocalCluster, wait_for
from tests.harness.keeper import OS_USER
from tests.harness.ports import LOOPBACK

pytestmark = pytest.mark.integration

SUCCESSOR = "main-17"
PATIENCE = {"proxy_hold_timeout": 40.0}
"""Proxies hold new clients through the stop, pg_upgrade and the successor's start."""
GREEN_SPEC = {"init_mode": "existing", "initial_master": "pg1", "timing": PATIENCE}


@pytest.fixture
def clusters(tmp_path, etcd):
    blue = RhizomeSystem(tmp_path / "blue", etcd, spec={"timing": PATIENCE}, keeper_count=2)
    green = LocalCluster(tmp_path / "green", etcd, keeper_count=2, spec=GREEN_SPEC,
                         cluster=SUCCESSOR)  # fmt: skip
    try:
        blue.start()
    except AssertionError as error:
        raise AssertionError(f"{error}\n{blue.diagnostics()}") from error
    yield blue, green
    blue.stop()
    green.stop()


def rhizomectl(etcd_url: str, *arguments: str, as_postgres: bool = False):
    command = [sys.executable, "-m", "rhizome.cli.main", *arguments]
    if not as_postgres:
        command[3:3] = ["--endpoints", etcd_url, "--cluster", "main"]
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    user = OS_USER if as_postgres and os.geteuid() == 0 else None
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                          env=environment, user=user, cwd="/tmp")  # fmt: skip


def test_a_link_cutover_upgrades_in_place_with_nothing_lost(clusters, etcd):
    blue, green = clusters
    endpoint = blue.endpoint
    create_table(endpoint)
    old_master = blue.primary()
    standby = next(name for name in blue.cluster.keepers if name != old_master)
    clients = [WritingClient(endpoint, f"new{number}", new_connection_per_transaction=True,
                             connect_deadline=60.0) for number in range(2)]  # fmt: skip
    for client in clients:
        client.start()
    try:
        time.sleep(1)
        cutover_at = time.monotonic()
        handed = rhizomectl(etcd.client_url, "upgrade", "cutover", "--successor", SUCCESSOR,
                            "--method", "link", "--wait", "--timeout", "30")  # fmt: skip
        assert handed.returncode == 0, handed.stdout + handed.stderr + blue.diagnostics()
        final = blue.cluster.store.read_view().keepers[old_master].document.flush_lsn
        kept = blue.cluster.store.read_view().keepers[standby].document.wal_position
        assert final is not None and kept is not None and kept > final  # the rollback copy
        blue.cluster.keepers[old_master].stop()  # nothing may touch the old data meanwhile
        old_config = str(blue.cluster.keepers[old_master].config_path)
        new_config = str(green.keepers["pg1"].config_path)
        link = ("upgrade", "link", "--old-config", old_config, "--new-config", new_config)
        linked = rhizomectl(etcd.client_url, *link, as_postgres=True)
        assert linked.returncode == 0, linked.stdout + linked.stderr
        green.start()
        green_route = f"pg1 ({LOOPBACK}:{green.keepers['pg1'].port})"
        wait_for(lambda: blue.proxy_target() == green_route, 30, "routes to green's master")
        done_at = time.monotonic()
        time.sleep(1)
    finally:
        for client in clients:
            client.stop()
    again = rhizomectl(etcd.client_url, *link, as_postgres=True)
    assert again.returncode == 0 and "upgraded already" in again.stdout, again.stdout
    assert (blue.cluster.keepers[old_master].data_dir / "global" / "pg_control.old").exists()
    for client in clients:
        failed_connects, _ = failures(client.attempts, cutover_at)
        assert failed_connects == 0, f"{client.name}: {[a.error for a in client.attempts]}"
        assert client.lost_writes() == 0, client.name
        assert client.attempts[-1].acknowledged, f"{client.name} writes after the upgrade"
    downtime = max(longest_pause(client.attempts, cutover_at, done_at) for client in clients)
    print(f"\nlink upgrade: writes paused {downtime:.1f} s ({linked.stdout.strip()})")
