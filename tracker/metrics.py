"""Prometheus metrics: requests by route and status, latency histogram, job counters."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tracker.web.problems import Handler


class Metrics:
    """One registry per app, so tests and several apps in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tracker_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tracker_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.polls = Counter(
            "tracker_carrier_requests_total",
            "Carrier requests",
            ["carrier", "outcome"],
            registry=self.registry,
        )
        self.events = Counter("tracker_events_stored_total", "New tracking events stored", registry=self.registry)
        self.webhook_attempts = Counter(
            "tracker_webhook_attempts_total", "Webhook attempts", ["outcome"], registry=self.registry
        )
        self.emails = Counter("tracker_emails_total", "Customer emails", ["outcome"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_middleware(metrics: Metrics) -> web.middleware:  # type: ignore[valid-type]
    # labels() takes a lock and hashes the label values on every call; the children per
    # (method, route[, status]) are looked up once and kept (as many as the metric has)
    counters: dict[tuple[str, str, int], Any] = {}
    timers: dict[tuple[str, str], Any] = {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            elapsed = time.perf_counter() - started
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            method = request.method
            counter = counters.get((method, route, status))
            if counter is None:
                counter = counters[(method, route, status)] = metrics.requests.labels(method, route, str(status))
            counter.inc()
            timer = timers.get((method, route))
            if timer is None:
                timer = timers[(method, route)] = metrics.latency.labels(method, route)
            timer.observe(elapsed)

    return middleware


CONTENT_TYPE = CONTENT_TYPE_LATEST
