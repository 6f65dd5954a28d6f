"""Entry point of `rhizome-sentinel --config FILE`.

The configuration is the shared TOML (cluster and [etcd], see
rhizome.config) with an optional section::

    [sentinel]
    id = "sentinel-db1"   # default: this host's name

and the API's `[api]` section (rhizome.api.config; default 127.0.0.1:9644).
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from types import FrameType

from rhizome.api.config import api_config
from rhizome.api.server import start_api
from rhizome.config import ConfigError, load_file, store_config
from rhizome.sentinel import api as sentinel_api
from rhizome.sentinel.runner import Sentinel
from rhizome.sentinel.supervision import ThreadWatch, run_supervised
from rhizome.store.errors import StoreError
from rhizome.store.keys import check_name


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rhizome-sentinel", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="TOML configuration file")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser.parse_args(argv)


def sentinel_id(data: dict[str, object], source: str) -> str:
    section = data.get("sentinel", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: [sentinel] must be a table")
    unknown = sorted(set(section) - {"id"})
    if unknown:
        raise ConfigError(f"{source}: unknown [sentinel] settings {unknown}; known: ['id']")
    default = socket.gethostname().split(".")[0].lower()
    try:
        return check_name("sentinel", str(section.get("id", default)))
    except StoreError as error:
        raise ConfigError(f"{source}: {error}; set [sentinel] id") from error


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=arguments.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        data = load_file(arguments.config)
        store = store_config(data, arguments.config).open()
        identifier = sentinel_id(data, arguments.config)
        api = api_config(data, arguments.config, "sentinel")
    except ConfigError as error:
        print(f"rhizome-sentinel: error: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signal_number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    logging.getLogger(__name__).info("sentinel %s starting", identifier)
    thread_watch = ThreadWatch().install()
    sentinel = Sentinel(store, identifier, thread_watch=thread_watch)
    try:
        server = start_api(api, lambda: sentinel_api.routes(sentinel))
    except (OSError, ConfigError) as error:
        print(f"rhizome-sentinel: error: {error}", file=sys.stderr)
        return 2
    try:
        return run_supervised(lambda: sentinel.run(stop))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
