"""Backups and WAL archiving with pgBackRest (docs/design/backup.md).

`archiving` and `catch_up` are pure decisions (what the keeper renders, which
WAL files it pushes after a promotion), `records` builds the store's backup
record, and `pgbackrest` is the one adapter that runs the program.
"""
