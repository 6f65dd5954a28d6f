"""Runs the real rhizome-keeper with faults a test switches on by creating files (no tests here).

    python tests/integration/keeper_fault_injector.py FAULT_DIRECTORY --config keeper.toml

- `FAULT_DIRECTORY/watchdog_error`: the fencing watchdog thread raises on its next tick.
- `FAULT_DIRECTORY/renewer_error`: the lease renewer thread raises on its next renewal.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def install(directory: Path) -> None:
    from rhizome.keeper.loop import Keeper
    from rhizome.lease import LeaseHolder

    heartbeat, renew = Keeper._heartbeat, LeaseHolder.renew

    def failing_heartbeat(self: Keeper, *arguments: Any) -> None:
        if (directory / "watchdog_error").exists():
            raise RuntimeError("injected fault in the fencing watchdog")
        heartbeat(self, *arguments)

    def failing_renew(self: LeaseHolder, *arguments: Any) -> bool:
        if (directory / "renewer_error").exists():
            raise RuntimeError("injected fault in the lease renewer")
        return renew(self, *arguments)

    Keeper._heartbeat = failing_heartbeat  # type: ignore[method-assign]
    LeaseHolder.renew = failing_renew  # type: ignore[method-assign]


if __name__ == "__main__":
    install(Path(sys.argv.pop(1)))
    from rhizome.keeper.main import main

    sys.exit(main())
