"""What an operator does, issued by the campaign: a switchover, a standby's maintenance,
a PostgreSQL restart for a pending parameter; every change through `rhizomectl`.

`OperationDuringFault` runs one of them in a thread shortly after a fault starts
(`start`), ends it when the fault heals (`end`: joins the thread, ends a maintenance)
and checks its effect once the cluster has converged (`verify`: the restarted standby
runs with the new value). Outcomes go to the fault record's notes, findings marked
"FINDING:"; nothing here raises for a finding.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import psycopg2

from chaos.client import connect, query
from chaos.cluster import ChaosCluster
from rhizome.etcd import EtcdError
from rhizome.store.errors import StoreError
from tests.harness.cluster import close_quietly

RHIZOMECTL_TIMEOUT = 60.0
OPERATION_BOUND = 180.0
"""The longest an operation's thread may run (two rhizomectl calls and a keeper stop)."""
KEEPER_STOP_BOUND = 60.0
VERIFY_BOUND = 15.0
RESTART_PARAMETER = "shared_buffers"
RESTART_VALUES = ("128MB", "144MB")
"""shared_buffers needs a restart and, unlike max_connections, no order between nodes."""


def rhizomectl(cluster: ChaosCluster, *arguments: str,
               timeout: float = RHIZOMECTL_TIMEOUT) -> str:  # fmt: skip
    """Run `rhizomectl ARGUMENTS` from the client namespace; "exit N: its last line"."""
    command = [sys.executable, "-m", "rhizome.cli.main", "--endpoints", ",".join(cluster.etcd_urls)]
    command += ["--cluster", "main", *arguments]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    text = (result.stdout + result.stderr).strip().splitlines()
    return f"exit {result.returncode}: {text[-1] if text else ''}"


def switchover(cluster: ChaosCluster, timeout: float = 60.0) -> str:
    """`rhizomectl switchover --wait`; its outcome line."""
    arguments = ("switchover", "--wait", "--timeout", str(int(timeout)))
    return rhizomectl(cluster, *arguments, timeout=timeout + 30)


def chosen_standby(master: str | None, names: list[str], avoid: str) -> str | None:
    """The first standby (in name order) other than `avoid`, else any; None without a master."""
    if master is None:
        return None
    standbys = sorted(name for name in names if name != master)
    preferred = [name for name in standbys if name != avoid]
    return next(iter(preferred or standbys), None)


def next_restart_value(current: Any) -> str:
    """The other of RESTART_VALUES (PostgreSQL's default, 128MB, when none is set)."""
    return RESTART_VALUES[0] if str(current) == RESTART_VALUES[1] else RESTART_VALUES[1]


class OperationDuringFault:
    """One operation during one fault; `avoid` is the fault's node (left alone if possible)."""

    def __init__(self, cluster: ChaosCluster, operation: str, avoid: str,
                 notes: list[str]) -> None:  # fmt: skip
        if operation not in ("switchover", "maintenance", "pending-restart"):
            raise ValueError(f"no executor for operation {operation!r}")
        self.cluster = cluster
        self.operation = operation
        self.avoid = avoid
        self.notes = notes
        self.standby: str | None = None
        self.wanted: str | None = None
        self.thread = threading.Thread(target=self._run, name=f"operation-{operation}")

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        if self.operation == "switchover":
            self.notes.append("switchover during the fault: " + switchover(self.cluster, 30))
            return
        names = [node.name for node in self.cluster.nodes]
        self.standby = chosen_standby(self.cluster.master_name(), names, self.avoid)
        if self.standby is None:
            self.notes.append(f"{self.operation}: no published master, nothing done")
        elif self.operation == "maintenance":
            outcome = rhizomectl(self.cluster, "keeper", "maintenance", self.standby, "on")
            self.notes.append(f"maintenance {self.standby} on: {outcome}")
        else:
            self._pending_restart(self.standby)

    def _pending_restart(self, standby: str) -> None:
        value = next_restart_value(self._current_value())
        outcome = rhizomectl(self.cluster, "spec", "patch",
                             f"pg_parameters.{RESTART_PARAMETER}={value}")  # fmt: skip
        self.notes.append(f"spec patch {RESTART_PARAMETER}={value}: {outcome}")
        if not outcome.startswith("exit 0"):
            return
        keeper = self.cluster.node(standby).keeper
        began = time.monotonic()
        keeper.stop(timeout=KEEPER_STOP_BOUND)
        stopped = time.monotonic() - began
        keeper.start()
        self.wanted = value
        self.notes.append(f"keeper {standby} stopped (SIGTERM) in {stopped:.1f} s, started again")

    def _current_value(self) -> Any:
        try:
            stored = self.cluster.store.read_spec()
        except (EtcdError, StoreError, OSError):
            return None
        return None if stored is None else stored.document.pg_parameters.get(RESTART_PARAMETER)

    def end(self) -> None:
        """When the fault heals: wait for the operation, end a maintenance."""
        self.thread.join(timeout=OPERATION_BOUND)
        if self.thread.is_alive():
            self.notes.append(f"FINDING: {self.operation} still runs {OPERATION_BOUND:.0f} s on")
        if self.operation == "maintenance" and self.standby is not None:
            outcome = rhizomectl(self.cluster, "keeper", "maintenance", self.standby, "off")
            self.notes.append(f"maintenance {self.standby} off: {outcome}")

    def verify(self) -> None:
        """After convergence: the restarted standby's PostgreSQL runs with the new value."""
        if self.standby is None or self.wanted is None:
            return
        answer = self._shown_value(self.standby)
        if answer == self.wanted:
            self.notes.append(f"{self.standby} runs with {RESTART_PARAMETER} {answer}")
        else:
            self.notes.append(f"FINDING: {self.standby} shows {RESTART_PARAMETER} {answer}, "
                              f"expected {self.wanted} after its restart")  # fmt: skip

    def _shown_value(self, name: str) -> str:
        node = self.cluster.node(name)
        deadline = time.monotonic() + VERIFY_BOUND
        while True:
            connection = None
            try:
                connection = connect((node.address, node.keeper.port), self.cluster.password)
                return str(query(connection, f"SHOW {RESTART_PARAMETER}")[0][0])
            except (psycopg2.Error, TimeoutError, OSError) as error:
                if time.monotonic() > deadline:
                    return f"(unknown: {str(error).strip() or type(error).__name__})"
                time.sleep(0.5)
            finally:
                close_quietly(connection)
