"""A proxy whose store thread dies closes every connection and exits non-zero (P1 hole 4)."""

from __future__ import annotations

import socket
import time

import pytest

from rhizome.proxy.failure import EXIT_SAFETY_FAILURE
from tests.harness.ports import LOOPBACK
from tests.integration.test_proxy_deadline import FaultyProxy, forwarding_session
from tests.integration.test_proxy_store_loss import seconds_until_closed
from tests.integration.test_proxy_support import FAST_TIMING, wait_for

pytestmark = pytest.mark.integration

EXIT_LIMIT = FAST_TIMING.renew_interval + 2.0
"""Seconds from the injected error to the process's exit (shutdown revokes the lease)."""


@pytest.mark.parametrize("fault", ["lease_error", "watch_error"])
def test_an_unexpected_error_in_a_store_thread_fences_and_ends_the_proxy(
    fault, postgres_factory, etcd, sentinel, tmp_path
):
    pg1 = postgres_factory("pg1")
    proxy = FaultyProxy(tmp_path / "proxy", etcd.client_url)
    try:
        raw = forwarding_session(pg1, sentinel, proxy)
        proxy.inject(fault)
        injected_at = time.monotonic()
        if fault == "watch_error":
            sentinel.publish_keeper("pg1", role="primary")  # a change the watch reads
        closed_after = seconds_until_closed(raw, injected_at, timeout=10)
        assert closed_after < EXIT_LIMIT, closed_after
        wait_for(lambda: not proxy.process.is_running, EXIT_LIMIT, "the proxy to exit")
        proxy.stop()  # collects the exit status
        assert proxy.process.exit_code == EXIT_SAFETY_FAILURE, proxy.log_tail()
        with pytest.raises(OSError):
            socket.create_connection((LOOPBACK, proxy.port), timeout=1).close()
        assert "thread died" in proxy.process.log_path.read_text()
        assert pg1.execute("SELECT count(*) FROM written") == [(0,)]
    finally:
        proxy.stop()
