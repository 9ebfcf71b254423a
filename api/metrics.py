"""Prometheus metrics of the live service (`GET /metrics`).

- `lastmile_http_request_seconds{method, route, status}`: request latency by route template.
- `lastmile_order_events_total{event}`: orders that reached each event (placed, allocated, assigned, delivered,
  ...), counted once per event by the worker's publish, so it holds across processes and restarts.
- `lastmile_dispatch_decision_seconds`: time the worker took to apply a command to the core (ticks that decided
  nothing are left out).
- `lastmile_command_lag`: commands in the stream the worker has not applied yet.
- `lastmile_open_orders{store}`: orders the store's dispatcher tracks, from the workers of this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.store import Store

STATS_KEY = "stats:events"
LATENCY_BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 5.0)


class Metrics:
    """One registry per app: request latency, decision time, and what the store and workers say at scrape time."""

    def __init__(self, store: Store, open_orders: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram("lastmile_http_request_seconds", "HTTP request latency by route template",
                                  ["method", "route", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.decisions = Histogram("lastmile_dispatch_decision_seconds", "time to apply one command to the core",
                                   buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_StoreCollector(store, open_orders))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    def __init__(self, store: Store, open_orders: Callable[[], dict[str, int]]) -> None:
        self.store = store
        self.open_orders = open_orders

    def collect(self) -> Iterator[Any]:
        events = CounterMetricFamily("lastmile_order_events", "orders that reached each event", labels=["event"])
        for event, count in sorted(self.store.hgetall(STATS_KEY).items()):
            events.add_metric([event], int(count))
        yield events
        yield GaugeMetricFamily("lastmile_command_lag", "commands not yet applied by the dispatch worker",
                                value=self.store.last_seq() - self.store.applied())
        open_orders = GaugeMetricFamily("lastmile_open_orders", "orders a store's dispatcher tracks", labels=["store"])
        for store, n in sorted(self.open_orders().items()):
            open_orders.add_metric([store], n)
        yield open_orders


class RequestTimer:
    """ASGI middleware observing each request's latency under its route template (`/v1/orders/{order_id}`)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)
