"""The roles green lacks, from blue's `pg_dumpall --roles-only` (pure).

Only the statements about missing roles are kept: replaying the whole dump
would fail on the roles green already has and overwrite their passwords.
The dump holds password hashes, so nothing of it may reach a log or the
terminal: `SESSION_SETTINGS` keeps the statements out of green's server log
and `redact` cleans any error text before it is shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

SESSION_SETTINGS = (
    "SET log_statement = 'none';\n"
    "SET log_min_duration_statement = -1;\n"
    "SET log_min_error_statement = panic;\n"
)
"""Prepended to the statements sent to green: a failing or logged statement would
otherwise be written to its server log with the password hash in it."""

ROLE_STATEMENT = re.compile(r'(?:CREATE|ALTER|COMMENT ON) ROLE ("(?:[^"]|"")+"|[^\s;"]+)')
GRANT_STATEMENT = re.compile(r'GRANT ("(?:[^"]|"")+"|[^\s;"]+) TO ("(?:[^"]|"")+"|[^\s;"]+)')
PASSWORD = re.compile(r"(PASSWORD\s+)'(?:[^']|'')*'", re.IGNORECASE)
HASH = re.compile(r"(SCRAM-SHA-256\$|md5)[0-9A-Za-z+/=:$]+")


def unquote(name: str) -> str:
    if name.startswith('"'):
        return name[1:-1].replace('""', '"')
    return name


def statements(dump: str) -> Iterator[str]:
    """The SQL statements of a pg_dumpall script, comments and blank lines left out."""
    pending: list[str] = []
    for line in dump.splitlines():
        if not pending and (not line.strip() or line.startswith("--")):
            continue
        pending.append(line)
        if line.rstrip().endswith(";"):
            yield "\n".join(pending)
            pending = []


def role_statements(dump: str, missing: Iterable[str]) -> list[str]:
    """The statements creating the missing roles, their attributes, comments and memberships.

    Per-database role settings (ALTER ROLE ... IN DATABASE) are left out: the
    databases do not exist on green yet."""
    wanted = set(missing)
    kept = []
    for statement in statements(dump):
        role = ROLE_STATEMENT.match(statement)
        if role is not None:
            if unquote(role.group(1)) in wanted and " IN DATABASE " not in statement:
                kept.append(statement)
            continue
        grant = GRANT_STATEMENT.match(statement)
        if grant is not None and {unquote(grant.group(1)), unquote(grant.group(2))} & wanted:
            kept.append(statement)
    return kept


def redact(text: str) -> str:
    """Error text with every password and password hash replaced."""
    return HASH.sub("[hash]", PASSWORD.sub(r"\1'[redacted]'", text))
