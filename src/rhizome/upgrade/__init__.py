"""Major version upgrades (issue P4, docs/design/major-upgrade.md).

Pre-checks (`rhizomectl upgrade-check --to 17`):
- facts.py: what the pre-checks look at (plain data);
- prechecks.py: the problems in those facts, each naming the object and the fix (pure);
- catalog.py: gathering the facts from the master's catalogs, the target's
  extension directory, the disk and the store (adapters).

The data plane of the blue/green method (`rhizomectl upgrade prepare|status|finish`):
- replication.py: the facts of both masters and the missing steps (pure);
- roles.py: the missing roles' statements out of pg_dumpall, and redaction (pure);
- replication_catalog.py: reading those facts (adapter);
- setup.py: running the steps (SQL, pg_dump | psql) and waiting for the copy (adapter);
- status.py: where each database stands (pure); finish.py: the clean-up after the cutover;
- sequences.py: what the keeper runs on its sealed master (sequence values, confirmed LSN).

The in-place method (`pg_upgrade --link`) is not built yet.
"""
