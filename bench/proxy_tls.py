"""Throughput with TLS clients: rhizome-proxy against PgBouncer and a direct connection.

One PostgreSQL with `ssl = on`, one etcd, and three targets pgbench reaches
with `sslmode=require`: PostgreSQL itself; rhizome-proxy with
`require_tls = true`, which passes the TLS session through to PostgreSQL
untouched (no decryption in the proxy, so the server's certificate and SCRAM
channel binding reach the client); and PgBouncer (Debian's package, session
pooling), which terminates the client's TLS (`client_tls_*`) and opens its
own TLS connections to PostgreSQL (`server_tls_*`). pgbench runs
select-only and TPC-B with -c 8, interleaved as in bench/proxy.py; the
medians go to the "proxy-tls" section of docs/benchmarks.md.

Run with `make bench` (or `PYTHONPATH=. .venv/bin/python bench/proxy_tls.py`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from bench.proxy import (
    Run,
    Target,
    interleaved_runs,
    load_average,
    routed_postgres,
    setup_text,
    start_rhizome_proxy,
    table,
    wait_until_served,
)
from bench.report import write_section
from tests.harness.ports import LOOPBACK, free_port
from tests.harness.postgres import server_os_user
from tests.harness.processes import ServerProcess
from tests.harness.tls import TlsFiles, create_tls_files

REFERENCE = "pgbouncer"
PGBOUNCER_CONFIG = """[databases]
postgres = host={host} port={server_port} dbname=postgres

[pgbouncer]
listen_addr = {host}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
client_tls_sslmode = require
client_tls_cert_file = {directory}/server.crt
client_tls_key_file = {directory}/server.key
server_tls_sslmode = require
"""
READING_NOTE = (
    "rhizome-proxy does no cryptography: PostgreSQL terminates the TLS session, as it does "
    "for a direct client, and the proxy copies the encrypted bytes as it copies plain ones. "
    "PgBouncer decrypts and re-encrypts every byte in its single thread. The rhizome-proxy "
    "figure includes its store threads. On this shared 2-core machine run-to-run spread is "
    "large: compare rows of one run only."
)


def start_pgbouncer(tls: TlsFiles, server_port: int) -> tuple[ServerProcess, int, Path]:
    """PgBouncer as PostgreSQL's OS user (it refuses to run as root), in a directory that
    user owns; returns the process, its port and that directory (to remove)."""
    user = server_os_user()
    directory = Path(tempfile.mkdtemp(prefix="rhizome-bench-pgbouncer-", dir="/tmp"))
    port = free_port()
    shutil.copyfile(tls.server_cert_file, directory / "server.crt")
    shutil.copyfile(tls.server_key_file, directory / "server.key")
    (directory / "userlist.txt").write_text('"postgres" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        PGBOUNCER_CONFIG.format(
            host=LOOPBACK, port=port, server_port=server_port, directory=directory
        )
    )
    for path in (directory, *directory.iterdir()):
        path.chmod(0o700 if path.is_dir() else 0o600)
        if user is not None:
            shutil.chown(path, user, user)
    process = ServerProcess(["pgbouncer", str(config)], directory / "pgbouncer.log", run_as=user)
    process.start()
    return process, port, directory


def measure(arguments: argparse.Namespace, directory: Path) -> list[Run]:
    tls = create_tls_files(directory / "pki")
    with routed_postgres(directory, arguments.scale, tls) as (etcd_url, postgres):
        rhizome, rhizome_port = start_rhizome_proxy(directory, etcd_url, require_tls=True)
        pgbouncer, pgbouncer_port, pgbouncer_directory = start_pgbouncer(tls, postgres.port)
        try:
            targets = [
                Target("direct", postgres.port, None),
                Target("rhizome-proxy", rhizome_port, rhizome.pid),
                Target(REFERENCE, pgbouncer_port, pgbouncer.pid),
            ]
            for target in targets:
                wait_until_served(target.port)
            return interleaved_runs(targets, arguments)
        finally:
            rhizome.stop()
            pgbouncer.stop()
            shutil.rmtree(pgbouncer_directory, ignore_errors=True)


def render(runs: list[Run], arguments: argparse.Namespace, loads: tuple[str, str]) -> str:
    heading = [
        "## Proxy throughput with TLS clients (rhizome-proxy, PgBouncer, direct)",
        "",
        f"`bench/proxy_tls.py`, {setup_text(arguments)} Every client uses sslmode=require; "
        "PostgreSQL runs with ssl = on. rhizome-proxy with require_tls = true (TLS passed "
        "through); PgBouncer 1.18 (Debian) in session pooling with client_tls_sslmode and "
        "server_tls_sslmode = require, as a process on loopback. CPU: user + system time of "
        f"the proxy process per transaction. Ratios against {REFERENCE}. Load average "
        f"before/after the runs: {loads[0]}/{loads[1]}.",
    ]
    return "\n".join([*heading, *table(runs, REFERENCE), "", READING_NOTE])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per pgbench run")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--no-report", action="store_true", help="print only")
    arguments = parser.parse_args()
    os.environ["PGSSLMODE"] = "require"  # every pgbench run, and the readiness probes
    before = load_average()
    with tempfile.TemporaryDirectory(prefix="rhizome-bench-proxy-tls-") as name:
        runs = measure(arguments, Path(name))
    section = render(runs, arguments, (before, load_average()))
    print(section)
    if not arguments.no_report:
        write_section("proxy-tls", section)


if __name__ == "__main__":
    main()
