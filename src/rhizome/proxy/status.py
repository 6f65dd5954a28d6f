"""What /health and /metrics report, gathered from the running proxy."""

from __future__ import annotations

from dataclasses import dataclass

from rhizome import clock
from rhizome.api.agent_metrics import etcd_samples, uptime_sample
from rhizome.api.exposition import CONTENT_TYPE, Sample, render, sample
from rhizome.api.requests import Handler, Page, Request, json_page
from rhizome.etcd.stats import RequestStats, combined
from rhizome.proxy.dispatcher import Dispatcher
from rhizome.proxy.fencing import StoreFence
from rhizome.proxy.forwarder import SessionState
from rhizome.proxy.metrics import PORT_NAMES, StoreCounters, per_port

# metric name -> (help, PortCounters field)
PORT_COUNTERS = {
    "accepted_connections_total": ("Client connections accepted.", "accepted"),
    "forwarded_connections_total": (
        "Client connections connected to a server.",
        "forwarded",
    ),
    "retarget_closed_connections_total": (
        "Connections closed because their server is no longer a target.",
        "closed_by_retarget",
    ),
    "invalid_clients_total": (
        "Held clients dropped for sending something no PostgreSQL client sends.",
        "invalid_clients",
    ),
    "server_connect_errors_total": (
        "Failed connection attempts to PostgreSQL servers.",
        "connect_errors",
    ),
}


@dataclass
class ProxyStatus:
    dispatcher: Dispatcher
    fence: StoreFence
    store_counters: StoreCounters
    started_at: float
    request_stats: tuple[RequestStats, ...] = ()
    """The etcd clients' (watch and lease), for rhizome_etcd_requests_total."""

    def count_requests_of(self, stats: tuple[RequestStats, ...]) -> None:
        """Add the etcd clients of a successor's follower (the totals keep counting)."""
        self.request_stats = (*self.request_stats, *stats)

    def routes(self) -> dict[str, Handler]:
        return {
            "/health": lambda request: self.health_page(),
            "/readiness": lambda request: self.health_page(),
            "/liveness": self.liveness_page,
            "/metrics": lambda request: self.metrics_page(),
        }

    def liveness_page(self, request: Request) -> Page:
        """200 whenever the event loop answers: a stuck loop answers nothing."""
        return json_page(200, {"status": "alive", "fenced": self.fence.fenced})

    def health_page(self) -> Page:
        """200 while the proxy may forward (lease alive); 503 when fenced."""
        routes = self.dispatcher.routes
        healthy = not self.fence.fenced
        body = {
            "status": "ok" if healthy else "fenced",
            "cluster": self.fence.cluster,
            "detail": (
                "lease renewed; routing by the store"
                if healthy
                else "store unreachable or lease not renewed: every connection closed,"
                " new ones held"
            ),
            "proxy_generation": self.dispatcher.applied_generation,
            "read_write_target": str(routes.master) if routes.master else None,
            "read_only_targets": [str(backend) for backend in routes.read_only_targets],
            "standby_exclusions": dict(routes.standby_exclusions),
            "connections": self.dispatcher.active,
        }
        return json_page(200 if healthy else 503, body)

    def metrics_page(self) -> Page:
        text = render(self.samples())
        return 200, CONTENT_TYPE, text.encode()

    def samples(self) -> list[Sample]:
        uptime = uptime_sample("proxy", clock.monotonic() - self.started_at)
        etcd = etcd_samples("proxy", combined(self.request_stats))
        return [*self.connection_samples(), *self.byte_samples(), *self.store_samples(),
                *etcd, uptime]  # fmt: skip

    def connection_samples(self) -> list[Sample]:
        ports = self.dispatcher.ports
        states = {read_only: self.state_counts(read_only) for read_only in ports}
        refused = tuple(
            ({"port": PORT_NAMES[read_only], "reason": reason}, float(count))
            for read_only, port in ports.items()
            for reason, count in sorted(port.counters.refused.items())
        )
        return [
            per_port(
                "rhizome_proxy_connections",
                "gauge",
                "Client connections being forwarded.",
                {ro: counts[SessionState.FORWARDING] for ro, counts in states.items()},
            ),
            per_port(
                "rhizome_proxy_held_connections",
                "gauge",
                "Client connections held (or connecting) while no target is published.",
                {
                    ro: counts[SessionState.HELD] + counts[SessionState.CONNECTING]
                    for ro, counts in states.items()
                },
            ),
            Sample(
                "rhizome_proxy_refused_connections_total",
                "counter",
                "Client connections answered with an error, by reason.",
                refused,
            ),
            *(
                per_port(
                    "rhizome_proxy_" + name,
                    "counter",
                    help_text,
                    {ro: getattr(port.counters, field) for ro, port in ports.items()},
                )
                for name, (help_text, field) in PORT_COUNTERS.items()
            ),
        ]

    def state_counts(self, read_only: bool) -> dict[SessionState, int]:
        counts = dict.fromkeys(SessionState, 0)
        for session in self.dispatcher.ports[read_only].sessions():
            counts[session.state] += 1
        return counts

    def byte_samples(self) -> list[Sample]:
        rows: list[tuple[dict[str, str], float]] = []
        for read_only, port in self.dispatcher.ports.items():
            from_clients = port.counters.bytes_from_clients
            from_servers = port.counters.bytes_from_servers
            for session in port.sessions():
                from_client, to_client = session.bytes_forwarded()
                from_clients += from_client
                from_servers += to_client
            name = PORT_NAMES[read_only]
            rows.append(({"port": name, "direction": "client_to_server"}, float(from_clients)))
            rows.append(({"port": name, "direction": "server_to_client"}, float(from_servers)))
        help_text = "Bytes forwarded, by direction."
        return [Sample("rhizome_proxy_bytes_total", "counter", help_text, tuple(rows))]

    def store_samples(self) -> list[Sample]:
        counters = self.store_counters
        errors = (
            ({"operation": "watch"}, float(counters.watch_errors)),
            ({"operation": "lease"}, float(counters.lease_errors)),
            ({"operation": "publish"}, float(counters.publish_errors)),
        )
        return [
            sample(
                "rhizome_proxy_generation",
                "gauge",
                "Proxy generation applied (and acknowledged).",
                self.dispatcher.applied_generation,
            ),
            sample(
                "rhizome_proxy_fenced",
                "gauge",
                "1 while the proxy routes nowhere because its lease may expire.",
                1.0 if self.fence.fenced else 0.0,
            ),
            Sample(
                "rhizome_proxy_store_errors_total",
                "counter",
                "Failed store operations.",
                errors,
            ),
            sample(
                "rhizome_proxy_lease_renewals_total",
                "counter",
                "Successful lease renewals.",
                counters.renewals,
            ),
            sample(
                "rhizome_proxy_uptime_seconds",
                "gauge",
                "Seconds since the proxy started.",
                round(clock.monotonic() - self.started_at, 3),
            ),
        ]
