"""The v2 backend's pure parts: leased values, lease records, refresh chains, and which
answers send a request on to another member."""

from __future__ import annotations

import pytest

from rhizome.etcd_v2.http import Answer, other_member_may_serve
from rhizome.etcd_v2.leases import (
    LeaseRecord,
    RefreshChains,
    leased_value,
    split_leased,
)


def test_a_leased_value_carries_its_lease_and_anything_else_is_on_no_lease():
    assert split_leased(leased_value('{"a": 1}', 42)) == ('{"a": 1}', 42)
    assert split_leased(leased_value("", 7)) == ("", 7)
    assert split_leased('{"a": 1}') == ('{"a": 1}', 0)
    assert split_leased("rhizome-lease:x\n{}") == ("rhizome-lease:x\n{}", 0), "not a lease id"
    assert split_leased("rhizome-lease:12") == ("rhizome-lease:12", 0), "no value line"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{}",
        '{"ttl": 0, "keys": []}',
        '{"ttl": 5, "keys": [1]}',
        '{"ttl": "5", "keys": []}',
    ],
)
def test_a_marker_that_holds_no_lease_record_is_recognised(text):
    assert LeaseRecord.decode(text) is None


def test_lease_records_round_trip_and_add_or_drop_keys():
    record = LeaseRecord(ttl=5).with_key("/a").with_key("/b").with_key("/a")
    assert record.keys == ("/a", "/b")
    assert LeaseRecord.decode(record.encode()) == record
    assert record.without({"/a"}) == LeaseRecord(ttl=5, keys=("/b",))


def test_our_refreshes_keep_a_compare_against_the_index_the_caller_saw():
    chains = RefreshChains()
    chains.written("/k", 10)
    chains.refreshed("/k", 10, 12)
    chains.refreshed("/k", 12, 15)
    assert chains.current("/k", 10) == 15, "written at 10, only refreshed since"
    assert chains.current("/k", 12) == 15, "a view read after the first refresh"
    assert chains.current("/k", 9) == 9, "an index before our write is compared as it is"
    assert chains.same("/k", 10, 15) and not chains.same("/k", 10, 14)
    assert chains.latest("/k") == 15 and chains.latest("/other") is None


def test_a_write_by_somebody_else_between_our_refreshes_starts_a_new_chain():
    chains = RefreshChains()
    chains.written("/k", 10)
    chains.refreshed("/k", 13, 14)  # the key was at 13: not our 10
    assert chains.current("/k", 10) == 10, "what the caller saw at 10 is gone"
    assert chains.current("/k", 13) == 14
    chains.forget("/k")
    assert chains.latest("/k") is None


def test_a_chain_keeps_the_written_index_however_many_refreshes_followed():
    """A watcher never sees a refresh: the sentinel leader's view holds its leader key's
    creation index for as long as it leads, and its guarded writes of state compare on it."""
    chains = RefreshChains()
    chains.written("/k", 1)
    for index in range(2, 100_000, 3):
        chains.refreshed("/k", chains.latest("/k") or 0, index)
    assert chains.current("/k", 1) == 99_998, "a day of refreshes later"
    assert chains.current("/k", 50_000) == 99_998, "any index inside our chain"
    assert chains.same("/k", 1, 99_998)
    assert chains.current("/k", 0) == 0, "before the chain: compared as it is"


@pytest.mark.parametrize(
    ("status", "body", "another"),
    [
        (200, b"{}", False),
        (404, b'{"errorCode": 100}', False),
        (412, b'{"errorCode": 101}', False),
        (401, b'{"errorCode": 110}', False),
        (500, b'{"errorCode": 300, "message": "Raft Internal Error"}', True),
        (400, b'{"errorCode": 301}', True),
        (503, b"<html>", True),
        (502, b'{"message": "bad gateway"}', True),
    ],
)
def test_only_answers_another_member_may_serve_move_on(status, body, another):
    assert other_member_may_serve(Answer(status, body, {})) is another
