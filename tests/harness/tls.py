"""A throw-away certificate authority with server and client certificates (openssl CLI)."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

VALID_DAYS = "2"
SERVER_NAMES = "IP:127.0.0.1,DNS:localhost"
DEFAULT_CLIENT_NAME = "rhizome-test-client"


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files; keys are unencrypted and readable by root only."""

    ca_file: Path
    ca_key_file: Path
    server_cert_file: Path
    server_key_file: Path
    client_cert_file: Path
    client_key_file: Path


def _openssl(*arguments: str | Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, arguments)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {arguments[0]} failed: {result.stderr.strip()}")


def _new_key_and_request(key_file: Path, request_file: Path, common_name: str) -> None:
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", key_file, "-out", request_file, "-subj", f"/CN={common_name}",
    )  # fmt: skip


def _create_ca(directory: Path) -> tuple[Path, Path]:
    ca_file, ca_key_file = directory / "ca.crt", directory / "ca.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", VALID_DAYS, "-keyout", ca_key_file, "-out", ca_file,
        "-subj", "/CN=rhizome test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return ca_file, ca_key_file


def _sign(directory: Path, name: str, common_name: str, extensions: str) -> tuple[Path, Path]:
    """Create name.key and name.crt signed by the CA in directory."""
    key_file, request_file = directory / f"{name}.key", directory / f"{name}.csr"
    cert_file, extensions_file = directory / f"{name}.crt", directory / f"{name}.ext"
    _new_key_and_request(key_file, request_file, common_name)
    extensions_file.write_text(extensions)
    _openssl(
        "x509", "-req", "-in", request_file, "-CA", directory / "ca.crt",
        "-CAkey", directory / "ca.key", "-set_serial", str(secrets.randbits(63)),
        "-days", VALID_DAYS, "-extfile", extensions_file, "-out", cert_file,
    )  # fmt: skip
    request_file.unlink()
    extensions_file.unlink()
    return cert_file, key_file


def _server_extensions(server_names: str) -> str:
    return (
        f"subjectAltName={server_names}\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
    )


def renew_server_certificate(
    files: TlsFiles, name: str = "server-renewed", server_names: str = SERVER_NAMES
) -> tuple[Path, Path]:
    """A new key and server certificate from the same CA for the same names, as a
    renewal makes them: (certificate, key), beside the CA."""
    return _sign(files.ca_file.parent, name, "localhost", _server_extensions(server_names))


def create_tls_files(
    directory: Path, client_name: str = DEFAULT_CLIENT_NAME, server_names: str = SERVER_NAMES
) -> TlsFiles:
    """A CA, a server certificate for `server_names` (default 127.0.0.1/localhost) and a
    client certificate.

    The client certificate's common name is client_name: etcd with client-cert-auth
    and auth enabled takes it as the user name when no password is given.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, ca_key_file = _create_ca(directory)
    extensions = _server_extensions(server_names)
    server_cert, server_key = _sign(directory, "server", "localhost", extensions)
    client_cert, client_key = _sign(
        directory,
        "client",
        client_name,
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )
    return TlsFiles(ca_file, ca_key_file, server_cert, server_key, client_cert, client_key)
