"""Passwords: SCRAM-SHA-256 verifiers and the libpq password file.

The keeper never sends a plain password to PostgreSQL: it computes the
SCRAM verifier itself (as libpq's PQencryptPasswordConn does) and passes it
as a query parameter, so no server log can show the password. Tools that
connect to another PostgreSQL (pg_basebackup, pg_rewind, the WAL receiver)
read passwords from a 0600 passfile, never from their command line.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SCRAM_ITERATIONS = 4096
SALT_BYTES = 16


def scram_verifier(
    password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
) -> str:
    """The rolpassword value PostgreSQL stores for `password` with scram-sha-256."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return f"SCRAM-SHA-256${iterations}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


@functools.lru_cache(maxsize=8)
def verifier_matches(verifier: str | None, password: str) -> bool:
    """Whether a stored verifier was computed from `password` (False for md5 or none).

    Remembered: a primary checks its two roles on every observation, and each
    check costs a PBKDF2 of SCRAM_ITERATIONS rounds.
    """
    if not verifier or not verifier.startswith("SCRAM-SHA-256$"):
        return False
    try:
        parameters, _keys = verifier.removeprefix("SCRAM-SHA-256$").split("$", 1)
        iterations, salt = parameters.split(":", 1)
        expected = scram_verifier(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected, verifier)


def passfile_line(user: str, password: str, port: int | None = None) -> str:
    """One ~/.pgpass line matching every host and database (and `port`, or any) for `user`."""
    return f"*:{port or '*'}:*:{_escape(user)}:{_escape(password)}\n"


def write_private_file(path: Path, content: str) -> None:
    """Write `content` to a file of mode 0600, replacing it atomically."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, content.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
