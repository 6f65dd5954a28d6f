"""Fixtures that start real etcd and PostgreSQL servers on 127.0.0.1 and always stop them."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.etcd import EtcdCluster, EtcdFactory, EtcdServer, start_etcd
from tests.harness.etcd_releases import ETCD_RELEASES, EtcdBinary, default_binary, release_binary
from tests.harness.postgres import PostgresFactory, PostgresInstance

SERVER_FIXTURES = {"etcd", "etcd_cluster", "etcd_factory", "postgres_factory"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses a server fixture is an integration test."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked etcd_releases run once per etcd release: test ids end in [etcd3.4]..."""
    if metafunc.definition.get_closest_marker("etcd_releases") is None:
        return
    if "etcd_binary" in metafunc.fixturenames:
        releases = list(ETCD_RELEASES)
        ids = [f"etcd{release}" for release in releases]
        metafunc.parametrize("etcd_binary", releases, indirect=True, ids=ids)


@pytest.fixture
def etcd_binary(request: pytest.FixtureRequest) -> EtcdBinary:
    """The etcd that the test's servers run: the release it is parametrized with, else the
    default (RHIZOME_ETCD_BIN_DIR or PATH). A missing release fails in CI (CI=true) and
    skips elsewhere, naming the fix."""
    release = getattr(request, "param", None)
    if release is None:
        return default_binary()
    try:
        return release_binary(release)
    except LookupError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(str(error))
        pytest.skip(str(error))


def _stop_all(teardowns: list[Callable[[], None]]) -> None:
    """Run every teardown (latest first) even if some fail; re-raise the first failure."""
    errors: list[BaseException] = []
    for teardown in reversed(teardowns):
        try:
            teardown()
        except BaseException as error:  # the rest must still be stopped
            errors.append(error)
    if errors:
        raise errors[0]


@pytest.fixture
def etcd_factory(tmp_path: Path, etcd_binary: EtcdBinary) -> Iterator[EtcdFactory]:
    """A callable starting single-member etcd servers: (tls=, client_cert_auth=, auth=)."""
    teardowns: list[Callable[[], None]] = []
    numbers = itertools.count()

    def start(
        *, tls: bool = False, client_cert_auth: bool = False, auth: bool = False
    ) -> EtcdServer:
        name = f"etcd{next(numbers)}"
        options = {"tls": tls, "client_cert_auth": client_cert_auth, "auth": auth}
        server = start_etcd(tmp_path / "etcd", name, binary=etcd_binary, **options)
        teardowns.append(server.stop)
        return server

    try:
        yield start
    finally:
        _stop_all(teardowns)


@pytest.fixture
def etcd(etcd_factory: EtcdFactory) -> EtcdServer:
    """A fresh, plain single-member etcd."""
    return etcd_factory()


@pytest.fixture
def etcd_cluster(tmp_path: Path, etcd_binary: EtcdBinary) -> Iterator[EtcdCluster]:
    """A fresh, plain three-member etcd cluster with every member healthy."""
    cluster = EtcdCluster(tmp_path / "etcd-cluster", size=3, binary=etcd_binary)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_factory(tmp_path: Path) -> Iterator[PostgresFactory]:
    """A callable creating PostgreSQL instances (initdb and start by default)."""
    teardowns: list[Callable[[], None]] = []
    numbers = itertools.count()

    def create(
        name: str | None = None,
        *,
        settings: dict[str, str] | None = None,
        initdb: bool = True,
        start: bool = True,
    ) -> PostgresInstance:
        instance = PostgresInstance(
            name or f"pg{next(numbers)}", tmp_path / "postgres", settings=settings
        )
        teardowns.append(instance.cleanup)
        if initdb:
            instance.initdb()
        if start:
            instance.start()
        return instance

    try:
        yield create
    finally:
        _stop_all(teardowns)
