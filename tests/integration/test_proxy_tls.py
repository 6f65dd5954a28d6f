"""TLS clients through rhizome-proxy: encryption passes through to PostgreSQL.

etcd, three keepers running PostgreSQL with TLS, a sentinel and a proxy with
`require_tls = true` (the bench's RhizomeSystem). Clients verify PostgreSQL's
certificate against the proxy's address (verify-full) on both ports, SCRAM
channel binding works end to end, a client in plain text is refused with a
message naming the setting, and planned switchovers fail no new TLS
connection: the drain counts an encrypted login as under way for
ENCRYPTED_LOGIN_WINDOW since it cannot read it.
"""

from __future__ import annotations

import psycopg2
import pytest

from bench.rhizome_system import RhizomeSystem
from tests.harness.tls import create_tls_files
from tests.integration.switchover_support import check_switchovers_under_writers

pytestmark = pytest.mark.integration

SESSION_SSL = "SELECT ssl, pg_is_in_recovery() FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture
def system(tmp_path, etcd):
    tls = create_tls_files(tmp_path / "pki")
    rhizome = RhizomeSystem(tmp_path / "rhizome", etcd, tls=tls)
    try:
        rhizome.start()
        rhizome.cluster.wait_for_streaming(2, 120)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{rhizome.diagnostics()}") from error
    yield rhizome
    rhizome.stop()


def query(endpoint, sql: str, **options: str) -> list[tuple]:
    settings = dict(endpoint.tls_options) | options
    connection = psycopg2.connect(
        host=endpoint.host, port=endpoint.port, user="postgres", dbname="postgres",
        password=endpoint.password, connect_timeout=5, **settings,
    )  # fmt: skip
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        connection.close()


def test_tls_clients_through_the_proxy(system):
    read_write, read_only = system.endpoint, system.read_only_endpoint
    assert query(read_write, SESSION_SSL) == [(True, False)]
    assert query(read_only, SESSION_SSL) == [(True, True)]
    # End to end TLS: the server's channel binding is the one the client sees.
    assert query(read_write, SESSION_SSL, channel_binding="require") == [(True, False)]
    with pytest.raises(psycopg2.OperationalError, match=r"\[proxy\] require_tls = true"):
        query(read_write, "SELECT 1", sslmode="disable")
    with pytest.raises(psycopg2.OperationalError, match="require_tls"):
        query(read_only, "SELECT 1", sslmode="disable")

    check_switchovers_under_writers(system)
