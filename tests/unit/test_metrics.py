"""The request metrics kept in plain numbers scrape exactly as prometheus_client's own
Counter and Histogram would."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from tracker.metrics import LATENCY_BUCKETS, HttpMetrics

OBSERVATIONS = [
    ("GET", "/t/{token}", 200, 0.0004),
    ("GET", "/t/{token}", 200, 0.001),  # on a bound: that bucket, as Histogram.observe
    ("POST", "/v1/shipments", 201, 0.0025),
    ("GET", "/t/{token}", 304, 0.0),
    ("GET", "unmatched", 404, 10.0),
    ("GET", "/t/{token}", 429, 11.5),  # beyond the last bound: +Inf
    ("GET", "/t/{token}", 200, 0.037),
    ("POST", "/v1/shipments", 422, 1e-7),
]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The time both sides read when a series is first seen, so `_created` agrees."""
    now = [1_767_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


@pytest.fixture(params=[True, False], ids=["created", "no-created"])
def created_series(request: pytest.FixtureRequest) -> Iterator[None]:
    if not request.param:
        prometheus_client.disable_created_metrics()
    try:
        yield
    finally:
        prometheus_client.enable_created_metrics()


def _reference() -> tuple[CollectorRegistry, Callable[[str, str, int, float], None]]:
    """What the service used before: prometheus_client's own metrics."""
    registry = CollectorRegistry()
    requests = Counter("tracker_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry)
    latency = Histogram(
        "tracker_http_request_duration_seconds",
        "HTTP request latency",
        ["method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )

    def observe(method: str, route: str, status: int, seconds: float) -> None:
        requests.labels(method, route, str(status)).inc()
        latency.labels(method, route).observe(seconds)

    return registry, observe


@pytest.mark.usefixtures("created_series")
def test_scrape_is_what_prometheus_client_gives(clock: list[float]) -> None:
    reference, observe = _reference()
    registry = CollectorRegistry()
    ours = HttpMetrics(registry)
    for method, route, status, seconds in OBSERVATIONS:
        clock[0] += 0.25
        observe(method, route, status, seconds)
        ours.observe(method, route, status, seconds)
    assert generate_latest(registry) == generate_latest(reference)
    assert generate_openmetrics(registry) == generate_openmetrics(reference)


def test_names_are_reserved_in_the_registry() -> None:
    registry = CollectorRegistry()
    HttpMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Counter("tracker_http_requests_total", "again", registry=registry)
