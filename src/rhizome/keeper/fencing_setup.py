"""The keeper's start-up checks of the fencing layers outside it (docs/fencing.md):
systemd's WatchdogSec against the timings, the kernel watchdog through the guard."""

from __future__ import annotations

import logging

from rhizome.keeper import fencing
from rhizome.keeper.config import KeeperConfig
from rhizome.keeper.guard_link import GuardLink, SystemdWatchdog
from rhizome.spec import TimingSettings

log = logging.getLogger("rhizome.keeper.loop")


def prepare_fencing(
    config: KeeperConfig, guard: GuardLink, systemd: SystemdWatchdog, timing: TimingSettings
) -> None:
    """Check systemd's watchdog against the timings; have the guard test the kernel's."""
    problem = fencing.systemd_watchdog_problem(systemd.timeout, timing)
    if problem is not None:
        log.warning("%s", problem)
    if config.watchdog == "off":
        return
    kernel = fencing.kernel_watchdog_timing(timing)
    if isinstance(kernel, str):
        guard.watchdog_problem = kernel
    elif guard.test_watchdog(kernel.timeout, kernel.reset_offset) is None:
        log.info(
            "kernel watchdog %s ready: timeout %d s while PostgreSQL may accept writes",
            config.watchdog_device, kernel.timeout,
        )  # fmt: skip
        return
    blocked = fencing.fencing_problem(
        config.watchdog, config.watchdog_device, guard.watchdog_problem
    )
    if blocked is not None:
        log.error("%s", blocked)
    else:
        log.warning(
            "kernel watchdog %s unusable (%s): running without it (watchdog = automatic)",
            config.watchdog_device, guard.watchdog_problem,
        )  # fmt: skip
