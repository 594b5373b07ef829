"""Prometheus metrics of the API: requests, latency, in flight, the pool.

Imported only when metrics are on (TASKHUB_METRICS), so a worker without them
carries no prometheus-client.

With PROMETHEUS_MULTIPROC_DIR set (`taskhub serve` sets a private one up when
several processes serve), every worker writes its values to files there and a
scrape adds up the files of all workers, whichever worker answers it.
"""

import os
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"

# Most requests take a few milliseconds: finer buckets at the bottom than the
# client's defaults, which start at 5 ms.
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

LABELS: Final = ("method", "route", "status")


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def shared_registry() -> CollectorRegistry:
    """A registry that reads every process's values from the multiprocess dir."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


class Metrics:
    """One app's metrics, in a registry of its own (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "taskhub_http_requests",
            "HTTP requests answered, by method, route template and status.",
            LABELS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "taskhub_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response.",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # livesum: the sum over the workers alive; a stopped worker's share goes.
        self.in_flight = Gauge(
            "taskhub_http_requests_in_flight",
            "Requests being served right now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge(
            "taskhub_db_pool_size",
            "Database connections the pools may hold (all workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pool_checked_out = Gauge(
            "taskhub_db_pool_checked_out",
            "Database connections in use by a request right now (all workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        # The labelled children, looked up once per label set, not per request.
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        children = self._children.get(key)
        if children is None:
            children = self.requests.labels(*key), self.latency.labels(*key)
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def watch_pool(self, engine: AsyncEngine) -> None:
        """Follow the engine's pool: its size, and connections checked out."""
        pool = engine.sync_engine.pool
        size = getattr(pool, "size", None)
        if callable(size):
            self.pool_size.set(size())
        checked_out = getattr(pool, "checkedout", None)
        self.pool_checked_out.set(checked_out() if callable(checked_out) else 0)
        gauge = self.pool_checked_out
        # Pool events rather than a look at scrape time: the scrape reaches one
        # worker, and must still add up the pools of all of them.
        event.listen(pool, "checkout", lambda *_: gauge.inc())
        event.listen(pool, "checkin", lambda *_: gauge.dec())

    def exposition(self) -> bytes:
        registry = shared_registry() if multiprocess() else self.registry
        return generate_latest(registry)

    async def endpoint(self, request: Request) -> Response:
        """GET /metrics: the Prometheus text format."""
        return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)


def process_stopped() -> None:
    """Drop this worker's live gauges (in flight, pool) from the shared files."""
    if multiprocess():
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
