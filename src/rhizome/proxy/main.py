"""Entry point of `rhizome-proxy`: configuration, listeners, store follower, signals."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys

import uvloop

from rhizome import clock
from rhizome.api.config import ListenAddress
from rhizome.config import ConfigError, StoreConfig
from rhizome.failsafe.responder import failsafe_page
from rhizome.proxy.config import ProxyConfig, load_proxy_config
from rhizome.proxy.dispatcher import Arrival, Dispatcher
from rhizome.proxy.failsafe import ProxyFailsafe
from rhizome.proxy.failure import SafetyFailure
from rhizome.proxy.fencing import StoreFence
from rhizome.proxy.forwarder import ignore_writes_to_closed_peers
from rhizome.proxy.http import HttpEndpoint
from rhizome.proxy.status import ProxyStatus
from rhizome.proxy.succession import Succession

log = logging.getLogger("rhizome.proxy")

DEFAULT_CONFIG = "/etc/rhizome/proxy.toml"
LISTEN_BACKLOG = 1024


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rhizome-proxy",
        description="Route PostgreSQL clients to the master (and standbys) the store publishes.",
    )
    parser.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="TOML configuration file")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(
        level=arguments.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        store_config, config = load_proxy_config(arguments.config)
    except ConfigError as error:
        print(f"rhizome-proxy: {error}", file=sys.stderr)
        return 2
    return uvloop.run(serve(store_config, config))


async def serve(store_config: StoreConfig, config: ProxyConfig) -> int:
    """Run until SIGTERM / SIGINT (exit code 0) or a safety failure (EXIT_SAFETY_FAILURE)."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(ignore_writes_to_closed_peers)
    dispatcher = Dispatcher(config)
    fence = StoreFence(dispatcher, wake_publisher=lambda: None)
    stop = asyncio.Event()
    failure = SafetyFailure(
        loop, lambda: setattr(dispatcher, "forward_until", 0.0), fence.halt, stop
    )
    fence.deadline_callback = failure.guarded("the close deadline timer", fence.check_deadline)
    dispatcher.overdue = failure.guarded("fencing at the deadline", fence.fence_if_overdue)
    succession = Succession(store_config, config, fence, loop, failure)
    status = ProxyStatus(dispatcher, fence, succession.counters, clock.monotonic(),
                         succession.follower.request_stats())  # fmt: skip
    succession.follower_started = lambda follower: status.count_requests_of(
        follower.request_stats()
    )
    failsafe = ProxyFailsafe(fence, succession)
    try:
        servers = await open_listeners(config, dispatcher, status, failsafe)
    except (OSError, ConfigError) as error:
        log.error("cannot listen: %s", error)
        return 1
    succession.start()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    log.info("proxy %s of cluster %s started", config.id, store_config.cluster)
    await stop.wait()
    failure.stopped.set()  # a thread failing from now on need not end the process itself
    log.info("shutting down: closing every connection, then revoking the lease")
    for server in servers:
        server.close()
    dispatcher.shutdown()
    fence.stop()
    await succession.stop()
    if failure.exit_code:
        log.critical("exiting with code %d so that the service is restarted", failure.exit_code)
    return failure.exit_code


async def open_listeners(
    config: ProxyConfig, dispatcher: Dispatcher, status: ProxyStatus, failsafe: ProxyFailsafe
) -> list[asyncio.Server]:
    """Listen on every configured address; an address in use names itself."""
    loop = asyncio.get_running_loop()
    servers: list[asyncio.Server] = []

    async def listen(address: ListenAddress, factory: type | object, what: str,
                     tls: ssl.SSLContext | None = None) -> None:  # fmt: skip
        try:
            server = await loop.create_server(
                factory,  # type: ignore[arg-type]
                address.host,
                address.port,
                backlog=LISTEN_BACKLOG,
                reuse_address=True,
                ssl=tls,
            )
        except OSError as error:
            for opened in servers:
                opened.close()
            raise OSError(error.errno, f"{what} address {address}: {error.strerror}") from error
        servers.append(server)
        log.info("%s port listening on %s", what, address)

    await listen(config.read_write_listen, lambda: Arrival(dispatcher, False), "read-write")
    if config.read_only_listen is not None:
        await listen(config.read_only_listen, lambda: Arrival(dispatcher, True), "read-only")
    api = config.api
    if api.listen is not None:
        routes = {
            **status.routes(),
            "/failsafe": failsafe_page(api.authenticated, failsafe.confirm),
        }
        await listen(api.listen, lambda: HttpEndpoint(routes, api.token), "api", api.ssl_context())
    return servers


if __name__ == "__main__":
    sys.exit(main())
