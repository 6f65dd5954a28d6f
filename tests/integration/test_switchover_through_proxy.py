"""Planned switchovers through a real rhizome-proxy fail no new connection and lose nothing.

etcd, three keepers, a sentinel and rhizome-proxy on loopback (the bench's
RhizomeSystem); clients write every 10 ms through the proxy, three opening a
new connection per transaction and one keeping its session. Before blocking
writes the proxies hold new clients and let the logins under way finish, so
a login is never cut: only a transaction in flight on an open session may
fail (the fence closes those sessions).
"""

from __future__ import annotations

import pytest

from bench.rhizome_system import RhizomeSystem
from rhizome.config import ETCD_APIS
from tests.integration.switchover_support import check_switchovers_under_writers

pytestmark = pytest.mark.integration


@pytest.fixture
def system(tmp_path, etcd, etcd_api):
    rhizome = RhizomeSystem(tmp_path / "rhizome", etcd, etcd_api=etcd_api)
    try:
        rhizome.start()
    except AssertionError as error:
        raise AssertionError(f"{error}\n{rhizome.diagnostics()}") from error
    yield rhizome
    rhizome.stop()


@pytest.mark.parametrize("etcd_api", ETCD_APIS)
def test_switchovers_fail_no_new_connection_and_lose_no_write(system):
    check_switchovers_under_writers(system)
