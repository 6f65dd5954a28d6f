"""The major upgrade's pre-checks (rhizome.upgrade.prechecks): each problem names its object
and the fix; the in-place method does not care about what logical replication cannot copy."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rhizome.upgrade.facts import ClusterHealth, DatabaseFacts, UpgradeFacts
from rhizome.upgrade.prechecks import problems

GIB = 1024**3
APP = DatabaseFacts("app", 10 * GIB, extensions=(("pg_trgm", "1.6"),))
READY = UpgradeFacts(
    source_version=15, target_version=17, method="logical", databases=(APP,),
    health=ClusterHealth(master="pg1"), target_extensions=frozenset({"pg_trgm", "hstore"}),
    free_bytes=100 * GIB,
)  # fmt: skip


def with_database(**changes: object) -> UpgradeFacts:
    return replace(READY, databases=(replace(APP, **changes),))  # type: ignore[arg-type]


def test_a_ready_cluster_has_no_problem():
    assert problems(READY) == []


@pytest.mark.parametrize(
    ("facts", "subject", "fix"),
    [
        (with_database(tables_without_identity=("public.events",)),
         "tables public.events in database app", "ADD PRIMARY KEY"),
        (with_database(unlogged_tables=("public.cache",)),
         "unlogged tables public.cache in database app", "SET LOGGED"),
        (with_database(large_objects=3), "3 large objects in database app", "bytea"),
        (with_database(extensions=(("postgis", "3.3.2"),)),
         "extensions postgis in database app", "postgresql-17-postgis"),
        (replace(READY, target_extensions=None), "PostgreSQL 17", "install postgresql-17"),
        (replace(READY, free_bytes=11 * GIB), "the new data directory's file system",
         "free or add space"),
        (replace(READY, health=ClusterHealth(master="pg1", paused=True)), "the cluster",
         "rhizomectl resume"),
        (replace(READY, health=ClusterHealth(master="pg1", operation="switchover")),
         "the cluster", "no operation"),
        (replace(READY, health=ClusterHealth()), "the cluster", "docs/runbooks"),
        (replace(READY, health=ClusterHealth(master="pg1", unhealthy_keepers=("pg3",))),
         "keepers pg3", "bring them back"),
        (replace(READY, target_version=15), "PostgreSQL 15", "newer major version"),
    ],
)  # fmt: skip
def test_each_problem_names_its_object_and_the_fix(facts, subject, fix):
    [problem] = problems(facts)
    assert problem.subject == subject and fix in problem.fix
    assert str(problem).startswith(subject)


def test_the_in_place_method_carries_what_logical_replication_cannot():
    blocked = with_database(
        tables_without_identity=("public.events",), unlogged_tables=("public.cache",),
        large_objects=3,
    )  # fmt: skip
    assert len(problems(blocked)) == 3
    in_place = replace(blocked, method="link", free_bytes=2 * GIB)
    assert problems(in_place) == [], "pg_upgrade --link needs only a tenth of the size free"


def test_long_lists_are_cut_and_counted():
    tables = tuple(f"public.t{number}" for number in range(25))
    [problem] = problems(with_database(tables_without_identity=tables))
    assert "public.t9 and 15 more" in problem.subject and "public.t10" not in problem.subject
