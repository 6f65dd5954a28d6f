"""Smoke tests of the test harness itself: real etcd and PostgreSQL on 127.0.0.1."""

from __future__ import annotations

import json
import os
import pwd
import socket
import ssl
import time
import urllib.error
from pathlib import Path

import psycopg2
import pytest

from tests.harness.etcd import EtcdCluster, EtcdCredentials, EtcdFactory, EtcdServer, http_get
from tests.harness.ports import LOOPBACK, ephemeral_port_range, free_port
from tests.harness.postgres import PostgresFactory
from tests.harness.processes import ServerStartError, descendant_pids, is_alive

pytestmark = pytest.mark.integration


def _process_state(pid: int) -> str:
    """The state letter of a process; "X" (dead) once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "X"  # a short-lived child (e.g. autovacuum worker) exited meanwhile
    return stat[stat.rindex(")") + 2]


def test_free_ports_lie_below_the_ephemeral_range() -> None:
    ephemeral_low, _ = ephemeral_port_range()
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    assert all(1024 <= port < ephemeral_low for port in ports)


def test_etcd_answers_version_and_keeps_data_across_restart(etcd: EtcdServer) -> None:
    status, body = etcd.http_get("/version")
    assert status == 200
    assert json.loads(body)["etcdserver"] == etcd.binary.version_text
    etcd.put("/harness/key", "survives")
    old_pid, old_url = etcd.pid, etcd.client_url

    etcd.restart()

    assert etcd.pid != old_pid and not is_alive(old_pid)
    assert etcd.client_url == old_url
    assert etcd.get("/harness/key") == "survives"
    assert etcd.get("/harness/missing") is None


def test_frozen_etcd_times_out_thaws_and_stops(etcd: EtcdServer) -> None:
    etcd.freeze()
    assert _process_state(etcd.pid) == "T"
    with pytest.raises(OSError):
        etcd.http_get("/version", timeout=0.5)

    etcd.thaw()

    assert etcd.http_get("/version")[0] == 200
    etcd.freeze()
    started = time.monotonic()
    etcd.stop()
    assert time.monotonic() - started < 5 and not etcd.is_running


def test_killed_etcd_is_dead_and_its_port_free(etcd: EtcdServer) -> None:
    pid = etcd.pid
    etcd.kill()
    assert not etcd.is_running and not is_alive(pid)
    with pytest.raises(OSError):
        etcd.http_get("/version", timeout=0.5)


def test_etcd_start_retries_on_new_ports_when_its_port_is_taken(tmp_path: Path) -> None:
    server = EtcdServer("retry", tmp_path)
    with socket.socket() as squatter:
        squatter.bind((LOOPBACK, server.client_port))
        squatter.listen()
        taken_port = server.client_port
        try:
            server.start()
            assert server.client_port != taken_port
            assert server.is_healthy()
            assert "address already in use" in server.log_path.read_text()
        finally:
            server.stop()


def test_etcd_compaction_discards_old_revisions(etcd: EtcdServer) -> None:
    etcd.put("/harness/counter", "1")
    first_revision = etcd.revision()
    etcd.put("/harness/counter", "2")
    etcd.compact(etcd.revision())
    old_read = etcd.etcdctl("get", "/harness/counter", f"--rev={first_revision}", check=False)
    assert old_read.returncode != 0
    assert "compacted" in old_read.stderr
    assert etcd.get("/harness/counter") == "2"


def test_cluster_reports_three_healthy_members(etcd_cluster: EtcdCluster) -> None:
    assert len(set(etcd_cluster.client_urls)) == 3
    health = etcd_cluster[0].etcdctl("endpoint", "health", "--cluster", "--write-out=json")
    assert [entry["health"] for entry in json.loads(health.stdout)] == [True, True, True]
    members = json.loads(etcd_cluster[1].etcdctl("member", "list", "--write-out=json").stdout)
    assert sorted(member["name"] for member in members["members"]) == ["etcd0", "etcd1", "etcd2"]


def test_cluster_member_restart_keeps_the_cluster(etcd_cluster: EtcdCluster) -> None:
    etcd_cluster[0].put("/harness/replicated", "yes")
    etcd_cluster[2].restart()
    assert etcd_cluster[2].get("/harness/replicated") == "yes"


def test_tls_etcd_requires_the_ca_and_a_client_certificate(etcd_factory: EtcdFactory) -> None:
    server = etcd_factory(tls=True, client_cert_auth=True)
    assert server.tls is not None and server.client_url.startswith("https://127.0.0.1:")
    plain_url = server.client_url.replace("https://", "http://")
    with pytest.raises(ConnectionError):  # etcd hangs up on plain HTTP
        http_get(plain_url + "/version")
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        http_get(server.client_url + "/version", ssl.create_default_context())
    ca_only = ssl.create_default_context(cafile=str(server.tls.ca_file))
    with pytest.raises(OSError, match=r"(?i)certificate"):  # no client certificate presented
        http_get(server.client_url + "/version", ca_only)

    assert server.http_get("/version")[0] == 200
    server.put("/harness/tls", "ok")
    assert server.get("/harness/tls") == "ok"


def test_tls_etcd_without_client_cert_auth_accepts_the_ca_alone(
    etcd_factory: EtcdFactory,
) -> None:
    server = etcd_factory(tls=True)
    assert server.tls is not None
    ca_only = ssl.create_default_context(cafile=str(server.tls.ca_file))
    assert http_get(server.client_url + "/version", ca_only)[0] == 200


def test_auth_etcd_refuses_a_wrong_password_and_accepts_the_right_one(
    etcd_factory: EtcdFactory,
) -> None:
    server = etcd_factory(auth=True)
    assert server.auth is not None and server.auth_enabled
    user = server.auth.user
    wrong = EtcdCredentials(user.username, user.password + "-wrong")

    refused = server.etcdctl("put", "/harness/auth", "no", as_user=wrong, check=False)
    assert refused.returncode != 0
    assert "authentication failed" in refused.stderr

    server.etcdctl("put", "/harness/auth", "yes", as_user=user)
    assert server.get("/harness/auth") == "yes"  # read back as root


def test_postgres_runs_as_postgres_and_answers(postgres_factory: PostgresFactory) -> None:
    instance = postgres_factory()
    assert instance.execute("SELECT 1") == [(1,)]
    assert instance.execute("SHOW data_checksums") == [("on",)]
    if os.geteuid() == 0:
        postgres_uid = pwd.getpwnam("postgres").pw_uid
        assert os.stat(f"/proc/{instance.pid}").st_uid == postgres_uid


def test_postgres_freeze_thaw_stop_and_kill(postgres_factory: PostgresFactory) -> None:
    instance = postgres_factory()
    children = descendant_pids(instance.pid)
    assert children, "the postmaster has its auxiliary processes"

    instance.freeze()
    assert {_process_state(pid) for pid in {instance.pid, *children}} <= {"T", "Z", "X"}
    assert _process_state(instance.pid) == "T"
    instance.thaw()
    assert instance.execute("SELECT 2") == [(2,)]
    instance.freeze()
    instance.stop()  # a frozen server still stops cleanly
    assert not instance.is_running
    instance.start()
    assert instance.execute("SELECT 3") == [(3,)]
    children = descendant_pids(instance.pid)

    instance.kill()
    assert not instance.is_running
    assert not any(is_alive(pid) for pid in {instance.pid, *children})
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(instance.dsn()).close()


def test_postgres_standby_from_base_backup(postgres_factory: PostgresFactory) -> None:
    primary = postgres_factory("primary")
    primary.execute("CREATE TABLE harness (value int)")
    standby = postgres_factory("standby", initdb=False, start=False)
    standby.base_backup_from(primary)
    standby.start()
    assert standby.execute("SELECT pg_is_in_recovery()") == [(True,)]
    primary.execute("INSERT INTO harness VALUES (42)")
    deadline = time.monotonic() + 10
    while standby.execute("SELECT count(*) FROM harness") != [(1,)]:
        assert time.monotonic() < deadline, "the standby never replayed the insert"
        time.sleep(0.05)


def test_postgres_start_failure_reports_the_log(postgres_factory: PostgresFactory) -> None:
    with pytest.raises(ServerStartError, match="shared_buffers"):
        postgres_factory(settings={"shared_buffers": "not-a-size"})
