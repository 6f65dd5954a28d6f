"""Runs the real rhizome-keeper with faults a test switches on by creating files (no tests here).

    python tests/integration/keeper_fault_injector.py FAULT_DIRECTORY --config keeper.toml

- `FAULT_DIRECTORY/watchdog_error`: the fencing watchdog thread raises on its next tick.
- `FAULT_DIRECTORY/renewer_error`: the lease renewer thread raises on its next renewal.
- `FAULT_DIRECTORY/slow_guard_stop`: the keeper's shutdown pauses 0.3 s after the guard ended.
- `FAULT_DIRECTORY/stop_error`: stopping PostgreSQL raises (the keeper's shutdown fails).
- `FAULT_DIRECTORY/systemd_restart`: a SIGTERM finds systemd restarting the keeper's unit.
- `FAULT_DIRECTORY/late_hold`: the guard stays `normal` after `holding: true` is stored
  (the keeper stays in the moment before its next pass would let the guard hold).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any


def install(directory: Path) -> None:
    from rhizome.keeper import departure, pause_hold
    from rhizome.keeper.guard_link import GuardLink
    from rhizome.keeper.loop import Keeper
    from rhizome.keeper.postmaster import Postmaster
    from rhizome.lease import LeaseHolder

    heartbeat, renew = Keeper._heartbeat, LeaseHolder.renew
    stop_guard, stop_postgres = GuardLink.stop, Postmaster.stop
    hold_mode = pause_hold.HoldSwitch.mode

    def failing_heartbeat(self: Keeper, *arguments: Any) -> None:
        if (directory / "watchdog_error").exists():
            raise RuntimeError("injected fault in the fencing watchdog")
        heartbeat(self, *arguments)

    def failing_renew(self: LeaseHolder, *arguments: Any) -> bool:
        if (directory / "renewer_error").exists():
            raise RuntimeError("injected fault in the lease renewer")
        return renew(self, *arguments)

    def slow_guard_stop(self: GuardLink) -> None:
        stop_guard(self)
        if (directory / "slow_guard_stop").exists():
            time.sleep(0.3)

    def failing_stop(self: Postmaster, *arguments: Any) -> None:
        if (directory / "stop_error").exists():
            raise RuntimeError("injected fault in stopping PostgreSQL")
        stop_postgres(self, *arguments)

    def late_hold(self: pause_hold.HoldSwitch, *arguments: Any) -> Any:
        mode = hold_mode(self, *arguments)
        return "normal" if (directory / "late_hold").exists() else mode

    def systemd_restarting(*arguments: Any) -> bool:
        return (directory / "systemd_restart").exists()

    departure.systemd_restarting = systemd_restarting
    Keeper._heartbeat = failing_heartbeat  # type: ignore[method-assign]
    LeaseHolder.renew = failing_renew  # type: ignore[method-assign]
    GuardLink.stop = slow_guard_stop  # type: ignore[method-assign]
    Postmaster.stop = failing_stop  # type: ignore[method-assign]
    pause_hold.HoldSwitch.mode = late_hold  # type: ignore[method-assign]


if __name__ == "__main__":
    install(Path(sys.argv.pop(1)))
    from rhizome.keeper.main import main

    sys.exit(main())
