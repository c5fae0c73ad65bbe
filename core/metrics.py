"""Prometheus metrics of one process (``PlatformContext.metrics``), on its own registry.

Each process has its own ``CollectorRegistry``, never prometheus_client's global
one: the tests start several platforms in one process, and each ``serve``
process answers its own ``GET /metrics`` (Prometheus scrapes every process and
keeps them apart by ``instance``; no multiprocess directory is needed).

Two kinds of figures:

- **events**, counted where they happen: HTTP requests, acquirer callbacks,
  payment announcements, authentication failures, ACL denials, CONNECTs;
- **state**, read when Prometheus scrapes: the broker's sessions and message
  counts (plain integers the broker keeps, ``PlatformBroker.figures``)
  and what only the database knows (fleet online, outbox depth and age,
  export jobs), read by ``refresh_database`` with cheap indexed queries at
  most once per ``DATABASE_CACHE_S``, never per request.

Names and labels are the contract of ``deploy/grafana/qris-soundbox.json`` and
of docs/operations.md; ``tests/ops`` checks that the dashboard queries only
names exported here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from qris_soundbox.core.db import QUERIES, fetch_one

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext

# What the database-backed gauges may lag behind: a scrape every 15 s reads the database at most every 5 s.
DATABASE_CACHE_S = 5.0
DATABASE_TIMEOUT_S = 2.0
# HTTP latency: an API answer within milliseconds, a CSV export or a hashing login within a second or two.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Callback → device ack: the round trip over a cellular network, plus retries of a device that was away.
# Calls out to an acquirer: tens of milliseconds on a good day, up to its timeout (10 s) on a bad one.
ACQUIRER_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A payment's time at the acquirer to the platform learning of it: a notification within seconds, a query round later.
ACQUIRER_LAG_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
ANNOUNCE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class BrokerFigures(msgspec.Struct, kw_only=True):
    """What a broker process knows of its own connections, at one instant."""

    connections: int
    sessions_connected: int
    inflight: int
    queued: int
    messages_in: int
    messages_out: int
    dropped: int
    refused_dollar: int


class DatabaseFigures(msgspec.Struct, kw_only=True):
    """What every process can read from the shared database: the same for all of them."""

    devices_online: int
    outbox_open: int
    outbox_oldest_open_age_s: float
    export_jobs: dict[str, int]


class FigureSource(Protocol):
    def figures(self) -> BrokerFigures: ...


class Metrics:
    """The counters and histograms of one process, and the collector of its scrape-time state."""

    def __init__(self) -> None:
        registry = self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "qris_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "qris_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.callbacks = Counter(
            "qris_callbacks",
            "Acquirer callbacks by outcome (paid, failed, expired, duplicate, rejected) and reason (the error code)",
            ["outcome", "reason"],
            registry=registry,
        )
        self.payments_recorded = Counter(
            "qris_payments_recorded", "Payments the acquirer's callbacks recorded as paid", registry=registry
        )
        self.announcements = Counter(
            "qris_announcements",
            "Payment announcements: sent (each hand-over to the device's session, retries included),"
            " acked (the device played it), skipped_late (expired before it could be played)",
            ["event"],
            registry=registry,
        )
        self.announce_latency = Histogram(
            "qris_announcement_ack_seconds",
            "From the callback that recorded a payment to the device's ack of its announcement",
            buckets=ANNOUNCE_BUCKETS,
            registry=registry,
        )
        self.partner_notifications = Counter(
            "qris_partner_notifications",
            "Attempts to deliver a notification to a partner: delivered, retry (to be tried again), dead",
            ["outcome"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "qris_auth_failures",
            "Refused credentials, by channel (mqtt, http) and reason",
            ["channel", "reason"],
            registry=registry,
        )
        self.acl_denials = Counter(
            "qris_broker_acl_denials",
            "Publishes and subscribes a device made outside its own topics, by direction",
            ["direction"],
            registry=registry,
        )
        self.uplinks_dropped = Counter(
            "qris_broker_uplinks_dropped",
            "MQTT uplinks dropped past their device's budget (MQTT_UPLINK_BUDGET_*), by uplink kind",
            ["kind"],
            registry=registry,
        )
        self.broker_connects = Counter(
            "qris_broker_connects",
            "MQTT CONNECTs by result (accepted, or the refusal)",
            ["result"],
            registry=registry,
        )
        self.acquirer_calls = Counter(
            "qris_acquirer_calls",
            "SNAP calls out to an acquirer, by acquirer, operation (token, generate, query, cancel) and outcome"
            " (ok, refused: a 4xx SNAP answer, error, circuit_open: not attempted)",
            ["acquirer", "operation", "outcome"],
            registry=registry,
        )
        self.acquirer_errors = Counter(
            "qris_acquirer_errors",
            "Failed attempts of calls out, by acquirer and reason (connect, timeout, transport, http_5xx,"
            " bad_answer, bad_signature)",
            ["acquirer", "reason"],
            registry=registry,
        )
        self.acquirer_latency = Histogram(
            "qris_acquirer_call_seconds",
            "Time of one attempt of a call out to an acquirer",
            ["acquirer", "operation"],
            buckets=ACQUIRER_BUCKETS,
            registry=registry,
        )
        self.acquirer_notification_lag = Histogram(
            "qris_acquirer_notification_lag_seconds",
            "From a payment's time at the acquirer to the platform applying it, by acquirer and source"
            " (acquirer_notify, acquirer_query)",
            ["acquirer", "source"],
            buckets=ACQUIRER_LAG_BUCKETS,
            registry=registry,
        )
        self.acquirer_circuit_open = Gauge(
            "qris_acquirer_circuit_open",
            "1 while calls to this acquirer are refused by its circuit breaker (open or half-open), else 0",
            ["acquirer"],
            registry=registry,
        )
        # The series a dashboard shows from the start are there at zero, not missing until the first event.
        for event in ("sent", "acked", "skipped_late"):
            self.announcements.labels(event)
        for outcome, reason in (("paid", ""), ("duplicate", ""), ("rejected", "invalid_signature")):
            self.callbacks.labels(outcome, reason)
        for channel, reason in (("mqtt", "bad_credentials"), ("http", "unauthorized")):
            self.auth_failures.labels(channel, reason)
        for direction in ("publish", "subscribe"):
            self.acl_denials.labels(direction)
        for result in ("accepted", "not_authorized"):
            self.broker_connects.labels(result)
        self.database_cache_s = DATABASE_CACHE_S
        self.database_figures: DatabaseFigures | None = None
        self.broker_snapshot: BrokerFigures | None = None
        self.pool_snapshot: tuple[int, int] | None = None
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._database_read_at = float("-inf")
        self._platform: PlatformContext | None = None
        registry.register(_StateCollector(self))

    def attach(self, platform: PlatformContext) -> None:
        """The platform whose broker and database pool the scrape-time collector reads."""
        self._platform = platform

    async def refresh_database(self, platform: PlatformContext) -> None:
        """Read the database-backed gauges, at most once per ``database_cache_s``; none while the database is down."""
        now = time.monotonic()
        if now - self._database_read_at < self.database_cache_s:
            return
        try:
            # Bounded well below Prometheus' scrape timeout (10 s): a database outage must not fail the scrape.
            async with asyncio.timeout(DATABASE_TIMEOUT_S), platform.db.pool.acquire() as conn:
                online = await conn.fetchval(QUERIES["metrics_devices_online"])
                outbox = await fetch_one(conn, "metrics_outbox_open")
                jobs = await conn.fetch(QUERIES["export_job_counts"])  # as the observability summary
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # The scrape still answers (HTTP and broker figures); the database gauges go missing, not stale zeros.
            self.database_figures = None
            return
        self._database_read_at = now
        self.database_figures = DatabaseFigures(
            devices_online=online,
            outbox_open=outbox["open"],
            outbox_oldest_open_age_s=float(outbox["oldest_age_s"] or 0.0),
            export_jobs={row["status"]: row["count"] for row in jobs},
        )

    def observe_http(self, route: str, method: str, status: int, duration_s: float) -> None:
        """One answered request; the labelled children are looked up once per route, method and status."""
        key = (route, method, status)
        children = self._http_children.get(key)
        if children is None:
            children = self._http_children[key] = (
                self.http_requests.labels(route, method, str(status)),
                self.http_duration.labels(route, method),
            )
        children[0].inc()
        children[1].observe(duration_s)

    def observe_acquirer_call(
        self,
        acquirer: str,
        operation: str,
        outcome: str,
        duration_s: float | None,
        reason: str | None,
        circuit: str,
    ) -> None:
        """One attempt of a call out (``core/acquirers/snap_out.py``); ``duration_s`` None: not attempted."""
        self.acquirer_calls.labels(acquirer, operation, outcome).inc()
        if reason is not None:
            self.acquirer_errors.labels(acquirer, reason).inc()
        if duration_s is not None:
            self.acquirer_latency.labels(acquirer, operation).observe(duration_s)
        self.acquirer_circuit_open.labels(acquirer).set(0 if circuit == "closed" else 1)

    def snapshot_state(self) -> None:
        """Read the broker's figures and the pool's size now, on the event loop that owns them.

        A scrape calls this, then ``render`` in a thread: rendering hundreds of
        series takes tens of milliseconds that MQTT and HTTP should not wait for,
        and the broker's session table must not be walked from another thread.
        """
        platform = self._platform
        broker: FigureSource | None = platform.broker if platform is not None else None
        self.broker_snapshot = broker.figures() if broker is not None else None
        if platform is not None:
            pool = platform.db.pool
            self.pool_snapshot = (pool.get_size() - pool.get_idle_size(), pool.get_max_size())

    def render(self) -> bytes:
        """The text exposition (thread-safe: prometheus_client locks its metrics; the state is a snapshot)."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """The scrape-time families: broker state, database pool, database-backed gauges."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        # Which families exist depends on this process's roles and on the database: none to declare up front.
        return []

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        gauge, counter = GaugeMetricFamily, CounterMetricFamily
        families: list[tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str, float]] = []
        broker = metrics.broker_snapshot
        if broker is not None:
            families += [
                (gauge, "qris_broker_connections", "Open MQTT connections", broker.connections),
                (gauge, "qris_broker_sessions_connected", "Connected MQTT sessions", broker.sessions_connected),
                (gauge, "qris_broker_inflight_messages", "QoS 1 messages awaiting PUBACK", broker.inflight),
                (gauge, "qris_broker_queued_messages", "QoS 1 messages behind a full in-flight window", broker.queued),
                (counter, "qris_broker_messages_received", "PUBLISH packets received from clients", broker.messages_in),
                (
                    counter,
                    "qris_broker_messages_sent",
                    "PUBLISH packets sent (DUP resends not counted)",
                    broker.messages_out,
                ),
                (
                    counter,
                    "qris_broker_messages_dropped",
                    "QoS 1 messages dropped because a session's queue was full (the outbox sends them again)",
                    broker.dropped,
                ),
                (
                    counter,
                    "qris_broker_messages_refused_dollar",
                    "PUBLISH packets from clients to '$' topics, acknowledged and dropped",
                    broker.refused_dollar,
                ),
            ]
        pool = metrics.pool_snapshot
        if pool is not None:
            families += [
                (gauge, "qris_db_pool_in_use", "Database connections checked out", pool[0]),
                (gauge, "qris_db_pool_max", "Database pool size limit", pool[1]),
            ]
        database = metrics.database_figures
        if database is not None:
            families += [
                (gauge, "qris_fleet_devices_online", "Devices online, over all broker nodes", database.devices_online),
                (gauge, "qris_outbox_open", "Downlinks not yet acknowledged (pending or sent)", database.outbox_open),
                (
                    gauge,
                    "qris_outbox_oldest_open_age_seconds",
                    "Age of the oldest downlink not yet acknowledged (0 when none)",
                    database.outbox_oldest_open_age_s,
                ),
            ]
        for family, name, documentation, value in families:
            yield family(name, documentation, value=value)
        if database is not None:
            jobs = GaugeMetricFamily("qris_export_jobs", "Export jobs by state", labels=["state"])
            for state in ("pending", "running", "completed", "failed", "expired"):
                jobs.add_metric([state], database.export_jobs.get(state, 0))
            yield jobs
