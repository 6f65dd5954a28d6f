"""Major version upgrades (issue P4). So far: the pre-checks of the blue/green method.

- facts.py: what the pre-checks look at (plain data);
- prechecks.py: the problems in those facts, each naming the object and the fix (pure);
- catalog.py: gathering the facts from the master's catalogs, the target's
  extension directory, the disk and the store (adapters).

`rhizomectl upgrade-check --to 17` runs them. Building the new-version
cluster, the cutover through the proxies and the pg_upgrade --link method
are not built yet.
"""
