"""Fencing that holds when the keeper itself is frozen, dead or cannot see PostgreSQL.

Real etcd, real keepers and PostgreSQL. Each test stops only part of a node:
the keeper process alone (its PostgreSQL untouched), or PostgreSQL alone (the
keeper alive), and checks that no PostgreSQL stays writable past the bound
that lets the sentinel promote another keeper safely (DESIGN §3.2, §3.6).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from rhizome.fatal import EXIT_THREAD_DIED
from rhizome.keeper.fencing import MINIMUM_GUARD_TIME
from rhizome.keeper.plan import UNRESPONSIVE_LIMIT
from rhizome.keeper.postmaster import UNRESPONSIVE_KILL_AFTER
from rhizome.spec import ClusterSpec
from rhizome.store.cluster_store import ClusterStore
from tests.harness.keeper import (
    PYTHON,
    KeeperFactory,
    StateWriter,
    fencing_guards,
    reported,
    wait_reported,
    wait_until,
)
from tests.harness.processes import descendant_pids, is_alive
from tests.integration.test_keeper_safety import start_master

pytestmark = pytest.mark.integration

OBSERVATION_BOUND = 3.0 + 0.25
"""One unanswered observation (database.OBSERVATION_TIMEOUT) and the recheck pause."""


def postgres_tree(postmaster: int) -> set[int]:
    return {postmaster} | descendant_pids(postmaster)


def test_a_frozen_keeper_loses_its_postgres_before_its_lease_expires(store, keeper_factory, capsys):
    """SIGSTOP of the keeper process only: the guard kills PostgreSQL by the fence deadline."""
    timing = ClusterSpec().timing
    keeper = start_master(store, keeper_factory, ClusterSpec())
    tree = postgres_tree(keeper.postgres_pid or 0)
    os.kill(keeper.pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        wait_until(lambda: not any(map(is_alive, tree)), timing.keeper_lease_ttl, "killed")
        killed_after = time.monotonic() - frozen_at
        assert not keeper.accepts_connections()
        assert reported(store, "k1") is not None, "the lease expired before the fence"
        wait_until(lambda: reported(store, "k1") is None, 2 * timing.keeper_lease_ttl, "expiry")
        expired_after = time.monotonic() - frozen_at
    finally:
        os.kill(keeper.pid, signal.SIGCONT)
    with capsys.disabled():
        print(
            f"\nkeeper frozen: PostgreSQL killed {killed_after:.2f} s after the freeze, lease"
            f" expired {expired_after:.2f} s after it (fence deadline {timing.fence_deadline} s)"
        )
    # The guard's deadline is the last renewal + fence_deadline, and the renewal came
    # before the freeze; the design leaves the guard MINIMUM_GUARD_TIME after its
    # deadline to kill (on a loaded machine the kill itself lands ~30 ms late).
    assert killed_after < timing.fence_deadline + MINIMUM_GUARD_TIME
    assert "FENCED by the guard" in keeper.log_path.read_text()


def test_a_killed_keeper_leaves_no_postgres_running(store, keeper_factory, capsys):
    keeper = start_master(store, keeper_factory, ClusterSpec())
    tree = postgres_tree(keeper.postgres_pid or 0)
    os.kill(keeper.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_until(lambda: not any(map(is_alive, tree)), 2.0, "PostgreSQL gone with its keeper")
    with capsys.disabled():
        print(f"\nkeeper killed: PostgreSQL gone {time.monotonic() - killed_at:.2f} s later")


def guard_pid(keeper_pid: int) -> int:
    guards = fencing_guards(keeper_pid)
    if not guards:
        raise AssertionError("the keeper runs no fencing guard")
    return guards[0]


def test_a_killed_guard_ends_the_keeper_and_its_writable_postgres(store, keeper_factory):
    """Without its guard a frozen keeper would go unfenced: the keeper fences and exits 70."""
    keeper = start_master(store, keeper_factory, ClusterSpec())
    tree = postgres_tree(keeper.postgres_pid or 0)
    os.kill(guard_pid(keeper.pid), signal.SIGKILL)
    assert keeper.wait_exit(5) == EXIT_THREAD_DIED, keeper.log_tail()
    wait_until(lambda: not any(map(is_alive, tree)), 1.0, "PostgreSQL killed with its keeper")
    assert "the fencing guard process ended" in keeper.log_tail()


def test_an_unresponsive_master_is_killed_within_its_bound(store, keeper_factory, capsys):
    """SIGSTOP of the PostgreSQL tree only: reported unfenced meanwhile, then killed."""
    keeper = start_master(store, keeper_factory, ClusterSpec())
    tree = postgres_tree(keeper.postgres_pid or 0)
    for pid in tree:
        os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    bound = UNRESPONSIVE_LIMIT + OBSERVATION_BOUND + UNRESPONSIVE_KILL_AFTER + 1.0
    try:
        wait_reported(store, "k1", "not answering", timeout=5, running=False, fenced=False)
        wait_until(lambda: not any(map(is_alive, tree)), bound, "unresponsive PostgreSQL killed")
        killed_after = time.monotonic() - frozen_at
    finally:
        for pid in tree:
            if is_alive(pid):
                os.kill(pid, signal.SIGCONT)
    wait_reported(store, "k1", "reported fenced", timeout=3, running=False, fenced=True)
    with capsys.disabled():
        print(f"\nPostgreSQL frozen: killed {killed_after:.2f} s later (bound {bound:.1f} s)")
    assert "has not answered for" in keeper.log_path.read_text()


def test_a_keeper_without_setpriv_refuses_to_start(keeper_factory, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    keeper = keeper_factory("k1")
    keeper.start()
    assert keeper.wait_exit(30) == 2
    assert "setpriv (util-linux) is not on PATH" in keeper.log_tail()
    assert not (keeper.data_dir / "PG_VERSION").exists()


def test_a_second_keeper_with_a_taken_name_is_refused(store, keeper_factory):
    first = start_master(store, keeper_factory, ClusterSpec())
    before = reported(store, "k1")
    assert before is not None and before.instance_id is not None
    impostor = keeper_factory("k1")
    impostor.start()
    assert impostor.wait_exit(30) == 2
    message = impostor.log_tail()
    assert "keeper name 'k1' is already used by another running keeper" in message
    assert f"{first.host}:{first.port}" in message
    after = reported(store, "k1", instance_id=before.instance_id, running=True, fenced=False)
    assert after is not None, "the impostor changed the master's document"
    assert first.accepts_connections()
    assert not (impostor.data_dir / "PG_VERSION").exists()


INJECTOR = Path(__file__).with_name("keeper_fault_injector.py")


def injected_master(store: ClusterStore, keeper_factory: KeeperFactory) -> tuple[Any, Path]:
    """A master keeper under the fault injector, and the directory that switches faults on."""
    keeper = keeper_factory("k1")
    faults = keeper.root_dir / "faults"
    faults.mkdir(mode=0o755)
    keeper.argv_override = [PYTHON, str(INJECTOR), str(faults), "--config", str(keeper.config_path)]
    assert store.write_spec(ClusterSpec(), 0)
    StateWriter(store).assign("k1", initialized=False, k1="master")
    keeper.start()
    wait_reported(store, "k1", "healthy primary", role="primary", running=True)
    return keeper, faults


@pytest.mark.parametrize(("fault", "thread"), [("watchdog_error", "fence-watchdog"),
                                               ("renewer_error", "lease-renewer")])  # fmt: skip
def test_a_keeper_thread_that_dies_fences_and_ends_the_keeper(store, keeper_factory, fault, thread):
    keeper, faults = injected_master(store, keeper_factory)
    tree = postgres_tree(keeper.postgres_pid or 0)
    (faults / fault).touch()
    injected_at = time.monotonic()
    assert keeper.wait_exit(10) == EXIT_THREAD_DIED
    wait_until(lambda: not any(map(is_alive, tree)), 1.0, "PostgreSQL killed with its keeper")
    assert time.monotonic() - injected_at < 1.5, "not at once: by a fence deadline instead"
    assert f"thread {thread} ended on an unexpected error" in keeper.log_tail()


def test_a_stopped_master_keeper_ends_cleanly_and_revokes_its_lease(store, keeper_factory):
    """SIGTERM: PostgreSQL stopped, then the lease revoked, then the guard ended.

    The guard ends last: a heartbeat that found it gone first would end the
    keeper as if a thread had died (exit 70, lease left to expire).
    """
    keeper, faults = injected_master(store, keeper_factory)
    tree = postgres_tree(keeper.postgres_pid or 0)
    (faults / "slow_guard_stop").touch()
    os.kill(keeper.pid, signal.SIGTERM)
    assert keeper.wait_exit(30) == 0, keeper.log_tail()
    assert not any(map(is_alive, tree))
    assert reported(store, "k1") is None, "the lease was left to expire, not revoked"
    assert "ended on an unexpected error" not in keeper.log_tail()


def test_a_master_keeper_that_cannot_stop_postgres_keeps_its_lease(store, keeper_factory):
    """A failed shutdown never revokes the lease of a PostgreSQL that may still be writable.

    The guard kills that PostgreSQL once the keeper has ended; the lease expires by itself.
    """
    keeper, faults = injected_master(store, keeper_factory)
    tree = postgres_tree(keeper.postgres_pid or 0)
    (faults / "stop_error").touch()
    os.kill(keeper.pid, signal.SIGTERM)
    # The keeper alone (systemd's KillMode=process): wait_exit would SIGKILL its whole process
    # group, the guard with it, perhaps in the middle of its kill.
    assert keeper.wait_exit_leaving_guard(30) not in (0, None), keeper.log_tail()
    assert reported(store, "k1") is not None, "the lease was revoked before PostgreSQL stopped"
    wait_until(lambda: not any(map(is_alive, tree)), 1.0, "PostgreSQL killed by the guard")


UNUSABLE_DEVICE = "/dev/null"
"""Opens for writing, but every watchdog ioctl fails: a device that cannot be configured.
No real watchdog device is ever opened by these tests."""


def test_a_keeper_that_requires_an_unusable_kernel_watchdog_runs_no_primary(store, keeper_factory):
    assert store.write_spec(ClusterSpec(), 0)
    StateWriter(store).assign("k1", initialized=False, k1="master")
    keeper = keeper_factory(
        "k1", extra_settings={"watchdog": "required", "watchdog_device": UNUSABLE_DEVICE}
    )
    keeper.start()
    document = wait_reported(store, "k1", "the missing fence reported", timeout=30, running=False)
    wait_until(lambda: (reported(store, "k1") or document).last_error, 10, "last_error")
    error = (reported(store, "k1") or document).last_error or ""
    assert f'watchdog = "required") but {UNUSABLE_DEVICE} is unusable' in error
    assert "not a usable watchdog device" in error and 'set watchdog = "automatic"' in error
    time.sleep(2.0)  # several passes of the keeper's loop
    assert keeper.is_running and keeper.postgres_pid is None
    assert not (keeper.data_dir / "PG_VERSION").exists()
    assert reported(store, "k1", running=False) is not None


def test_automatic_runs_without_an_unusable_watchdog_and_required_still_runs_a_standby(
    store, keeper_factory
):
    assert store.write_spec(ClusterSpec(), 0)
    writer = StateWriter(store)
    generation = writer.assign("k1", initialized=False, k1="master")
    settings = {"watchdog_device": UNUSABLE_DEVICE}
    master = keeper_factory("k1", extra_settings={**settings, "watchdog": "automatic"})
    master.start()
    wait_reported(
        store, "k1", "healthy primary", role="primary", running=True,
        acknowledged_state_generation=generation,
    )  # fmt: skip
    assert "running without it (watchdog = automatic)" in master.log_path.read_text()
    generation = writer.assign("k1", k1="master", k2="standby:k1")
    standby = keeper_factory("k2", extra_settings={**settings, "watchdog": "required"})
    standby.start()
    wait_reported(
        store, "k2", "healthy standby", role="standby", running=True,
        acknowledged_state_generation=generation, timeout=90,
    )  # fmt: skip
