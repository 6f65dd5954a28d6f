"""rhizome-proxy forwards to the published master and closes on a change of master."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import os
import select
import signal
import socket
import time

import psycopg2
import pytest

from tests.harness.ports import LOOPBACK
from tests.integration.test_proxy_support import (
    port_through,
    server_port,
    wait_for,
)

pytestmark = pytest.mark.integration


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def test_queries_and_large_transfers_arrive_intact_both_ways(postgres_factory, sentinel, proxy):
    pg1 = postgres_factory("pg1")
    sentinel.members["pg1"] = pg1
    sentinel.route_to("pg1")
    proxy.start()
    connection = proxy.connect()
    try:
        connection.autocommit = True
        assert server_port(connection) == pg1.port
        with connection.cursor() as cursor:
            # server to client: ~9 MB of rows, checked against the server's own digest
            cursor.execute(
                "SELECT s, md5(s) FROM (SELECT string_agg(md5(i::text), '' ORDER BY i) AS s"
                " FROM generate_series(1, 300000) i) AS rows"
            )
            received, digest = cursor.fetchone()
            assert len(received) == 32 * 300000
            assert md5_hex(received) == digest
            # client to server: COPY of ~8 MB
            payload = os.urandom(4 * 1024 * 1024).hex()
            cursor.execute("CREATE TABLE blobs (data text)")
            cursor.copy_expert("COPY blobs FROM STDIN", io.StringIO(payload + "\n"))
            cursor.execute("SELECT md5(data), length(data) FROM blobs")
            digest, length = cursor.fetchone()
            assert (digest, length) == (md5_hex(payload), len(payload))
    finally:
        connection.close()
    metrics = proxy.metrics()
    client_bytes = metrics[
        'rhizome_proxy_bytes_total{direction="client_to_server",port="read_write"}'
    ]
    server_bytes = metrics[
        'rhizome_proxy_bytes_total{direction="server_to_client",port="read_write"}'
    ]
    assert client_bytes > 8_000_000 and server_bytes > 9_000_000
    assert metrics['rhizome_proxy_forwarded_connections_total{port="read_write"}'] >= 1


def test_a_new_master_closes_old_connections_before_the_acknowledgement(
    postgres_factory, sentinel, proxy
):
    pg1, pg2 = postgres_factory("pg1"), postgres_factory("pg2")
    sentinel.members.update(pg1=pg1, pg2=pg2)
    first = sentinel.route_to("pg1")
    proxy.start()
    wait_for(lambda: sentinel.acknowledged() == first, what="first acknowledgement")
    old = proxy.connect()
    assert server_port(old) == pg1.port
    raw = socket.create_connection((LOOPBACK, proxy.port))  # forwarded, idle
    wait_for(lambda: proxy.metric('rhizome_proxy_connections{port="read_write"}') == 2)

    second = sentinel.route_to("pg2")
    wait_for(lambda: sentinel.acknowledged() == second, what="acknowledgement of the new target")
    readable, _, _ = select.select([raw], [], [], 0)
    assert readable, "the old connection was still open when the generation was acknowledged"
    assert raw.recv(1) == b""
    raw.close()
    with pytest.raises(psycopg2.OperationalError):
        server_port(old)
    old.close()
    assert port_through(proxy) == pg2.port
    assert proxy.metric('rhizome_proxy_retarget_closed_connections_total{port="read_write"}') == 2
    assert proxy.metric("rhizome_proxy_generation") == second


def test_health_reports_the_target_and_sigterm_closes_everything_and_revokes_the_lease(
    postgres_factory, sentinel, proxy
):
    pg1 = postgres_factory("pg1")
    sentinel.members["pg1"] = pg1
    generation = sentinel.route_to("pg1")
    proxy.start()
    status, health = proxy.health()
    assert status == 200 and health["status"] == "ok"
    assert health["read_write_target"] == f"pg1 ({LOOPBACK}:{pg1.port})"
    assert health["proxy_generation"] == generation
    connection = proxy.connect()
    assert server_port(connection) == pg1.port
    started = time.monotonic()
    proxy.process.send_signal(signal.SIGTERM)
    wait_for(lambda: not proxy.process.is_running, 5, "the proxy to exit")
    assert time.monotonic() - started < 3
    proxy.stop()  # collects the exit status
    assert proxy.process.exit_code == 0, proxy.log_tail()
    assert sentinel.acknowledged() is None, "the lease (and the proxy key) was not revoked"
    with pytest.raises(psycopg2.OperationalError):
        server_port(connection)
    connection.close()


def test_a_client_connecting_to_a_stale_master_is_sent_to_the_new_one(
    postgres_factory, sentinel, proxy
):
    pg2 = postgres_factory("pg2")
    silent = socket.socket()  # a "master" whose host drops connection attempts
    silent.bind((LOOPBACK, 0))
    silent.listen(0)
    fillers = [socket.socket() for _ in range(3)]  # fill its accept queue
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(silent.getsockname())
    sentinel.members.update(pg1=silent.getsockname(), pg2=pg2)
    sentinel.route_to("pg1")
    try:
        proxy.start()
        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            reached = executor.submit(port_through, proxy)  # stuck connecting to pg1
            held = 'rhizome_proxy_held_connections{port="read_write"}'
            wait_for(lambda: proxy.metric(held) == 1, what="the client to be connecting")
            sentinel.route_to("pg2")
            assert reached.result(timeout=20) == pg2.port
    finally:
        for end in [silent, *fillers]:
            end.close()
