"""Pure parts of the etcd client: settings validation, key ranges, error mapping."""

from __future__ import annotations

import base64
import json

import pytest

from rhizome import clock
from rhizome.config import etcd_settings
from rhizome.etcd import (
    EtcdAuthError,
    EtcdConfigurationError,
    EtcdRequestError,
    EtcdSettings,
    EtcdUnavailable,
)
from rhizome.etcd.client import prefix_range
from rhizome.etcd.endpoints import MINIMUM_ATTEMPT_TIMEOUT, EndpointFailed, attempt_timeout
from rhizome.etcd.transport import (
    EndpointFailure,
    EtcdTransport,
    api_prefix_for,
    raise_for_error,
)
from rhizome.lease import MINIMUM_BUDGET, outlived, renewal_deadline

ENDPOINTS = ("http://a:1", "http://b:1", "http://c:1")


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("127.0.0.1:2379", "http(s)://HOST:PORT"),
        ("ftp://127.0.0.1:2379", "http(s)://HOST:PORT"),
        ("http://127.0.0.1:2379/v3", "http(s)://HOST:PORT"),
        ("http://127.0.0.1", "no valid port"),
        ("http://127.0.0.1:notaport", "no valid port"),
    ],
)
def test_malformed_endpoints_are_named(endpoint, problem):
    with pytest.raises(EtcdConfigurationError) as raised:
        EtcdSettings(endpoints=(endpoint,))
    assert endpoint in str(raised.value) and problem in str(raised.value)


def test_settings_need_an_endpoint_and_paired_credentials(tmp_path):
    with pytest.raises(EtcdConfigurationError, match="no etcd endpoint"):
        EtcdSettings(endpoints=())
    with pytest.raises(EtcdConfigurationError, match="given together"):
        EtcdSettings(endpoints=("http://127.0.0.1:2379",), username="rhizome")
    with pytest.raises(EtcdConfigurationError, match="does not exist"):
        EtcdSettings(endpoints=("https://127.0.0.1:2379",), ca_file=str(tmp_path / "absent.pem"))


def test_password_is_not_in_repr():
    settings = EtcdSettings(
        endpoints=("http://127.0.0.1:2379",), username="rhizome", password="s3cret-value"
    )
    assert "s3cret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("version", "prefix"),
    [("3.4.0", "/v3"), ("3.5.17", "/v3"), ("3.3.11", "/v3beta"), ("3.2.9", "/v3alpha")],
)
def test_api_prefix_follows_the_cluster_version(version, prefix):
    assert api_prefix_for(version) == prefix


def decoded(range_request: dict[str, str]) -> tuple[bytes, bytes]:
    return base64.b64decode(range_request["key"]), base64.b64decode(range_request["range_end"])


def test_prefix_range_covers_exactly_the_prefix():
    assert decoded(prefix_range("/rhizome/main/")) == (b"/rhizome/main/", b"/rhizome/main0")
    assert decoded(prefix_range("a\xff")) == ("a\xff".encode(), "a\xc3\xc0".encode("latin-1"))
    assert decoded(prefix_range("")) == (b"", b"\0")


def error_body(message: str, code: int) -> bytes:
    return json.dumps({"error": message, "message": message, "code": code}).encode()


def test_member_trouble_means_try_another_endpoint():
    with pytest.raises(EndpointFailed):
        raise_for_error("http://e:1", 503, error_body("etcdserver: leader changed", 14))
    with pytest.raises(EndpointFailed):
        raise_for_error("http://e:1", 500, error_body("etcdserver: request timed out", 2))


def test_permission_and_request_errors_are_not_retried():
    with pytest.raises(EtcdAuthError, match="roles"):
        raise_for_error("http://e:1", 403, error_body("etcdserver: permission denied", 7))
    with pytest.raises(EtcdAuthError, match="username and password"):
        raise_for_error("http://e:1", 400, error_body("etcdserver: user name is empty", 3))
    with pytest.raises(EtcdRequestError) as raised:
        raise_for_error("http://e:1", 400, error_body("etcdserver: too many operations", 3))
    assert raised.value.code == 3 and "http://e:1" in str(raised.value)


def test_endpoint_order_must_be_known():
    with pytest.raises(EtcdConfigurationError, match=r"endpoint_order 'random'.*spread"):
        EtcdSettings(endpoints=ENDPOINTS, endpoint_order="random")


@pytest.mark.parametrize(
    ("time_left", "endpoints_left", "expected"),
    [
        (None, 3, 2.0),  # no deadline: the configured request timeout
        (1.5, 3, 0.75),  # a keeper 1 s after its last renewal, fencing at 2.5 s
        (1.5, 1, 1.5),  # the last endpoint gets all that is left
        (10.0, 2, 2.0),  # never more than the request timeout
        (0.2, 2, MINIMUM_ATTEMPT_TIMEOUT),  # nor less than the minimum
        (-3.0, 1, MINIMUM_ATTEMPT_TIMEOUT),  # deadline passed: still one short try
    ],
)
def test_attempt_timeout_leaves_time_for_the_next_endpoint(time_left, endpoints_left, expected):
    assert attempt_timeout(2.0, time_left, endpoints_left) == pytest.approx(expected)


def test_a_fencing_budget_survives_one_silent_member():
    """Keeper defaults: renewal 1 s after the last, fencing point 2.5 s, 3 members."""
    first = attempt_timeout(2.0, 1.5, 3)
    second = attempt_timeout(2.0, 1.5 - first, 2)
    assert first + second <= 1.5 and second >= 0.3


def transport(order: str = "listed") -> EtcdTransport:
    return EtcdTransport(EtcdSettings(endpoints=ENDPOINTS, endpoint_order=order))


def test_transports_start_at_spread_endpoints():
    firsts = {transport("spread").rotation.in_order()[0] for _ in range(60)}
    assert firsts == set(ENDPOINTS)
    assert {transport().rotation.in_order()[0] for _ in range(10)} == {"http://a:1"}


def test_a_failed_endpoint_is_not_tried_first_again():
    listed = transport()
    listed.rotation.demote("http://a:1")
    assert listed.rotation.in_order() == ["http://b:1", "http://c:1", "http://a:1"]
    listed.rotation.prefer("http://c:1")
    listed.rotation.demote("http://b:1")  # another thread's failure: the preference stays
    assert listed.rotation.in_order()[0] == "http://c:1"


def silent_members(silent: EtcdTransport, monkeypatch) -> list[tuple[str, float]]:
    """Makes every member of `silent` time out; the list of (endpoint, seconds given)."""
    attempts: list[tuple[str, float]] = []

    def time_out(endpoint, path, payload, until):
        attempts.append((endpoint, until - clock.monotonic()))
        raise EndpointFailed("timed out")

    monkeypatch.setattr(silent, "_post_json", time_out)
    return attempts


def test_a_call_with_a_deadline_splits_it_between_endpoints(monkeypatch):
    """Every endpoint times out at its share; the call ends by its deadline (plus minimums)."""
    listed = transport()
    attempts = silent_members(listed, monkeypatch)
    with pytest.raises(EtcdUnavailable, match="no etcd endpoint answered"):
        listed.call("/lease/keepalive", {}, deadline=clock.monotonic() + 1.6)
    shares = [share for _endpoint, share in attempts]
    assert [endpoint for endpoint, _share in attempts] == list(ENDPOINTS)
    assert shares[0] == pytest.approx(0.8, abs=0.01)
    assert shares[1] == pytest.approx(0.8, abs=0.01)  # nothing was spent: half of 1.6 again
    assert shares[2] == pytest.approx(1.6, abs=0.01)  # the last one gets all of it


def test_a_member_the_keepalive_channel_tried_is_left_out_and_named(monkeypatch):
    """After the channel's attempt on a frozen member, the others share what is left as
    they would have after the transport's own attempt there (not a third of it again)."""
    listed = transport()
    attempts = silent_members(listed, monkeypatch)
    tried = EndpointFailure("http://a:1", "timed out waiting for the answer")
    with pytest.raises(EtcdUnavailable, match=r"http://a:1: timed out waiting for the answer"):
        listed.call("/lease/keepalive", {}, deadline=clock.monotonic() + 0.8, tried=tried)
    assert [endpoint for endpoint, _share in attempts] == ["http://b:1", "http://c:1"]
    assert attempts[0][1] == pytest.approx(0.4, abs=0.01)
    assert attempts[1][1] == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        (1.2, [("b", 0.3), ("c", 0.3), ("b", 0.3), ("c", 0.3)]),
        (0.6, [("b", 0.25), ("c", 0.25)]),  # no time for a second round of attempts
    ],
)
def test_a_keepalive_asks_the_other_members_twice_in_equal_shares(monkeypatch, budget, expected):
    """After the channel's member stayed silent, each other member is asked twice if need
    be, every attempt getting an equal share: the last one is sent a quarter of the budget
    before the deadline, not half of it (a follower holds a keepalive it forwarded to a
    frozen etcd leader for seconds, and answers one sent after the election at once)."""
    now = [100.0]
    monkeypatch.setattr(clock, "monotonic", lambda: now[0])
    listed = transport()
    attempts: list[tuple[str, float]] = []

    def time_out(endpoint, path, payload, until):
        attempts.append((endpoint[7], round(until - now[0], 3)))
        now[0] = until
        raise EndpointFailed("timed out")

    monkeypatch.setattr(listed, "_post_json", time_out)
    tried = EndpointFailure("http://a:1", "timed out waiting for the answer")
    with pytest.raises(EtcdUnavailable):
        listed.call("/lease/keepalive", {}, deadline=100.0 + budget, tried=tried, twice=True)
    assert attempts == expected


@pytest.mark.parametrize(
    ("now", "renewed_at", "expected"),
    [
        (11.0, 10.0, 12.5),  # the fencing point of the last renewal
        (12.2, 10.0, 15.0),  # fencing point (nearly) passed: the lease expiry
        (14.8, 10.0, 14.8 + 2.5),  # the lease is gone too: a fresh budget
        (11.0, None, 13.5),  # a grant: a fresh budget
    ],
)
def test_renewal_deadline(now, renewed_at, expected):
    assert renewal_deadline(now, renewed_at, within=2.5, ttl=5) == pytest.approx(expected)
    assert renewal_deadline(now, renewed_at, within=0.1, ttl=5) - now >= MINIMUM_BUDGET


def test_configuration_files_choose_the_endpoint_order():
    endpoints = {"endpoints": list(ENDPOINTS)}
    assert etcd_settings(endpoints, "agent.toml").endpoint_order == "spread"
    listed = etcd_settings({**endpoints, "endpoint_order": "listed"}, "agent.toml")
    assert listed.endpoint_order == "listed"


def test_a_lease_unrenewed_past_its_ttl_is_taken_for_gone_but_not_one_never_renewed_here():
    assert not outlived(100.0, 105.4, 5)
    assert outlived(100.0, 105.6, 5)
    assert not outlived(0.0, 1000.0, 5), "adopted from a previous process: ask etcd"
