"""The pre-checks of a major upgrade (pure): every problem names its object and the fix.

The blue/green method copies the databases to the new version by logical
replication, which carries neither large objects nor unlogged tables, and
can apply UPDATE and DELETE only on tables with a replica identity. The
in-place method (`pg_upgrade --link`) carries everything but needs the same
extensions on the new version and stops the cluster meanwhile. Both need a
healthy, unpaused cluster with no operation under way.
"""

from __future__ import annotations

from dataclasses import dataclass

from rhizome.upgrade.facts import ClusterHealth, DatabaseFacts, UpgradeFacts

DISK_FACTOR = {"logical": 1.2, "link": 0.1}
"""Free space needed as a share of the databases' size: a logical copy writes every
row and index again (plus 20 % for WAL and bloat); pg_upgrade --link hard-links the
files and writes the catalogs anew."""
SHOWN = 10
"""Objects named in one problem; more are counted."""
GIB = 1024**3


@dataclass(frozen=True)
class Problem:
    subject: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem}. Fix: {self.fix}"


def problems(facts: UpgradeFacts) -> list[Problem]:
    """Everything that stands in the way of the upgrade; empty: it may start."""
    if facts.target_version <= facts.source_version:
        return [Problem(
            f"PostgreSQL {facts.target_version}",
            f"the target is not newer than the master's version {facts.source_version}",
            "name a newer major version with --to",
        )]  # fmt: skip
    found = health_problems(facts.health)
    for database in facts.databases:
        if facts.method == "logical":
            found += replication_problems(database)
        found += extension_problems(database, facts.target_version, facts.target_extensions)
    return found + disk_problems(facts)


def health_problems(health: ClusterHealth) -> list[Problem]:
    found = []
    if health.paused:
        found.append(Problem("the cluster", "it is paused", "resume it: rhizomectl resume"))
    if health.operation is not None:
        found.append(Problem(
            "the cluster", f"a {health.operation} is under way",
            "wait until rhizomectl status shows no operation",
        ))  # fmt: skip
    if health.master is None:
        found.append(Problem("the cluster", "it has no master", "see docs/runbooks/"))
    if health.unhealthy_keepers:
        found.append(Problem(
            f"keepers {named(health.unhealthy_keepers)}", "missing or unhealthy",
            "bring them back (rhizomectl status) or remove them from the cluster first",
        ))  # fmt: skip
    return found


def replication_problems(database: DatabaseFacts) -> list[Problem]:
    where = f"in database {database.name}"
    link = "or upgrade in place instead (--method link)"
    found = []
    if database.tables_without_identity:
        found.append(Problem(
            f"tables {named(database.tables_without_identity)} {where}",
            "no primary key and no replica identity: logical replication cannot copy their"
            " UPDATEs and DELETEs",
            f"ALTER TABLE ... ADD PRIMARY KEY (...), or REPLICA IDENTITY FULL (slower); {link}",
        ))  # fmt: skip
    if database.unlogged_tables:
        found.append(Problem(
            f"unlogged tables {named(database.unlogged_tables)} {where}",
            "logical replication does not copy unlogged tables",
            f"ALTER TABLE ... SET LOGGED; {link}",
        ))  # fmt: skip
    if database.large_objects:
        found.append(Problem(
            f"{database.large_objects} large objects {where}",
            "logical replication does not copy large objects",
            f"move them into bytea columns; {link}",
        ))  # fmt: skip
    return found


def extension_problems(
    database: DatabaseFacts, target: int, available: frozenset[str] | None
) -> list[Problem]:
    if not database.extensions:
        return []
    if available is None:
        return [Problem(
            f"PostgreSQL {target}", "it is not installed on this host, so its extensions"
            " cannot be checked", f"install postgresql-{target} on every node first",
        )]  # fmt: skip
    missing = [name for name, _ in database.extensions if name not in available]
    if not missing:
        return []
    return [Problem(
        f"extensions {named(missing)} in database {database.name}",
        f"not available for PostgreSQL {target}",
        f"install their packages for {target} (e.g. postgresql-{target}-{missing[0]}),"
        " or drop the extensions no longer used",
    )]  # fmt: skip


def disk_problems(facts: UpgradeFacts) -> list[Problem]:
    total = sum(database.size_bytes for database in facts.databases)
    needed = int(total * DISK_FACTOR[facts.method])
    if facts.free_bytes is None or facts.free_bytes >= needed:
        return []
    return [Problem(
        "the new data directory's file system",
        f"{facts.free_bytes / GIB:.1f} GiB free, {facts.method} upgrade of"
        f" {total / GIB:.1f} GiB needs {needed / GIB:.1f} GiB",
        "free or add space on every node first",
    )]  # fmt: skip


def named(objects: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(objects[:SHOWN])
    more = len(objects) - SHOWN
    return f"{shown} and {more} more" if more > 0 else shown
