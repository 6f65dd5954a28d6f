"""The plan of `rhizomectl upgrade prepare` (pure): only the missing steps, in order, and every
refusal found before anything is changed; the role filter never keeps another role's password."""

from __future__ import annotations

from dataclasses import replace

from rhizome.upgrade.replication import (
    ReplicationFacts,
    Slot,
    SourceDatabase,
    TargetDatabase,
    plan,
    problems,
    subscription_name,
)
from rhizome.upgrade.roles import redact, role_statements
from rhizome.upgrade.status import statuses

APP = SourceDatabase("app", "app_owner", "UTF8", "C", "C")
FRESH = ReplicationFacts(
    source_version=15, target_version=17, wal_level="logical", source_in_recovery=False,
    target_in_recovery=False, free_slots=10, source_databases=(APP,), target_databases={},
    missing_roles=("app_owner",), source_address=("10.0.1.11", 5432, "postgres"),
)  # fmt: skip
DONE_SOURCE = replace(APP, has_sequence_table=True, has_publication=True)
DONE_TARGET = TargetDatabase("app", has_sequence_table=True, subscription_enabled=True,
                             worker_running=True)  # fmt: skip
ACTIVE = {"rhizome_upgrade_app": Slot("rhizome_upgrade_app", True)}
DONE = replace(FRESH, source_databases=(DONE_SOURCE,), target_databases={"app": DONE_TARGET},
               missing_roles=(), slots=ACTIVE)  # fmt: skip


def descriptions(facts: ReplicationFacts) -> list[str]:
    return [step.description for step in plan(facts)]


def test_a_fresh_target_gets_every_step_in_order():
    steps = plan(FRESH)
    assert [(step.side, step.action) for step in steps] == [
        ("target", "roles"), ("target", "sql"), ("source", "sql"), ("target", "schema"),
        ("source", "sql"), ("target", "sql"),
    ]  # fmt: skip
    create_database, subscribe = steps[1].statements[0], steps[-1].statements[0]
    assert create_database.startswith('CREATE DATABASE "app" OWNER "app_owner" TEMPLATE template0')
    assert "CONNECTION 'host=''10.0.1.11'' port=''5432'' user=''postgres'' dbname=''app'''" in (
        subscribe
    )
    assert "slot_name = 'rhizome_upgrade_app'" in subscribe and "copy_data = true" in subscribe
    assert "password" not in subscribe
    assert any("ENABLE ALWAYS TRIGGER" in statement for statement in steps[3].statements)
    assert problems(FRESH) == []


def test_nothing_is_left_to_do_after_a_complete_run():
    assert plan(DONE) == [] and problems(DONE) == []
    assert all(status.ready for status in statuses(DONE))


def test_an_interrupted_run_is_completed_from_where_it_stopped():
    no_subscription = replace(DONE_TARGET, subscription_enabled=None, worker_running=False)
    stale = Slot("rhizome_upgrade_app", active=False)
    facts = replace(DONE, target_databases={"app": no_subscription},
                    slots={"rhizome_upgrade_app": stale})  # fmt: skip
    assert descriptions(facts) == [
        "drop slot rhizome_upgrade_app left by an interrupted prepare",
        "subscribe app (slot rhizome_upgrade_app on the source, initial copy)",
    ]
    off = replace(DONE_TARGET, subscription_enabled=False)
    disabled = replace(DONE, target_databases={"app": off})
    assert descriptions(disabled) == ["enable subscription rhizome_upgrade_app"]
    assert not statuses(disabled)[0].ready


def test_a_target_database_holding_other_tables_is_refused():
    foreign = TargetDatabase("app", user_tables=("public.legacy",))
    found = problems(replace(FRESH, target_databases={"app": foreign}))
    assert [problem.subject for problem in found] == ["database app on the target"]
    assert "public.legacy" in found[0].problem
    copied = replace(DONE_TARGET, subscription_enabled=None, copied_rows=True)
    assert problems(replace(DONE, target_databases={"app": copied}))


def test_the_source_needs_logical_wal_a_master_and_free_slots():
    found = problems(replace(FRESH, wal_level="replica", source_in_recovery=True, free_slots=1))
    text = " ".join(str(problem) for problem in found)
    assert "wal_level is replica" in text and "restart" in text
    assert "it is a standby" in text and "2 replication slots needed, 1 free" in text
    older = problems(replace(FRESH, target_version=14))
    assert [problem.subject for problem in older] == ["the target"]


def test_subscription_names_are_valid_slot_names():
    assert subscription_name("app") == "rhizome_upgrade_app"
    odd = subscription_name("Sales-EU")
    assert odd.startswith("rhizome_upgrade_sales_eu_") and odd != subscription_name("sales_eu")
    long = subscription_name("x" * 63)
    assert len(long) <= 63 and long != subscription_name("x" * 62)


DUMP = '''--
-- Roles
--

CREATE ROLE app_owner;
ALTER ROLE app_owner WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi';
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER LOGIN PASSWORD 'SCRAM-SHA-256$4096:xyz$uvw:rst';
CREATE ROLE "Report ""x""";
ALTER ROLE "Report ""x""" WITH LOGIN;
ALTER ROLE app_owner IN DATABASE app SET work_mem TO '64MB';
GRANT app_owner TO "Report ""x""" GRANTED BY postgres;
GRANT pg_monitor TO postgres GRANTED BY postgres;
'''


def test_only_the_missing_roles_statements_are_kept():
    kept = role_statements(DUMP, ["app_owner", 'Report "x"'])
    assert kept == [
        "CREATE ROLE app_owner;",
        "ALTER ROLE app_owner WITH NOSUPERUSER INHERIT LOGIN PASSWORD"
        " 'SCRAM-SHA-256$4096:abc$def:ghi';",
        'CREATE ROLE "Report ""x""";',
        'ALTER ROLE "Report ""x""" WITH LOGIN;',
        'GRANT app_owner TO "Report ""x""" GRANTED BY postgres;',
    ]
    assert role_statements(DUMP, []) == []


def test_error_text_loses_every_password():
    said = "LINE 1: ALTER ROLE a WITH PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi';"
    assert "SCRAM" not in redact(said) and "PASSWORD '[redacted]'" in redact(said)
    assert "md5" not in redact("hash md5a3556571e93b0d20722ba62be61e8c2d here")
