"""The keeper's health checks (/primary, /replica, ...) and metrics from one snapshot."""

from __future__ import annotations

import dataclasses
import math

import pytest

from rhizome.api.exposition import render
from rhizome.api.keeper_checks import KeeperSnapshot, check_page, checks, keeper_routes, parse_lag
from rhizome.api.keeper_metrics import keeper_samples
from rhizome.api.requests import Request
from rhizome.store.documents import KeeperInfo


def info(**changes) -> KeeperInfo:
    base = {"name": "pg1", "host": "10.0.0.1", "port": 5432, "observed_at": 1.0,
            "running": True, "healthy": True, "role": "standby", "timeline": 3,
            "receive_lsn": 5000, "replay_lsn": 4000}  # fmt: skip
    return KeeperInfo(**(base | changes))


STANDBY = KeeperSnapshot(
    name="pg1", info=info(), assigned_master=False, synchronous=False, may_accept_writes=False,
    lag_bytes=1024, lease_age=0.4, lease_fresh=True, loop_age=0.2, watchdog_age=0.01,
    watchdog_interval=1.25,
)  # fmt: skip
MASTER = dataclasses.replace(
    STANDBY, info=info(role="primary", write_lsn=9000, flush_lsn=9000), lag_bytes=None,
    assigned_master=True, may_accept_writes=True,
)  # fmt: skip


def passing(snapshot: KeeperSnapshot, max_lag: int | None = None) -> set[str]:
    return {name for name, passed in checks(snapshot, max_lag).items() if passed}


def test_the_master_passes_primary_and_never_replica():
    assert passing(MASTER) == {"primary", "read-only", "health", "liveness", "readiness"}


@pytest.mark.parametrize(
    "change",
    [
        {"lease_fresh": False},  # it will be fenced: a load balancer must move on now
        {"may_accept_writes": False},  # fenced
        {"assigned_master": False},  # the state names another master
        {"info": info(role="primary", running=False)},
    ],
)
def test_a_master_that_may_not_write_fails_primary(change):
    assert "primary" not in passing(dataclasses.replace(MASTER, **change))


def test_a_streaming_standby_passes_replica_and_asynchronous():
    assert passing(STANDBY) == {"replica", "read-only", "asynchronous", "health", "liveness",
                                "readiness"}  # fmt: skip
    synchronous = dataclasses.replace(STANDBY, synchronous=True)
    assert {"synchronous", "replica"} <= passing(synchronous)
    assert "asynchronous" not in passing(synchronous)


def test_the_lag_bound_applies_to_replicas():
    assert "replica" in passing(STANDBY, max_lag=1024)
    assert "replica" not in passing(STANDBY, max_lag=1023)
    unknown = dataclasses.replace(STANDBY, lag_bytes=None)
    assert "replica" not in passing(unknown, max_lag=10**9), "an unknown lag is not within a bound"
    assert "replica" in passing(unknown)


def test_an_unhealthy_or_stopped_standby_fails_replica_and_readiness():
    for bad in (info(healthy=False), info(running=False)):
        assert not {"replica", "readiness"} & passing(dataclasses.replace(STANDBY, info=bad))
    assert passing(dataclasses.replace(STANDBY, info=None)) == {"liveness"}


def test_liveness_follows_the_fencing_watchdog():
    assert "liveness" in passing(dataclasses.replace(STANDBY, watchdog_age=1.9))
    assert "liveness" not in passing(dataclasses.replace(STANDBY, watchdog_age=2.1))
    short = dataclasses.replace(STANDBY, watchdog_interval=0.625)  # WatchdogSec=1
    assert "liveness" not in passing(dataclasses.replace(short, watchdog_age=1.5))
    assert "liveness" in passing(dataclasses.replace(STANDBY, loop_age=300.0)), "a long backup"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1024", 1024), ("16MB", 16 * 1024**2), ("512kB", 512 * 1024), ("1 GB", 1024**3),
     ("-1", None), ("lots", None)],
)  # fmt: skip
def test_lag_is_bytes_or_a_size_with_a_unit(text, expected):
    assert parse_lag(text) == expected


def test_pages_answer_200_or_503_and_400_for_a_bad_lag():
    status, _, body = check_page(MASTER, "primary", Request("GET", "/primary"))
    assert status == 200 and b'"state_role": "master"' in body
    assert check_page(STANDBY, "primary", Request("GET", "/primary"))[0] == 503
    bad = check_page(STANDBY, "replica", Request("GET", "/replica", {"lag": "far"}))
    assert bad[0] == 400 and b"16MB" in bad[2]


def test_every_alias_of_the_convention_is_served():
    routes = keeper_routes(lambda: MASTER)
    for path in ("/primary", "/master", "/read-write", "/replica", "/standby", "/read-only",
                 "/synchronous", "/sync", "/asynchronous", "/async", "/health", "/liveness",
                 "/readiness"):  # fmt: skip
        assert routes[path](Request("GET", path))[0] in (200, 503)
    assert routes["/master"](Request("GET", "/master"))[0] == 200


def test_metrics_of_a_master_and_of_a_keeper_without_a_lease():
    text = render(keeper_samples(MASTER))
    for line in ('rhizome_keeper_postgres_role{role="primary"} 1', "rhizome_keeper_primary 1",
                 'rhizome_keeper_wal_position_bytes{position="flush"} 9000',
                 "rhizome_keeper_timeline 3", "rhizome_keeper_lease_age_seconds 0.4"):  # fmt: skip
        assert line in text.splitlines()
    assert "rhizome_keeper_lag_bytes" not in text
    no_lease = render(keeper_samples(dataclasses.replace(STANDBY, lease_age=math.inf)))
    assert "rhizome_keeper_lease_age_seconds" not in no_lease
    assert "rhizome_keeper_lag_bytes 1024" in no_lease.splitlines()
