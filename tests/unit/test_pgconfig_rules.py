"""PostgreSQL's value rules (pure), the catalogue parser and the scratch check's log parser."""

from __future__ import annotations

import pytest

from rhizome.pgconfig.catalogue import catalogue_problems, parse_describe_config
from rhizome.pgconfig.check import changed_parameters, check_with_program, cluster_majors
from rhizome.pgconfig.rules import Setting, accepted_form, parse_bool, value_problem
from rhizome.pgconfig.scratch import UNATTRIBUTED, parse_check_output, scratch_file_text
from rhizome.spec import ClusterSpec
from rhizome.store.documents import KeeperInfo

SHARED_BUFFERS = Setting("shared_buffers", "integer", "8kB", True, 16, 1073741823)
WORK_MEM = Setting("work_mem", "integer", "kB", True, 64, 2147483647)
TIMEOUT = Setting("statement_timeout", "integer", "ms", True, 0, 2147483647)
MAX_CONNECTIONS = Setting("max_connections", "integer", None, True, 1, 262143)
COST = Setting("random_page_cost", "real", None, True, 0, 1.79769e308)
DELAY = Setting("vacuum_cost_delay", "real", "ms", True, 0, 100)
WAL_LEVEL = Setting("wal_level", "enum", enum_values=("minimal", "replica", "logical"))
JIT = Setting("jit", "bool")
SEARCH_PATH = Setting("search_path", "string")
UNKNOWN_UNIT = Setting("shared_buffers", "integer", None, False, 16, 1073741823)

DESCRIBED = (
    "shared_buffers\tpostmaster\tResource Usage / Memory\tINTEGER\t0\t16\t1073741823\tSets.\t\n"
    "jit\tuser\tQuery Tuning\tBOOLEAN\tFALSE\t\t\tAllow JIT compilation.\t\n"
    "random_page_cost\tuser\tQuery Tuning\tREAL\t0\t0\t1.79769e+308\tCost.\t\n"
    "wal_level\tpostmaster\tWrite-Ahead Log\tENUM\treplica\t\t\tLevel.\t\n"
    'search_path\tuser\tClient\tSTRING\t"$user", public\t\t\tOrder.\t\n'
    "garbage line\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on", True), ("ON", True), ("off", False), ("of", False), ("true", True), ("t", True),
        ("TRU", True), ("false", False), ("f", False), ("yes", True), ("y", True), ("no", False),
        ("n", False), ("1", True), ("0", False),
        ("o", None), ("", None), ("maybe", None), ("2", None), ("10", None), ("truee", None),
        ("onn", None), (" on", None),
    ],
)  # fmt: skip
def test_booleans_are_parsed_as_postgresql_does(text: str, expected: bool | None) -> None:
    assert parse_bool(text) is expected


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        (SHARED_BUFFERS, "128MB"), (SHARED_BUFFERS, "1GB"), (SHARED_BUFFERS, 16384),
        (SHARED_BUFFERS, "16384"), (SHARED_BUFFERS, " 1 GB "), (SHARED_BUFFERS, "0x100"),
        (WORK_MEM, "64kB"), (WORK_MEM, "1.5MB"), (WORK_MEM, "1TB"),
        (TIMEOUT, "5s"), (TIMEOUT, "1min"), (TIMEOUT, "2h"), (TIMEOUT, "1d"), (TIMEOUT, "500us"),
        (TIMEOUT, 0), (MAX_CONNECTIONS, 200), (MAX_CONNECTIONS, "1.4"), (COST, 1.1),
        (COST, "4"), (COST, "1e2"), (DELAY, "2ms"), (DELAY, "0.5"), (WAL_LEVEL, "logical"),
        (WAL_LEVEL, "REPLICA"), (JIT, True), (JIT, "off"), (JIT, 1), (SEARCH_PATH, "a, b"),
        (UNKNOWN_UNIT, "1GB"), (UNKNOWN_UNIT, "128MB"),
    ],
)  # fmt: skip
def test_values_postgresql_accepts_pass(setting: Setting, value: object) -> None:
    assert value_problem(setting, value) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        (SHARED_BUFFERS, "banana", "'banana' is not an integer"),
        (SHARED_BUFFERS, "8", "'8' is out of range"),
        (SHARED_BUFFERS, "64kB", "'64kB' is out of range"),
        (SHARED_BUFFERS, "9TB", "'9TB' is out of range"),
        (SHARED_BUFFERS, "128mb", "'128mb' has an unknown unit 'mb'"),
        (SHARED_BUFFERS, "5s", "'5s' has a time unit"),
        (WORK_MEM, "banana", "'banana' is not an integer"),
        (WORK_MEM, "", "'' is not an integer"),
        (TIMEOUT, "5MB", "'5MB' has a memory unit"),
        (TIMEOUT, "5 fortnights", "'5 fortnights' has an unknown unit 'fortnights'"),
        (TIMEOUT, -1, "'-1' is out of range"),
        (MAX_CONNECTIONS, 0, "'0' is out of range"),
        (MAX_CONNECTIONS, "10MB", "'10MB' has a unit, but this parameter takes none"),
        (COST, -1, "'-1' is out of range"),
        (COST, "cheap", "'cheap' is not a number"),
        (DELAY, "1s", "'1s' is out of range"),
        (WAL_LEVEL, "bogus", "'bogus' is not one of its values"),
        (JIT, "maybe", "'maybe' is not a boolean"),
        (JIT, 2, "'2' is not a boolean"),
        (UNKNOWN_UNIT, "banana", "'banana' is not an integer"),
        (UNKNOWN_UNIT, "8", "'8' is out of range"),
        (UNKNOWN_UNIT, "1 parsec", "'1 parsec' has an unknown unit 'parsec'"),
    ],
)  # fmt: skip
def test_values_postgresql_refuses_are_named(setting: Setting, value: object, problem: str) -> None:
    assert value_problem(setting, value) == problem  # type: ignore[arg-type]


def test_the_accepted_form_names_type_range_units_and_values() -> None:
    assert accepted_form(SHARED_BUFFERS) == (
        "an integer from 16 to 1073741823 (in units of 8kB), "
        "optionally with a unit: B, kB, MB, GB or TB"
    )
    assert accepted_form(TIMEOUT).endswith("optionally with a unit: us, ms, s, min, h or d")
    assert accepted_form(MAX_CONNECTIONS) == "an integer from 1 to 262143, without a unit"
    assert accepted_form(WAL_LEVEL) == "one of minimal, replica, logical"
    assert accepted_form(JIT) == "a boolean: on, off, true, false, yes, no, 1 or 0"
    assert "in its base unit" in accepted_form(UNKNOWN_UNIT)
    assert "such as 64MB or 5s" in accepted_form(UNKNOWN_UNIT)


def test_describe_config_output_becomes_a_catalogue() -> None:
    catalogue = parse_describe_config(DESCRIBED)
    assert sorted(catalogue) == [
        "jit",
        "random_page_cost",
        "search_path",
        "shared_buffers",
        "wal_level",
    ]
    assert catalogue["shared_buffers"] == Setting(
        "shared_buffers", "integer", None, False, 16, 1073741823, (), "postmaster"
    )
    assert catalogue["jit"].vartype == "bool"
    assert catalogue["jit"].minimum is None


def test_the_catalogue_refuses_unknown_names_but_not_extension_placeholders() -> None:
    catalogue = parse_describe_config(DESCRIBED)
    problems = catalogue_problems(
        catalogue,
        {"shared_bufers": "1GB", "pg_stat_statements.max": 5000, "jit": "maybe", "wal_level": "x"},
        "15",
    )
    assert [problem.render() for problem in problems] == [
        "pg_parameters.jit: 'maybe' is not a boolean; give a boolean: on, off, true, false, "
        "yes, no, 1 or 0",
        "pg_parameters.shared_bufers: is not a parameter of PostgreSQL 15; correct its "
        "spelling, or remove it",
    ]


POSTGRES_LOG = """\
2026-12-02 20:07:59.833 GMT [1164] LOG:  skipping missing configuration file "/tmp/x/postgresql.auto.conf"
2026-12-02 20:07:59.833 GMT [1164] LOG:  invalid value for parameter "wal_level": "bogus"
2026-12-02 20:07:59.833 GMT [1164] HINT:  Available values: minimal, replica, logical.
2026-12-02 20:07:59.833 GMT [1164] LOG:  999999999 is outside the valid range for parameter "max_connections" (1 .. 262143)
2026-12-02 20:07:59.833 GMT [1164] LOG:  syntax error in file "/tmp/x/postgresql.conf" line 3, near token "x"
2026-12-02 20:07:59.833 GMT [1164] FATAL:  configuration file "/tmp/x/postgresql.conf" contains errors
"""  # noqa: E501


def test_postgresql_log_lines_become_messages_per_parameter() -> None:
    assert parse_check_output(POSTGRES_LOG) == {
        "wal_level": 'invalid value for parameter "wal_level": "bogus" '
        "(Available values: minimal, replica, logical.)",
        "max_connections": '999999999 is outside the valid range for parameter "max_connections"'
        " (1 .. 262143)",
        UNATTRIBUTED: 'syntax error in file "/tmp/x/postgresql.conf" line 3, near token "x"',
    }


def test_the_scratch_file_quotes_values_as_the_keeper_does() -> None:
    text = scratch_file_text({"work_mem": "64MB", "jit": False, "max_connections": 200})
    assert text == "jit = off\nmax_connections = 200\nwork_mem = '64MB'\n"


def test_postgresql_judges_only_what_the_rules_let_through() -> None:
    asked: list[dict[str, object]] = []

    def verdict(program: str, parameters: object) -> dict[str, str]:
        asked.append(dict(parameters))  # type: ignore[call-overload]
        return {"wal_level": 'invalid value for parameter "wal_level": "bogus"'}

    problems = check_with_program(
        "/pg/postgres", "15", {"jit": "maybe", "wal_level": "bogus"},
        describe=lambda _: parse_describe_config(DESCRIBED), verdict=verdict,
    )  # fmt: skip
    assert asked == [{"wal_level": "bogus"}]
    assert [problem.path for problem in problems] == [
        "pg_parameters.jit",
        "pg_parameters.wal_level",
    ]
    assert problems[1].problem.startswith("PostgreSQL 15 refuses it: invalid value")


def test_only_new_or_changed_values_are_checked() -> None:
    before = ClusterSpec(pg_parameters={"work_mem": "banana", "jit": True, "max_connections": 100})
    after = ClusterSpec(pg_parameters={"work_mem": "banana", "jit": 1, "max_connections": 200})
    assert changed_parameters(before, after) == {"jit": 1, "max_connections": 200}
    assert changed_parameters(None, after) == dict(after.pg_parameters)


def test_the_cluster_versions_come_from_the_keepers() -> None:
    keepers = [
        KeeperInfo(
            name=name,
            host="h",
            port=5432,
            observed_at=0,
            running=True,
            healthy=True,
            postgres_version=version,
        )
        for name, version in (("a", 150018), ("b", 170002), ("c", None), ("d", 150020))
    ]
    assert cluster_majors(keepers) == [15, 17]
