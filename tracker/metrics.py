"""Prometheus metrics: requests by route and status, latency histogram, job counters."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable

import prometheus_client.metrics
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from tracker.web.problems import Handler

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _Latency:
    __slots__ = ("counts", "created", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.sum = 0.0
        self.created = time.time()


class HttpMetrics:
    """The requests counter and latency histogram, kept in plain numbers and handed to
    Prometheus as the very families (samples, `_created` series included) that
    prometheus_client's Counter and Histogram give: their children take a lock and make
    several calls per update, which cost more than anything else a cached page does.
    Updated and collected on the event loop."""

    def __init__(self, registry: CollectorRegistry, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.bounds = (*(float(b) for b in buckets), float("inf"))
        self._les = [floatToGoString(b) for b in self.bounds]  # type: ignore[no-untyped-call]
        #: (method, route, status) -> [count, created]
        self._requests: dict[tuple[str, str, int], list[float]] = {}
        self._latency: dict[tuple[str, str], _Latency] = {}
        registry.register(self)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        count = self._requests.get((method, route, status))
        if count is None:
            count = self._requests[(method, route, status)] = [0, time.time()]
        count[0] += 1
        series = self._latency.get((method, route))
        if series is None:
            series = self._latency[(method, route)] = _Latency(len(self.bounds))
        # the first bucket whose upper bound is >= seconds, as Histogram.observe finds it
        series.counts[bisect_left(self.bounds, seconds)] += 1
        series.sum += seconds

    def describe(self) -> Iterable[Metric]:
        return [self._requests_family(), self._latency_family()]

    def collect(self) -> Iterable[Metric]:
        created = prometheus_client.metrics._use_created
        requests = self._requests_family()
        for (method, route, status), (count, at) in list(self._requests.items()):
            requests.add_metric([method, route, str(status)], float(count), created=at if created else None)
        latency = self._latency_family()
        for (method, route), series in list(self._latency.items()):
            cumulative, acc = [], 0.0
            for le, n in zip(self._les, series.counts, strict=True):
                acc += n
                cumulative.append((le, acc))
            latency.add_metric([method, route], cumulative, series.sum)
            if created:
                latency.samples.append(
                    Sample(latency.name + "_created", {"method": method, "route": route}, series.created)
                )
        return [requests, latency]

    @staticmethod
    def _requests_family() -> CounterMetricFamily:
        return CounterMetricFamily("tracker_http_requests_total", "HTTP requests", labels=["method", "route", "status"])

    @staticmethod
    def _latency_family() -> HistogramMetricFamily:
        return HistogramMetricFamily(
            "tracker_http_request_duration_seconds", "HTTP request latency", labels=["method", "route"]
        )


class Metrics:
    """One registry per app, so tests and several apps in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpMetrics(self.registry)
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
    observe = metrics.http.observe

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
            observe(request.method, resource.canonical if resource is not None else "unmatched", status, elapsed)

    return middleware


CONTENT_TYPE = CONTENT_TYPE_LATEST
