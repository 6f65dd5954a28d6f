"""`rhizomectl upgrade-check` on a real PostgreSQL 15 and etcd: the catalogs' facts that
block a logical (blue/green) upgrade are found and named, with their fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rhizome.upgrade.catalog import available_extensions, read_databases

pytestmark = pytest.mark.integration

SCHEMA = [
    "CREATE TABLE keyed (id int PRIMARY KEY, note text)",
    "CREATE TABLE keyless (note text)",
    "CREATE TABLE keyless_full (note text)",
    "ALTER TABLE keyless_full REPLICA IDENTITY FULL",
    "CREATE TABLE keyed_nothing (id int PRIMARY KEY)",
    "ALTER TABLE keyed_nothing REPLICA IDENTITY NOTHING",
    "CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)",
    "SELECT lo_create(0)",
    "CREATE EXTENSION pg_trgm",
]


def test_the_catalogs_show_what_logical_replication_cannot_copy(postgres_factory):
    pg1 = postgres_factory("pg1")
    pg1.execute("CREATE DATABASE app")
    for statement in SCHEMA:
        pg1.execute(statement, dbname="app")
    version, databases = read_databases(pg1.dsn())
    app = next(database for database in databases if database.name == "app")
    assert version == 15 and {database.name for database in databases} == {"app", "postgres"}
    assert app.tables_without_identity == ("public.keyed_nothing", "public.keyless")
    assert app.unlogged_tables == ("public.scratch",) and app.large_objects == 1
    assert [name for name, _ in app.extensions] == ["pg_trgm"] and app.size_bytes > 0
    available = available_extensions(Path("/usr/share/postgresql/15/extension"))
    assert available is not None and "pg_trgm" in available
    assert available_extensions(Path("/nonexistent/extension")) is None


def test_rhizomectl_names_each_problem_and_exits_1(postgres_factory, etcd, tmp_path):
    pg1 = postgres_factory("pg1")
    for statement in SCHEMA[:2]:
        pg1.execute(statement)
    extensions = tmp_path / "extension"  # a target version without pg_trgm
    extensions.mkdir()
    pg1.execute("CREATE EXTENSION pg_trgm")
    command = [sys.executable, "-m", "rhizome.cli.main", "upgrade-check", "--to", "17",
               "--dsn", pg1.dsn(), "--extension-dir", str(extensions),
               "--endpoints", etcd.client_url, "--cluster", "main", "--json"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    subjects = [problem["subject"] for problem in report["problems"]]
    assert report["ready"] is False
    assert "tables public.keyless in database postgres" in subjects
    assert "extensions pg_trgm in database postgres" in subjects
    assert "the cluster" in subjects  # no master: nothing was ever initialised in this store
    refused = subprocess.run([*command[:7], "host=x password=secret", *command[8:]],
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert refused.returncode == 2 and "must not carry a password" in refused.stderr
