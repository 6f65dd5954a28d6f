"""The plan of `rhizomectl upgrade prepare` (pure): which statements, on which side and database.

Blue (the source) and green (the target) are described by plain facts that
replication_catalog.py reads; `plan` compares them with the end state the
design page asks for (docs/design/major-upgrade.md, "Preparation") and
returns the missing steps only, so that a second run finds nothing to do and
an interrupted run is completed. Everything that would stop the preparation
halfway is found first (`problems`), so that a refusal changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal

from rhizome.upgrade.prechecks import Problem, named

SCHEMA = "rhizome_upgrade"
PUBLICATION = "rhizome_upgrade"
SUBSCRIPTION_PREFIX = "rhizome_upgrade_"
NAME_LIMIT = 63
"""PostgreSQL's identifier length (NAMEDATALEN - 1); slot names must also fit."""

SEQUENCE_TABLE_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {SCHEMA}.sequence_values (database name NOT NULL,"
    " schema_name name NOT NULL, sequence_name name NOT NULL, last_value bigint NOT NULL,"
    " recorded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (schema_name, sequence_name))",
)
"""Both sides: the sealed master records its sequences' values here; FOR ALL TABLES
carries the rows to green, whose trigger applies them (logical replication does not
copy sequences)."""

APPLY_TRIGGER_DDL = (
    f"CREATE OR REPLACE FUNCTION {SCHEMA}.apply_sequence_value() RETURNS trigger"
    " LANGUAGE plpgsql SET search_path = pg_catalog AS $body$ BEGIN"
    " PERFORM pg_catalog.setval(pg_catalog.format('%I.%I', NEW.schema_name,"
    " NEW.sequence_name)::pg_catalog.regclass, NEW.last_value, true); RETURN NEW; END $body$",
    f"CREATE TRIGGER apply_sequence_value BEFORE INSERT OR UPDATE ON {SCHEMA}.sequence_values"
    f" FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.apply_sequence_value()",
    f"ALTER TABLE {SCHEMA}.sequence_values ENABLE ALWAYS TRIGGER apply_sequence_value",
)
"""Green only. ENABLE ALWAYS: the apply worker runs with session_replication_role =
replica, where ordinary triggers stay silent. A sequence missing on green fails the
apply (and so the cutover, which then rolls back) rather than leaving it behind."""

Side = Literal["source", "target"]
Action = Literal["sql", "schema", "roles"]


@dataclass(frozen=True)
class SourceDatabase:
    name: str
    owner: str
    encoding: str
    collate: str
    ctype: str
    has_sequence_table: bool = False
    has_publication: bool = False
    publication_all_tables: bool = True


@dataclass(frozen=True)
class TargetDatabase:
    name: str
    has_sequence_table: bool = False
    """The marker of an earlier prepare: created with the schema, in one transaction."""
    user_tables: tuple[str, ...] = ()
    """Tables outside the catalogs and rhizome_upgrade."""
    subscription_enabled: bool | None = None
    """None: no subscription rhizome_upgrade_<database> in this database."""
    worker_running: bool = False
    """The subscription's apply worker runs (pg_stat_subscription)."""
    tables_not_ready: tuple[str, ...] = ()
    """Tables of the subscription not yet in state r (ready)."""
    sequence_rows: int = 0
    """Rows in rhizome_upgrade.sequence_values: what the sealed source recorded."""
    copied_rows: bool = False
    """Some user table has rows (read only when a marked database lacks its subscription:
    a new initial copy would then collide with them)."""


@dataclass(frozen=True)
class Slot:
    name: str
    active: bool
    confirmed_lsn: int | None = None
    lag_bytes: int | None = None


@dataclass(frozen=True)
class ReplicationFacts:
    source_version: int
    target_version: int
    wal_level: str
    source_in_recovery: bool
    target_in_recovery: bool
    free_slots: int
    """max_replication_slots minus the slots the source has."""
    source_databases: tuple[SourceDatabase, ...]
    target_databases: dict[str, TargetDatabase]
    slots: dict[str, Slot] = field(default_factory=dict)
    """The source's rhizome_upgrade_% logical slots by name."""
    missing_roles: tuple[str, ...] = ()
    """Roles of the source (not pg_*) that the target lacks."""
    source_address: tuple[str, int, str] = ("localhost", 5432, "postgres")
    """Host, port and user green's subscriptions connect to (those of --source-dsn)."""


@dataclass(frozen=True)
class Step:
    side: Side
    database: str | None
    """Where it runs; None: the maintenance database of that side's DSN."""
    action: Action
    description: str
    statements: tuple[str, ...] = ()
    """For "sql", run one by one in autocommit; for "schema", green's DDL after the dump."""
    roles: tuple[str, ...] = ()


def subscription_name(database: str) -> str:
    """rhizome_upgrade_<database>, also the slot's name: slot names allow only [a-z0-9_]
    and 63 characters, so other names get a readable stem plus a hash of the real one."""
    name = SUBSCRIPTION_PREFIX + database
    if re.fullmatch(r"[a-z0-9_]+", database) and len(name) <= NAME_LIMIT:
        return name
    digest = hashlib.sha256(database.encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9_]", "_", database.lower())
    return f"{SUBSCRIPTION_PREFIX}{stem}"[: NAME_LIMIT - 9] + "_" + digest


def identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connection_string(host: str, port: int, user: str, database: str) -> str:
    """libpq key=value text without a password: green's server reads its own password file."""
    values = {"host": host, "port": str(port), "user": user, "dbname": database}
    return " ".join(f"{key}={conninfo_value(value)}" for key, value in values.items())


def conninfo_value(value: str) -> str:
    """libpq quotes with backslashes, not by doubling as SQL does."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def problems(facts: ReplicationFacts) -> list[Problem]:
    """What stops the preparation, found before anything is changed."""
    found = []
    if facts.wal_level != "logical":
        found.append(Problem(
            "the source", f"wal_level is {facts.wal_level}: logical replication needs logical",
            "set wal_level = logical (rhizomectl spec patch pg_parameters.wal_level=logical)"
            " and restart the source's PostgreSQL: the parameter takes effect only at a restart",
        ))  # fmt: skip
    if facts.target_version < facts.source_version:
        found.append(Problem(
            "the target", f"PostgreSQL {facts.target_version} is older than the source's"
            f" {facts.source_version}", "point --target-dsn at the new version's master",
        ))  # fmt: skip
    for side, in_recovery in (("source", facts.source_in_recovery),
                              ("target", facts.target_in_recovery)):  # fmt: skip
        if in_recovery:
            found.append(Problem(
                f"the {side}", "it is a standby (in recovery)",
                f"point --{side}-dsn at its cluster's master",
            ))  # fmt: skip
    found += database_problems(facts)
    names = [subscription_name(database.name) for database in facts.source_databases]
    new_slots = sum(1 for name in names if name not in facts.slots)
    needed = new_slots + 1 if new_slots else 0  # the initial copy syncs tables through a slot too
    if needed > facts.free_slots:
        found.append(Problem(
            "the source", f"{needed} replication slots needed, {facts.free_slots} free",
            "raise max_replication_slots (a restart) or drop unused slots",
        ))  # fmt: skip
    return found


def database_problems(facts: ReplicationFacts) -> list[Problem]:
    found = []
    for database in facts.source_databases:
        target = facts.target_databases.get(database.name)
        if target is not None and not target.has_sequence_table and target.user_tables:
            found.append(Problem(
                f"database {database.name} on the target",
                f"it has tables that no earlier prepare made ({named(target.user_tables)})",
                "drop that database on the target (it is not empty: check first) or name another"
                " target",
            ))  # fmt: skip
        elif target is not None and target.subscription_enabled is None and target.copied_rows:
            found.append(Problem(
                f"database {database.name} on the target",
                "its subscription is gone but the rows of an earlier copy are there: a new"
                " initial copy would collide with them",
                "drop that database on the target and prepare again",
            ))  # fmt: skip
        if database.has_publication and not database.publication_all_tables:
            found.append(Problem(
                f"publication {PUBLICATION} in database {database.name} on the source",
                "it is not FOR ALL TABLES", f"DROP PUBLICATION {PUBLICATION} and prepare again",
            ))  # fmt: skip
    return found


def plan(facts: ReplicationFacts) -> list[Step]:
    """The steps still missing, in the order they must run (roles before the schemas that
    name them as owners; the source's table before the publication's subscriber lists it)."""
    steps = []
    if facts.missing_roles:
        steps.append(Step("target", None, "roles",
                          f"create roles {named(facts.missing_roles)} on the target",
                          roles=facts.missing_roles))  # fmt: skip
    for database in facts.source_databases:
        steps += database_steps(database, facts.target_databases.get(database.name), facts)
    return steps


def database_steps(
    database: SourceDatabase, target: TargetDatabase | None, facts: ReplicationFacts
) -> list[Step]:
    name = database.name
    subscription = subscription_name(name)
    steps = []
    if target is None:
        steps.append(Step("target", None, "sql", f"create database {name} on the target",
                          (create_database(database),)))  # fmt: skip
    if not database.has_sequence_table:
        steps.append(Step("source", name, "sql",
                          f"create {SCHEMA}.sequence_values in {name} on the source",
                          SEQUENCE_TABLE_DDL))  # fmt: skip
    if target is None or not target.has_sequence_table:
        steps.append(Step("target", name, "schema",
                          f"copy the schema of {name} to the target, with {SCHEMA}",
                          SEQUENCE_TABLE_DDL + APPLY_TRIGGER_DDL))  # fmt: skip
    if not database.has_publication:
        steps.append(Step("source", name, "sql", f"publish {name} (FOR ALL TABLES)",
                          (f"CREATE PUBLICATION {PUBLICATION} FOR ALL TABLES",)))  # fmt: skip
    enabled = target.subscription_enabled if target is not None else None
    if enabled is None:
        slot = facts.slots.get(subscription)
        if slot is not None and not slot.active:
            drop = f"SELECT pg_drop_replication_slot({literal(subscription)})"
            stale = f"drop slot {subscription} left by an interrupted prepare"
            steps.append(Step("source", name, "sql", stale, (drop,)))
        steps.append(Step("target", name, "sql",
                          f"subscribe {name} (slot {subscription} on the source, initial copy)",
                          (create_subscription(name, *facts.source_address),)))  # fmt: skip
    elif not enabled:
        steps.append(Step("target", name, "sql", f"enable subscription {subscription}",
                          (f"ALTER SUBSCRIPTION {subscription} ENABLE",)))  # fmt: skip
    return steps


def create_subscription(database: str, host: str, port: int, user: str) -> str:
    """The subscription of one database: its slot is created on the source (same name)."""
    subscription = subscription_name(database)
    return (
        f"CREATE SUBSCRIPTION {subscription} CONNECTION"
        f" {literal(connection_string(host, port, user, database))}"
        f" PUBLICATION {PUBLICATION} WITH (copy_data = true, create_slot = true,"
        f" slot_name = {literal(subscription)}, enabled = true)"
    )


def create_database(database: SourceDatabase) -> str:
    """The database with the source's owner, encoding and locale (template0: no local
    additions of green's template1 can collide with the schema copied)."""
    return (
        f"CREATE DATABASE {identifier(database.name)} OWNER {identifier(database.owner)}"
        f" TEMPLATE template0 ENCODING {literal(database.encoding)}"
        f" LC_COLLATE {literal(database.collate)} LC_CTYPE {literal(database.ctype)}"
    )
