"""Pure parts of the etcd client: settings validation, key ranges, error mapping."""

from __future__ import annotations

import base64
import json

import pytest

from rhizome.etcd import EtcdAuthError, EtcdConfigurationError, EtcdRequestError, EtcdSettings
from rhizome.etcd.client import prefix_range
from rhizome.etcd.transport import EndpointFailed, api_prefix_for, raise_for_error


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
