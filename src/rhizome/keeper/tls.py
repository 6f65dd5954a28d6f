"""PostgreSQL's TLS: the keeper's `tls_*` settings, and what they change.

::

    [keeper]
    tls_cert_file = "/etc/rhizome/keeper/server.crt"  # this node's certificate (its names
                                                       # cover the keeper's host)
    tls_key_file = "/etc/rhizome/keeper/server.key"   # its key: 0600 and owned by the
                                                       # keeper's user, or 0640 and root's
    tls_ca_file = "/etc/rhizome/keeper/ca.crt"        # the CA that signed every keeper's

All three or none. With them PostgreSQL runs with `ssl = on`; the keeper's
pg_hba.conf entries for replication and pg_rewind are `hostssl` (a peer
without TLS is refused), and every connection a keeper opens to another
keeper (streaming replication, pg_basebackup, pg_rewind, its superuser
sessions) uses `sslmode=verify-full` against that CA: the peer's certificate
must name the host the peer publishes. The spec's pg_hba entries are the
operator's (use `hostssl` there for clients). Without them the keeper runs
PostgreSQL without TLS, as before.

Renewed files need no restart: postgresql.conf carries a digest of the three
files' contents (`files_digest`), so new files at the same paths change the
configuration, and the keeper reloads PostgreSQL, which loads them for new
connections (a set it cannot load is logged by PostgreSQL, "SSL configuration
was not reloaded", and the old one kept). A key others can read is reported
in the keeper's last_error (`key_problem`): PostgreSQL would refuse to start
with it.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rhizome.config import ConfigError

TLS_KEYS = ("tls_cert_file", "tls_key_file", "tls_ca_file")


@dataclass(frozen=True)
class PostgresTls:
    """This node's certificate and key, and the CA every keeper's certificate comes from."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    @property
    def files(self) -> tuple[Path, Path, Path]:
        return (self.cert_file, self.key_file, self.ca_file)


def tls_requested(section: dict[str, Any], source: str) -> bool:
    """Whether the `[keeper]` section sets the TLS files: all of them, or none."""
    given = [key for key in TLS_KEYS if key in section]
    if given and len(given) != len(TLS_KEYS):
        missing = ", ".join(key for key in TLS_KEYS if key not in section)
        raise ConfigError(
            f"{source}: [keeper] {', '.join(given)} needs {missing} too: set all of"
            f" {', '.join(TLS_KEYS)} for TLS, or none"
        )
    return bool(given)


def postgres_tls(cert_file: Path, key_file: Path, ca_file: Path, source: str) -> PostgresTls:
    """The TLS files (the loader checked that each is a readable file), the key's mode
    checked as PostgreSQL will."""
    _check_key_mode(key_file, source)
    return PostgresTls(cert_file, key_file, ca_file)


def _check_key_mode(path: Path, source: str) -> None:
    """PostgreSQL refuses to start with a key others can read: say so before it does."""
    problem = _key_mode_problem(path)
    if problem:
        raise ConfigError(f"{source}: [keeper] {problem}")


def _key_mode_problem(path: Path) -> str | None:
    status = path.stat()
    mode = stat.S_IMODE(status.st_mode)
    allowed = 0o640 if status.st_uid == 0 else 0o600
    if not mode & ~allowed:
        return None
    return (
        f"tls_key_file {path} has mode {mode:04o}; PostgreSQL needs 0600"
        " (owned by its user) or 0640 (owned by root): chmod it"
    )


def key_problem(tls: PostgresTls | None) -> str | None:
    """Why PostgreSQL could not start with the key file as it is now, or None."""
    if tls is None:
        return None
    try:
        return _key_mode_problem(tls.key_file)
    except OSError as error:
        return f"tls_key_file {tls.key_file}: {error.strerror}"


def files_digest(tls: PostgresTls | None) -> str | None:
    """A digest of the certificate's, the key's and the CA's contents (None without TLS).

    A short SHA-256 of the contents: it tells one set of files from the next and
    reveals nothing of the key. A file that cannot be read counts as its error.
    """
    if tls is None:
        return None
    digest = hashlib.sha256()
    for path in tls.files:
        try:
            digest.update(path.read_bytes())
        except OSError as error:
            digest.update(f"unreadable ({error.errno})".encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def server_parameters(tls: PostgresTls | None) -> dict[str, str | bool]:
    """postgresql.conf's TLS parameters (none without TLS: PostgreSQL's defaults, off)."""
    if tls is None:
        return {}
    return {
        "ssl": True,
        "ssl_cert_file": str(tls.cert_file),
        "ssl_key_file": str(tls.key_file),
        "ssl_ca_file": str(tls.ca_file),
    }


def peer_connection_type(tls: PostgresTls | None) -> str:
    """The pg_hba.conf type of the entries for the other keepers' connections."""
    return "host" if tls is None else "hostssl"


def peer_client_fields(tls: PostgresTls | None) -> dict[str, str]:
    """libpq fields of a connection to another keeper (none without TLS)."""
    if tls is None:
        return {}
    return {"sslmode": "verify-full", "sslrootcert": str(tls.ca_file)}
