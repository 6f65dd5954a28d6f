"""An S3-compatible server on loopback for the backup tests: moto's server behind HAProxy.

moto (`moto_server`, a dev dependency) keeps buckets in memory and speaks
plain HTTP; pgBackRest speaks S3 only over TLS and fails on moto's own TLS
(it closes connections without a TLS close_notify), so HAProxy terminates
TLS in front of it with a certificate for `localhost` from a throw-away CA
(pgBackRest matches the endpoint against DNS names only, not IP addresses).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.harness.ports import free_ports
from tests.harness.tls import create_tls_files

BUCKET = "rhizome-backups"
REGION = "us-east-1"
KEY, KEY_SECRET = "rhizome-test-key", "rhizome-test-secret"  # moto checks neither
HAPROXY_CONFIG = """global
  log stderr format raw local0 warning
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
frontend s3
  bind 127.0.0.1:{tls_port} ssl crt {pem}
  default_backend moto
backend moto
  server moto 127.0.0.1:{http_port}
"""


class S3Server:
    """moto on `http_port`, HAProxy with TLS on `port`, one bucket created."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="rhizome-s3-", dir="/tmp"))
        self.tls = create_tls_files(self.directory / "tls")
        self.port, self.http_port = free_ports(2)
        pem = self.directory / "server.pem"
        pem.write_text(self.tls.server_cert_file.read_text() + self.tls.server_key_file.read_text())
        config = self.directory / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(tls_port=self.port, pem=pem,
                                                http_port=self.http_port))  # fmt: skip
        moto = Path(sys.executable).with_name("moto_server")
        self.processes = [
            self._start([str(moto), "-H", "127.0.0.1", "-p", str(self.http_port)], "moto"),
            self._start(["haproxy", "-db", "-f", str(config)], "haproxy"),
        ]
        self._create_bucket()

    def _start(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def _create_bucket(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.http_port}/{BUCKET}"
        request = urllib.request.Request(url, method="PUT")
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5):  # noqa: S310 (http, built here)
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start: {self.log_text()}") from None
                time.sleep(0.2)

    def repository_options(self, ca_file: Path) -> list[str]:
        """pgBackRest's repo1 options for this server (ca_file: a copy of the CA's
        certificate that the postgres user can read)."""
        return [
            "repo1-type=s3", f"repo1-s3-bucket={BUCKET}", "repo1-s3-endpoint=localhost",
            f"repo1-storage-port={self.port}", f"repo1-s3-region={REGION}",
            "repo1-s3-uri-style=path", f"repo1-storage-ca-file={ca_file}",
            f"repo1-s3-key={KEY}", f"repo1-s3-key-secret={KEY_SECRET}", "repo1-path=/repository",
        ]  # fmt: skip

    def log_text(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.directory.glob("*.log"))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
