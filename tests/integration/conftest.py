"""Fixtures shared by the proxy's integration tests."""

from __future__ import annotations

import pytest

from tests.integration.test_proxy_support import ProxyProcess, StandInSentinel


@pytest.fixture
def sentinel(etcd):
    """A stand-in for the sentinel: the test writes state and keeper documents through it."""
    stand_in = StandInSentinel(etcd.client_url)
    yield stand_in
    stand_in.close()


@pytest.fixture
def proxy(etcd, tmp_path, sentinel):
    """A rhizome-proxy process with default settings, following that cluster."""
    process = ProxyProcess(tmp_path / "proxy", etcd.client_url)
    yield process
    process.stop()
