"""The spec's `backup` section: WAL archiving and backups with pgBackRest.

With `enabled` on, every keeper that has a pgBackRest configuration
(`[keeper] pgbackrest_config`) renders `archive_mode` and `archive_command`
itself (rhizome.backup.archiving): the operator cannot set them through
pg_parameters, because an archive_command of the operator's would bypass the
keeper's catch-up of the old timeline after a failover and leave a gap in the
archive. With `enabled` off, archiving is the operator's business and those
parameters may be set in pg_parameters (e.g. another archiver).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Strict, StrictBool

from rhizome.store.codec import StoreModel
from rhizome.store.validation import field_error

STANZA_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
ARCHIVING_PARAMETERS = ("archive_mode", "archive_command", "archive_library", "restore_command")
"""pg_parameters the keeper owns while backups are enabled (archive_library: on
PostgreSQL 15 it would silently take precedence over the keeper's archive_command)."""


def check_stanza(stanza: str) -> str:
    """A pgBackRest stanza name: it ends up on archive_command's command line."""
    if not STANZA_PATTERN.fullmatch(stanza):
        field_error(
            f"{stanza!r} is not a usable stanza name",
            "use 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit"
            " (or leave it null for the cluster's name)",
        )
    return stanza


Stanza = Annotated[str, Strict(), AfterValidator(check_stanza)]


class BackupSettings(StoreModel):
    """WAL archiving and backups with pgBackRest (docs/design/backup.md)."""

    enabled: StrictBool = False
    """Keepers archive WAL with pgBackRest (archive_mode and archive_command become
    theirs) and `rhizomectl backup run` may take backups. Turning it on for a
    running cluster needs a restart of each PostgreSQL (archive_mode): standbys
    first, then a switchover; `rhizomectl status` lists the pending restart."""
    stanza: Stanza | None = None
    """The pgBackRest stanza of this cluster; null means the cluster's name."""

    def stanza_for(self, cluster: str) -> str:
        """The stanza in use for `cluster`."""
        return self.stanza if self.stanza is not None else cluster
