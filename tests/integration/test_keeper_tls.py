"""PostgreSQL's TLS between keepers (keeper/tls.py): the clone and the streaming run over
verified TLS, a peer without TLS is refused, a peer with another CA cannot clone, and a
renewed certificate is served without a restart."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import psycopg2
import pytest

from rhizome.proxy.wire import ssl_request
from rhizome.spec import ClusterSpec
from tests.harness.keeper import REPLICATION_USER, StateWriter, wait_reported, wait_until
from tests.harness.ports import LOOPBACK
from tests.harness.tls import create_tls_files, renew_server_certificate

pytestmark = pytest.mark.integration


def test_keepers_replicate_over_verified_tls_only(store, keeper_factory, tmp_path):
    files = create_tls_files(tmp_path / "pki")
    stranger = create_tls_files(tmp_path / "other-pki")  # another CA, same names
    assert store.write_spec(ClusterSpec(), 0)
    writer = StateWriter(store)
    master, standby, foreign = keeper_factory("k1"), keeper_factory("k2"), keeper_factory("k3")
    for keeper, pki in ((master, files), (standby, files), (foreign, stranger)):
        keeper.use_tls(pki.server_cert_file, pki.server_key_file, pki.ca_file)
    writer.assign("k1", initialized=False, k1="master")
    master.start()
    wait_reported(store, "k1", "a primary", running=True, role="primary", healthy=True)
    generation = writer.assign("k1", k1="master", k2="standby:k1", k3="standby:k1")
    standby.start()
    foreign.start()
    wait_reported(
        store, "k2", "a streaming standby", running=True, role="standby",
        acknowledged_state_generation=generation,
    )  # fmt: skip
    encrypted = wait_until(
        lambda: master.execute(
            "SELECT ssl.ssl, ssl.version FROM pg_stat_replication replication"
            " JOIN pg_stat_ssl ssl USING (pid) WHERE replication.application_name = 'k2'"
        ),
        60,
        "k2's WAL sender",
    )
    assert encrypted[0][0] is True and encrypted[0][1].startswith("TLSv1.")
    assert master.execute("SHOW ssl") == [("on",)]

    with pytest.raises(psycopg2.OperationalError, match="no encryption"):
        psycopg2.connect(
            host=LOOPBACK, port=master.port, user=REPLICATION_USER, dbname="replication",
            password=master.replication_password, sslmode="disable", replication="true",
            connect_timeout=3,
        ).close()  # fmt: skip

    wait_until(
        lambda: "certificate verify failed" in foreign.log_path.read_text(),
        60,
        "k3's clone refused: its CA did not sign k1's certificate",
    )
    assert not (foreign.data_dir / "PG_VERSION").exists()


def served_certificate(port: int, ca_file: Path) -> bytes:
    """The certificate PostgreSQL presents now (DER), verified against ca_file."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((LOOPBACK, port), timeout=5) as connection:
        connection.sendall(ssl_request())
        assert connection.recv(1) == b"S", "PostgreSQL declined TLS"
        with context.wrap_socket(connection, server_hostname=LOOPBACK) as encrypted:
            certificate = encrypted.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def der(cert_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert_file.read_text())


def test_a_renewed_certificate_is_served_without_a_restart(store, keeper_factory, tmp_path):
    files = create_tls_files(tmp_path / "pki")
    assert store.write_spec(ClusterSpec(), 0)
    master = keeper_factory("k1")
    master.use_tls(files.server_cert_file, files.server_key_file, files.ca_file)
    StateWriter(store).assign("k1", initialized=False, k1="master")
    master.start()
    wait_reported(store, "k1", "a primary", running=True, role="primary", healthy=True)
    started = master.execute("SELECT pg_postmaster_start_time()")
    assert served_certificate(master.port, files.ca_file) == der(files.server_cert_file)

    renewed_cert, renewed_key = renew_server_certificate(files)
    master.install_tls_files(renewed_cert, renewed_key, files.ca_file)
    wait_until(
        lambda: served_certificate(master.port, files.ca_file) == der(renewed_cert),
        30,
        "PostgreSQL serving the renewed certificate",
    )
    assert master.execute("SELECT pg_postmaster_start_time()") == started
    psycopg2.connect(
        host=LOOPBACK, port=master.port, user="postgres", dbname="postgres",
        password=master.superuser_password, sslmode="verify-full", sslrootcert=files.ca_file,
        connect_timeout=3,
    ).close()  # fmt: skip
