"""The agents' API secured for other hosts (TLS and a token), shared by every node.

Failsafe (rhizome.failsafe) needs every keeper and proxy API reachable from the
other nodes: bound to the node's address, which requires TLS and
authentication. One CA, one server certificate naming every node's address,
one token; the files belong to the postgres user (the keeper runs as it)
with mode 0600, in a directory of their own under /tmp (pytest's directories
are root's alone).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.harness.keeper import _chown
from tests.harness.tls import create_tls_files

KEEPER_API_PORT = 9643
PROXY_API_PORT = 9642


@dataclass(frozen=True)
class ApiSecurity:
    cert_file: Path
    key_file: Path
    ca_file: Path
    token_file: Path

    @classmethod
    def create(cls, addresses: Sequence[str]) -> ApiSecurity:
        """The files, in a new directory (remove it with `remove`)."""
        directory = Path(tempfile.mkdtemp(prefix="rhizome-api-tls-", dir="/tmp"))
        names = ",".join(f"IP:{address}" for address in addresses)
        files = create_tls_files(directory, server_names=names)
        token_file = directory / "api.token"
        token_file.write_text(secrets.token_urlsafe(24) + "\n")
        security = cls(files.server_cert_file, files.server_key_file, files.ca_file, token_file)
        for path in (directory, security.cert_file, security.key_file, token_file):
            _chown(path)
        for path in (security.key_file, token_file):
            path.chmod(0o600)
        return security

    def remove(self) -> None:
        shutil.rmtree(self.token_file.parent, ignore_errors=True)

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    def section(self, address: str, port: int) -> str:
        """The `[api]` section of an agent listening on address:port."""
        return (
            f'[api]\nlisten = "{address}:{port}"\ncert_file = "{self.cert_file}"\n'
            f'key_file = "{self.key_file}"\nca_file = "{self.ca_file}"\n'
            f'token_file = "{self.token_file}"\n'
        )
