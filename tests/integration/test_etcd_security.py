"""The etcd client with authentication and TLS turned on, against real etcd."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from rhizome.config import ETCD_APIS, open_client
from rhizome.etcd import (
    EtcdAuthError,
    EtcdClient,
    EtcdSettings,
    EtcdUnavailable,
    PrefixWatcher,
)
from tests.integration.test_etcd_client import assert_renewed_by_the_channel_alone

pytestmark = [pytest.mark.integration, pytest.mark.etcd_releases]


@pytest.fixture(params=ETCD_APIS)
def api(request) -> str:
    return request.param


def test_right_password_works_and_wrong_password_is_a_clear_error(etcd_factory, caplog):
    caplog.set_level(logging.DEBUG)
    server = etcd_factory(auth=True)
    user = server.auth.user
    client = EtcdClient(
        EtcdSettings(endpoints=(server.client_url,), username=user.username, password=user.password)
    )
    client.put("/auth/key", b"written with a token")
    item = client.get("/auth/key")
    assert item is not None and item.value == b"written with a token"

    wrong = EtcdClient(
        EtcdSettings(
            endpoints=(server.client_url,), username=user.username, password="not-the-password"
        )
    )
    with pytest.raises(EtcdAuthError) as raised:
        wrong.get("/auth/key")
    message = str(raised.value)
    assert user.username in message and "password" in message
    assert "not-the-password" not in message
    assert user.password not in caplog.text and "not-the-password" not in caplog.text


def test_missing_credentials_on_an_auth_cluster_are_named(etcd_factory):
    server = etcd_factory(auth=True)
    client = EtcdClient(EtcdSettings(endpoints=(server.client_url,)))
    with pytest.raises(EtcdAuthError, match="requires authentication"):
        client.get("/auth/key")


def test_stale_token_is_renewed(etcd_factory, caplog):
    caplog.set_level(logging.INFO, logger="rhizome.etcd.transport")
    server = etcd_factory(auth=True)
    user = server.auth.user
    settings = EtcdSettings(
        endpoints=(server.client_url,), username=user.username, password=user.password
    )
    client = EtcdClient(settings)
    client.put("/auth/before", b"1")
    server.restart()  # simple tokens live in the member's memory: all are now invalid
    client.put("/auth/after", b"2")
    assert client.get("/auth/after") is not None
    assert "no longer valid" in caplog.text


def test_renewals_on_their_own_connection_work_with_tls_and_auth_and_survive_a_restart(
    etcd_factory, monkeypatch
):
    """The keepalive channel (rhizome.etcd.keepalive) speaks TLS with a token; when the
    member restarts (the connection closed, every token gone stale) the renewal is
    served by the transport, and the next ones go through the channel again."""
    server = etcd_factory(tls=True, auth=True)
    user = server.auth.user
    settings = EtcdSettings(
        endpoints=(server.client_url,),
        username=user.username,
        password=user.password,
        ca_file=str(server.tls.ca_file),
    )
    client = EtcdClient(settings)
    lease = client.grant_lease(60)
    assert client.keepalive(lease.id) == 60
    assert client.keepalive_channel.endpoint == server.client_url
    server.restart()
    assert client.keepalive(lease.id, time.monotonic() + 5.0) == 60
    assert client.keepalive_channel.endpoint is None, "the restart went unnoticed"
    assert_renewed_by_the_channel_alone(client, lease.id, 60, monkeypatch)
    assert client.keepalive_channel.endpoint == server.client_url


def test_tls_with_a_generated_ca(etcd_factory, api):
    server = etcd_factory(tls=True)
    assert server.client_url.startswith("https://")
    client = open_client(
        EtcdSettings(endpoints=(server.client_url,), ca_file=str(server.tls.ca_file)), api
    )
    client.put("/tls/key", b"over TLS")
    item = client.get("/tls/key")
    assert item is not None and item.value == b"over TLS"

    untrusting = open_client(EtcdSettings(endpoints=(server.client_url,)), api)
    with pytest.raises(EtcdUnavailable, match="TLS handshake failed"):
        untrusting.get("/tls/key")


def test_tls_with_client_certificates(etcd_factory, api):
    server = etcd_factory(tls=True, client_cert_auth=True)
    tls = server.tls
    with_certificate = open_client(
        EtcdSettings(
            endpoints=(server.client_url,),
            ca_file=str(tls.ca_file),
            cert_file=str(tls.client_cert_file),
            key_file=str(tls.client_key_file),
        ),
        api,
    )
    with_certificate.put("/mtls/key", b"1")
    assert with_certificate.get("/mtls/key") is not None

    without_certificate = open_client(
        EtcdSettings(endpoints=(server.client_url,), ca_file=str(tls.ca_file)), api
    )
    with pytest.raises(EtcdUnavailable):
        without_certificate.get("/mtls/key")


def test_a_watch_outlives_its_idle_timeout_with_permissions_on_its_prefix_only(etcd_factory):
    """The idle probe reads inside the watched prefix: a user granted only that prefix
    (as the etcd role grants the cluster's) keeps its watch instead of losing it."""
    server = etcd_factory(auth=True)
    role = server.auth.role
    server.etcdctl("role", "revoke-permission", role, "", "--from-key")
    server.etcdctl("role", "grant-permission", role, "readwrite", "/rhizome/", "--prefix")
    user = server.auth.user
    settings = EtcdSettings(
        endpoints=(server.client_url,), username=user.username, password=user.password
    )
    client = EtcdClient(settings)
    watcher = PrefixWatcher(client, "/rhizome/main/", idle_timeout=0.3)
    seen: list[int] = []
    errors: list[Exception] = []

    def consume() -> None:
        try:
            for update in watcher.updates():
                seen.append(len(update.events))
        except Exception as error:  # the test asserts there is none
            errors.append(error)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(1.5)  # several idle timeouts, each followed by the probe
    client.put("/rhizome/main/key", b"after the idle probes")
    time.sleep(0.5)
    watcher.close()
    thread.join(5)
    assert errors == []
    assert 1 in seen, "the watch did not deliver the write made after its idle probes"
