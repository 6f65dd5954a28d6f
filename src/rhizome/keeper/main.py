"""Entry point of `rhizome-keeper --config FILE`.

SIGTERM or SIGINT stops the keeper (and PostgreSQL, unless the cluster is
paused or systemd restarts the unit); SIGUSR2 restarts it in place: PostgreSQL
is left to the fencing guard, the process runs its program again (a new
version, after an upgrade) and takes PostgreSQL and its lease back
(docs/fencing.md, "Restarts and pause").

Exit codes: 0 after a requested stop, 2 when the configuration is unusable,
another keeper owns the data directory or the keeper's name, or a fencing
tool is missing (one line on stderr says what to fix), 70 when a thread died
on an unexpected error (rhizome.fatal), 1 on another unexpected failure.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from rhizome.api.server import start_api
from rhizome.config import ConfigError
from rhizome.keeper import api as keeper_api
from rhizome.keeper.commands import find_pdeathsig_wrapper
from rhizome.keeper.config import Configuration, load_configuration
from rhizome.keeper.identity import NameTaken
from rhizome.keeper.lock import DataDirectoryLock, DataDirectoryLocked
from rhizome.keeper.loop import Keeper

log = logging.getLogger("rhizome.keeper")

EXIT_UNUSABLE = 2
MODULE = "rhizome.keeper.main"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rhizome-keeper",
        description="Keeps one PostgreSQL instance converged to its assignment in etcd.",
    )
    parser.add_argument("--config", required=True, help="the keeper's TOML configuration file")
    return parser.parse_args(argv)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def fail(message: str) -> int:
    print(f"rhizome-keeper: error: {message}", file=sys.stderr)
    return EXIT_UNUSABLE


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)
"""Stop (SIGTERM, SIGINT) or restart in place (SIGUSR2)."""


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        configuration = load_configuration(arguments.config)
    except ConfigError as error:
        return fail(str(error))
    if os.geteuid() == 0:
        return fail("refusing to run as root; run rhizome-keeper as the PostgreSQL OS user")
    if find_pdeathsig_wrapper() is None:
        return fail(
            "setpriv (util-linux) is not on PATH: without it PostgreSQL outlives a killed"
            " keeper unfenced; install util-linux or add its directory to PATH"
        )
    configure_logging(configuration.keeper.log_level)
    lock = DataDirectoryLock(configuration.keeper.lock_file, configuration.keeper.data_dir)
    try:
        lock.acquire()
    except (DataDirectoryLocked, OSError) as error:
        return fail(str(error))
    restart: dict[str, str] | None = None
    try:
        code, restart = run(configuration)
    finally:
        lock.release()
    if restart is not None:
        log.info("running again (SIGUSR2): PostgreSQL was left to the fencing guard")
        logging.shutdown()
        argv = [sys.executable, "-m", MODULE, *sys.argv[1:]]
        # Blocked across execve (the mask is inherited) until the new process has its
        # handlers: a stop or restart sent meanwhile is delivered then, not fatal now.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        os.execve(sys.executable, argv, restart)  # noqa: S606 - our own program, same arguments
    return code


def run(configuration: Configuration) -> tuple[int, dict[str, str] | None]:
    """Run the keeper; its exit code, and the environment to run again in after SIGUSR2."""
    keeper = Keeper(configuration.keeper, configuration.store.open(), configuration.api)
    try:
        # Never stopped: it ends with the process, and its socket closes at an exec (SIGUSR2)
        # without the up to 0.5 s a shutdown() would add to a restart in place.
        start_api(configuration.api, lambda: keeper_api.routes(keeper))
    except (OSError, ConfigError) as error:
        return fail(str(error)), None

    def stop(signal_number: int, frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signal_number).name)
        keeper.request_stop(restart=signal_number == signal.SIGUSR2)

    for signal_number in STOP_SIGNALS:
        signal.signal(signal_number, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        keeper.run()
    except NameTaken as error:
        return fail(str(error)), None
    if keeper.restart_requested:
        return 0, {**os.environ, **keeper.systemd_watchdog.inherited}
    return 0, None


if __name__ == "__main__":
    sys.exit(main())
