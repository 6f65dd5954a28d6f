"""The store codec: round trips, versions, and errors that name the key."""

import json
from typing import Any, ClassVar

import pytest

from rhizome.spec import ClusterSpec
from rhizome.store.codec import (
    CURRENT_FORMAT_VERSION,
    StoreDocument,
    decode_document,
    encode_document,
)
from rhizome.store.documents import (
    ClusterState,
    Command,
    KeeperInfo,
    LeaderInfo,
    ProxyInfo,
    SentinelInfo,
)
from rhizome.store.errors import StoreDocumentError

KEY = "/rhizome/main/keepers/pg1"

DOCUMENTS: list[StoreDocument] = [
    KeeperInfo(
        name="pg1",
        host="10.0.0.1",
        port=5432,
        observed_at=1700000000.5,
        running=True,
        role="primary",
        healthy=True,
        timeline=3,
        system_identifier="7300000000000000001",
        write_lsn=2**40,
        flush_lsn=2**40 - 8,
        synchronous_standby_names=("pg2",),
        pending_restart=("shared_buffers",),
        acknowledged_state_generation=7,
    ),
    SentinelInfo(id="sentinel-a", host="db1", started_at=1.0, version="0.1.0"),
    ProxyInfo(
        id="proxy-1",
        listen_addresses=("0.0.0.0:5432", "[::]:5433"),
        acknowledged_proxy_generation=4,
        observed_at=2.0,
    ),
    LeaderInfo(sentinel_id="sentinel-a", elected_at=3.0),
    Command(name="switchover-1", kind="switchover", requested_at=4.0, requested_by="alice"),
    ClusterState(
        generation=3,
        master="pg1",
        assignments={"pg1": {"role": "master"}, "pg2": {"role": "standby", "follow": "pg1"}},
    ),
    ClusterSpec(),
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda document: type(document).__name__)
def test_round_trip(document: StoreDocument) -> None:
    raw = encode_document(document)
    assert decode_document(KEY, raw, type(document)) == document


def test_encoding_is_compact_sorted_json_with_format_version() -> None:
    raw = encode_document(LeaderInfo(sentinel_id="s1", elected_at=1.5))
    assert raw == b'{"elected_at":1.5,"format_version":1,"sentinel_id":"s1"}'


def _decode_error(raw: bytes, document_type: type[StoreDocument] = LeaderInfo) -> str:
    with pytest.raises(StoreDocumentError) as caught:
        decode_document(KEY, raw, document_type)
    assert caught.value.key == KEY
    message = str(caught.value)
    assert KEY in message
    return message


def test_not_utf8() -> None:
    assert "not UTF-8" in _decode_error(b"\xff\xfe{}")


def test_not_json() -> None:
    message = _decode_error(b'{"sentinel_id": ')
    assert "not valid JSON" in message
    assert "remove or move the key" in message


@pytest.mark.parametrize(("raw", "kind"), [(b"[1]", "array"), (b'"x"', "string"), (b"3", "number")])
def test_not_an_object(raw: bytes, kind: str) -> None:
    assert f"JSON {kind}, not an object" in _decode_error(raw)


def test_missing_format_version() -> None:
    message = _decode_error(b'{"sentinel_id": "s1", "elected_at": 1}')
    assert "not a rhizome document" in message
    assert "written by another program? remove or move the key" in message


@pytest.mark.parametrize("version", ["1", True, 0, -2, None])
def test_malformed_format_version(version: object) -> None:
    raw = json.dumps({"format_version": version}).encode()
    assert "format_version must be a positive integer" in _decode_error(raw)


def test_newer_format_version() -> None:
    raw = b'{"format_version": 9, "sentinel_id": "s1", "elected_at": 1}'
    message = _decode_error(raw)
    assert f"format_version 9, this agent reads up to {CURRENT_FORMAT_VERSION}" in message
    assert "upgrade this agent" in message


def test_validation_errors_name_every_field() -> None:
    data: dict[str, Any] = {
        "format_version": 1,
        "generation": "3",
        "assignments": {"pg1": {"role": "boss"}},
    }
    message = _decode_error(json.dumps(data).encode(), ClusterState)
    assert "field 'generation': input should be a valid integer" in message
    assert "field 'assignments.pg1.role': input should be 'master', 'standby'" in message


def test_operator_documents_refuse_unknown_fields_agent_documents_ignore_them() -> None:
    """An unknown field in the spec is a typo; in the state, a newer sentinel's addition."""
    spec = {"format_version": 1, "surprise": 1, "timing": {"surprise": 2}}
    message = _decode_error(json.dumps(spec).encode(), ClusterSpec)
    assert "field 'surprise': is not a known field" in message
    assert "field 'timing.surprise': is not a known field" in message
    state = {
        "format_version": 1, "surprise": 1, "generation": 3,
        "assignments": {"pg1": {"role": "master", "surprise": 2}}, "master": "pg1",
    }  # fmt: skip
    decoded = decode_document("state", json.dumps(state).encode(), ClusterState)
    assert decoded.generation == 3
    assert decoded.assignments["pg1"].role == "master"


def test_cross_field_errors_name_the_field() -> None:
    data = {"format_version": 1, "master": "pg9", "assignments": {"pg1": {"role": "standby"}}}
    message = _decode_error(json.dumps(data).encode(), ClusterState)
    assert "field 'assignments.pg1.follow': a standby must follow a keeper" in message


def test_missing_field_is_named() -> None:
    assert "field 'elected_at': is required" in _decode_error(
        b'{"format_version":1,"sentinel_id":"a"}'
    )


class _RenamedLeader(StoreDocument):
    """A test document at version 2 that renamed `sentinel` to `sentinel_id`."""

    CURRENT_FORMAT_VERSION: ClassVar[int] = 2
    format_version: int = 2
    sentinel_id: str

    @classmethod
    def upgrade_data(cls, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        assert from_version == 1
        upgraded = dict(data)
        upgraded["sentinel_id"] = upgraded.pop("sentinel")
        return upgraded


def test_older_format_versions_are_upgraded() -> None:
    decoded = decode_document(KEY, b'{"format_version":1,"sentinel":"s1"}', _RenamedLeader)
    assert decoded == _RenamedLeader(sentinel_id="s1")
    assert decoded.format_version == 2


def test_documents_refuse_a_format_version_other_than_current() -> None:
    with pytest.raises(ValueError, match="format_version 2 is not the current 1"):
        LeaderInfo(format_version=2, sentinel_id="s1", elected_at=1.0)
