"""Key layout and ClusterView building: pure, no etcd."""

from __future__ import annotations

import pytest

from rhizome.etcd import KeyValue
from rhizome.spec import ClusterSpec
from rhizome.store.codec import encode_document
from rhizome.store.documents import KeeperInfo, LeaderInfo
from rhizome.store.errors import StoreError
from rhizome.store.keys import ClusterKeys, KeyKind
from rhizome.store.view import build_view

KEYS = ClusterKeys("main")


def stored(key: str, value: bytes, revision: int = 7) -> KeyValue:
    return KeyValue(key, value, create_revision=revision, mod_revision=revision, version=1, lease=0)


def keeper(name: str) -> KeeperInfo:
    return KeeperInfo(
        name=name, host="127.0.0.1", port=5432, observed_at=1.0, running=True, healthy=True
    )


def test_keys_follow_the_design_layout():
    assert KEYS.single(KeyKind.SPEC) == "/rhizome/main/spec"
    assert KEYS.single(KeyKind.LEADER) == "/rhizome/main/sentinel-leader"
    assert KEYS.member(KeyKind.KEEPER, "pg1") == "/rhizome/main/keepers/pg1"
    assert KEYS.member(KeyKind.PROXY, "proxy-a") == "/rhizome/main/proxies/proxy-a"
    assert KEYS.parse("/rhizome/main/commands/switchover") == (KeyKind.COMMAND, "switchover")
    assert KEYS.parse("/rhizome/main/state") == (KeyKind.STATE, "")
    assert KEYS.parse("/rhizome/other/state") is None
    assert KEYS.parse("/rhizome/main/state/extra") is None
    assert KEYS.parse("/rhizome/main/keepers/") is None
    assert KEYS.parse("/rhizome/main/unknown") is None


@pytest.mark.parametrize("name", ["", "Main", "a b", "x" * 64, "-lead", "a/b"])
def test_bad_names_are_refused_with_the_rule(name):
    with pytest.raises(StoreError, match="lowercase letters"):
        KEYS.member(KeyKind.KEEPER, name)


def test_bad_root_and_cluster_names_are_refused():
    with pytest.raises(StoreError, match="cluster name"):
        ClusterKeys("Prod Cluster")
    with pytest.raises(StoreError, match="store root"):
        ClusterKeys("main", root="rhizome/")


def test_view_decodes_every_document_and_reports_bad_ones():
    items = [
        stored(KEYS.single(KeyKind.SPEC), encode_document(ClusterSpec()), revision=3),
        stored(
            KEYS.single(KeyKind.LEADER),
            encode_document(LeaderInfo(sentinel_id="s1", elected_at=2.0)),
        ),
        stored(KEYS.member(KeyKind.KEEPER, "pg1"), encode_document(keeper("pg1"))),
        stored(KEYS.member(KeyKind.KEEPER, "pg2"), b"{not json"),
        stored(KEYS.member(KeyKind.KEEPER, "pg3"), encode_document(keeper("pg9"))),
        stored(KEYS.single(KeyKind.STATE), b'{"format_version": 99}'),
        stored("/rhizome/main/somebody-elses-key", b"ignored"),
    ]
    view = build_view(KEYS, 10, items)
    assert view.revision == 10
    assert view.spec is not None and view.spec.mod_revision == 3
    assert view.leader is not None and view.leader.document.sentinel_id == "s1"
    assert list(view.keepers) == ["pg1"]
    assert view.state is None
    problems = {problem.key: str(problem) for problem in view.problems}
    assert set(problems) == {
        "/rhizome/main/keepers/pg2",
        "/rhizome/main/keepers/pg3",
        "/rhizome/main/state",
    }
    assert "not valid JSON" in problems["/rhizome/main/keepers/pg2"]
    assert "'pg9'" in problems["/rhizome/main/keepers/pg3"]
    assert "newer rhizome" in problems["/rhizome/main/state"]
