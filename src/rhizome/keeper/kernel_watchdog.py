"""The kernel watchdog device, as the fencing guard drives it (docs/fencing.md).

While PostgreSQL may accept writes the guard holds the device open and pings
it; if the guard stops (killed, frozen, the whole userspace stalled) the
kernel resets the host before the keeper's lease can expire. The guard pings
only while a reset would still land before that point:

- ``timeout`` (whole seconds, set with WDIOC_SETTIMEOUT): a ping at `now`
  means a reset at ``now + timeout`` unless pinged again;
- ``reset_offset``: seconds from the guard's fence deadline to the latest
  moment a reset may land (keeper_lease_ttl - FENCE_MARGIN - fence_deadline).

So the guard pings every quarter timeout until ``deadline + reset_offset -
timeout`` and never after it: the last reset point lies between a quarter
timeout before ``deadline + reset_offset`` and that point, after the guard's
own deadline (the guard kills PostgreSQL first and disables the device).
Disabling is the "magic close": write ``V``, then close.

Stdlib only (the guard imports it). The ioctl numbers are the asm-generic
encoding of <linux/watchdog.h> (amd64, arm64).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

WDIOC_GETSUPPORT = 0x80285700
WDIOC_KEEPALIVE = 0x80045705
WDIOC_SETTIMEOUT = 0xC0045706
WDIOF_SETTIMEOUT = 0x0080
WDIOF_MAGICCLOSE = 0x0100
MISC_WATCHDOG = (10, 130)
"""/dev/watchdog: the legacy node of the first watchdog device (watchdog0)."""


class WatchdogUnusable(Exception):
    """The device cannot be opened, configured or pinged; the message says why."""


@dataclass(frozen=True)
class PingSchedule:
    """When the guard may and must ping (pure)."""

    timeout: int
    reset_offset: float

    def last_ping_at(self, deadline: float) -> float:
        """The latest ping whose reset still lands by deadline + reset_offset."""
        return deadline + self.reset_offset - self.timeout

    def next_ping(self, now: float, deadline: float, last_ping: float) -> float | None:
        """When to ping next; None once no ping is allowed for this deadline."""
        latest = self.last_ping_at(deadline)
        if now > latest:
            return None
        return min(last_ping + self.timeout / 4, latest)


class KernelWatchdog:
    """One watchdog device; open only while the guard is armed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def open(self, timeout: int) -> None:
        """Open, check and set `timeout`; closed again (magic close) on any failure."""
        if self._fd is not None:
            return
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as error:
            raise WatchdogUnusable(f"cannot open {self.path}: {error.strerror}") from error
        try:
            self._configure(timeout)
        except WatchdogUnusable:
            self.close()
            raise

    def _configure(self, timeout: int) -> None:
        assert self._fd is not None
        nowayout = no_way_out(self.path)
        if nowayout:
            raise WatchdogUnusable(
                f"{self.path} runs with nowayout=1: it cannot be disabled when PostgreSQL"
                " stops accepting writes (load the driver with nowayout=0)"
            )
        try:
            info = fcntl.ioctl(self._fd, WDIOC_GETSUPPORT, bytes(40))
            options = struct.unpack("I", info[:4])[0]
            answer = fcntl.ioctl(self._fd, WDIOC_SETTIMEOUT, struct.pack("i", timeout))
        except OSError as error:
            raise WatchdogUnusable(
                f"{self.path} is not a usable watchdog device (ioctl: {error.strerror})"
            ) from error
        missing = [
            name
            for flag, name in (
                (WDIOF_SETTIMEOUT, "a settable timeout"),
                (WDIOF_MAGICCLOSE, "magic close"),
            )
            if not options & flag
        ]
        if missing:
            raise WatchdogUnusable(f"{self.path} lacks {' and '.join(missing)}")
        granted = struct.unpack("i", answer)[0]
        if granted != timeout:
            raise WatchdogUnusable(
                f"{self.path} set a timeout of {granted} s instead of {timeout} s (its"
                " granularity cannot meet the lease timings)"
            )
        self.ping()

    def ping(self) -> None:
        if self._fd is None:
            return
        try:
            fcntl.ioctl(self._fd, WDIOC_KEEPALIVE, struct.pack("i", 0))
        except OSError as error:
            raise WatchdogUnusable(f"cannot ping {self.path}: {error.strerror}") from error

    def close(self) -> None:
        """Disable the device: write the magic 'V', then close."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(fd, b"V")
        with contextlib.suppress(OSError):
            os.close(fd)


def no_way_out(path: Path) -> bool:
    """The device's sysfs nowayout flag (False when it cannot be read)."""
    try:
        device = os.stat(path).st_rdev
    except OSError:
        return False
    numbers = (os.major(device), os.minor(device))
    classes = Path("/sys/class/watchdog")
    candidates = [classes / "watchdog0"] if numbers == MISC_WATCHDOG else []
    with contextlib.suppress(OSError):
        candidates += [
            entry
            for entry in classes.iterdir()
            if (entry / "dev").read_text().strip() == f"{numbers[0]}:{numbers[1]}"
        ]
    for entry in candidates:
        with contextlib.suppress(OSError):
            return (entry / "nowayout").read_text().strip() == "1"
    return False
