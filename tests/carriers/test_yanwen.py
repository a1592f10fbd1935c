"""Yanwen adapter: the sample body, code families, and round trips to the simulator."""

from __future__ import annotations

import email.utils
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from carriers.base import AuthError, BadResponse, CarrierSettings, CarrierUnavailable, RateLimited, TimeBasis
from carriers.simulator.faults import fault_middleware
from carriers.simulator.journey import Journey, Step
from carriers.simulator.state import SimState
from carriers.simulator.yanwen import add_routes
from carriers.status import Status, SubStatus
from carriers.yanwen import YanwenAdapter, parse_response, status_of

SHARED = Path(os.environ.get("TRACKER_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
SAMPLES = SHARED / "carrier-samples" / "yanwen"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_sample() -> None:
    [result] = parse_response((SAMPLES / "tracking_response_example.json").read_bytes())
    assert (result.tracking_number, result.found) == ("00340434281410767138", True)
    assert (result.status, result.sub_status, result.raw_status) == (
        Status.IN_TRANSIT,
        SubStatus.IN_TRANSIT,
        "SC20",
    )
    [event] = result.events
    # 18:52:19 at "+8"
    assert event.occurred_at == utc(2019, 8, 15, 10, 52, 19)
    assert (event.time_basis, event.utc_offset_minutes, event.local_time) == (
        TimeBasis.OFFSET_GIVEN,
        480,
        "2019-08-15T18:52:19",
    )
    assert (event.raw_code, event.sub_status, event.description) == (
        "PU10",
        SubStatus.PICKED_UP,
        "Yanwen Acceptance",
    )
    assert event.location is None


def test_not_found_and_delivered() -> None:
    body = (
        b'{"code": 0, "result": [{"tracking_number": "A", "tracking_status": "NOTFOUND", "checkpoints": []},'
        b'{"tracking_number": "B", "tracking_status": "LM40",'
        b' "checkpoints": [{"time_stamp": "2024-02-01T08:00:00",'
        b' "time_zone": "-5", "tracking_status": "LM40", "message": "Delivered", "location": "New York"}]}]}'
    )
    missing, delivered = parse_response(body)
    assert (missing.found, missing.sub_status, missing.error) == (False, SubStatus.NOT_FOUND, None)
    assert delivered.status is Status.DELIVERED
    assert delivered.events[0].occurred_at == utc(2024, 2, 1, 13, 0, 0)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("PU10", (Status.IN_TRANSIT, SubStatus.PICKED_UP)),
        ("SC20", (Status.IN_TRANSIT, SubStatus.IN_TRANSIT)),
        ("LM40", (Status.DELIVERED, SubStatus.OTHER)),
        ("NOTFOUND", (Status.PENDING, SubStatus.NOT_FOUND)),
        ("PU99", (Status.IN_TRANSIT, SubStatus.PICKED_UP)),
        ("LH31", (Status.IN_TRANSIT, SubStatus.DEPARTED)),
        ("CC50", (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING)),
        ("LM15", (Status.IN_TRANSIT, SubStatus.HANDED_TO_LAST_MILE)),
    ],
)
def test_codes_and_families(code: str, expected: tuple[Status, SubStatus]) -> None:
    assert status_of(code) == expected


def test_unknown_code_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="carriers.status"):
        assert status_of("ZZ77") == (Status.IN_TRANSIT, SubStatus.OTHER)
        status_of("ZZ77")
    assert len([r for r in caplog.records if getattr(r, "raw_code", "") == "ZZ77"]) == 1


def test_missing_time_zone_assumes_china() -> None:
    body = (
        b'{"code": 0, "result": [{"tracking_number": "A",'
        b' "checkpoints": [{"time_stamp": "2024-02-01T08:00:00"}]}]}'
    )
    [result] = parse_response(body)
    assert (result.events[0].occurred_at, result.events[0].time_basis) == (
        utc(2024, 2, 1, 0, 0, 0),
        TimeBasis.ZONE_ASSUMED,
    )


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b"\xff", b"[" * 100_000, b'{"code": 500, "message": "x"}', b'{"code": 0, "result": {}}'],
)
def test_garbage_raises_only_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_response(body)


def test_malformed_items_do_not_sink_the_batch() -> None:
    body = (
        b'{"code": 0, "result": [3, {"tracking_number": "B", "checkpoints": [{"time_stamp": 1}]},'
        b' {"tracking_number": "C"}]}'
    )
    a, b, c = parse_response(body)
    assert a.error
    assert b.error
    assert c.error is None


# --- adapter <-> simulator -------------------------------------------------------------

T0 = utc(2026, 1, 5, 2, 0, 0)


def fixture_journey(number: str) -> Journey:
    def step(hours: float, status: Status, sub: SubStatus, place: tuple[str, str, str]) -> Step:
        city, country, tz = place
        return Step(T0 + timedelta(hours=hours), status, sub, sub.value, city, country, tz)

    yiwu, delhi, paris = (
        ("Yiwu", "CN", "Asia/Shanghai"),
        ("Delhi", "IN", "Asia/Kolkata"),
        ("Paris", "FR", "Europe/Paris"),
    )
    steps = (
        step(0, Status.INFO_RECEIVED, SubStatus.LABEL_CREATED, yiwu),
        step(2.1, Status.IN_TRANSIT, SubStatus.PICKED_UP, yiwu),
        step(9.75, Status.IN_TRANSIT, SubStatus.DEPARTED, yiwu),
        step(30.3333, Status.IN_TRANSIT, SubStatus.ARRIVED, delhi),
        step(50.5, Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING, paris),
        step(60, Status.IN_TRANSIT, SubStatus.HANDED_TO_LAST_MILE, paris),
        step(75.25, Status.DELIVERED, SubStatus.LEFT_AT_DOOR, paris),
    )
    return Journey(number, "yanwen", "delivered", "CN", "FR", steps)


def fixture_lookup(number: str, carrier: str, state: SimState) -> Journey | None:
    return None if number.startswith("NOTFOUND") else fixture_journey(number)


@pytest.fixture
def state() -> SimState:
    return SimState(clock=lambda: T0 + timedelta(days=5))


@pytest.fixture
async def base_url(aiohttp_server: Callable[..., object], state: SimState) -> str:
    app = web.Application(middlewares=[fault_middleware(state, ["yanwen"])])
    add_routes(app, state, "/yanwen", journeys=fixture_lookup)
    server = await aiohttp_server(app)  # type: ignore[misc]
    return str(server.make_url("/yanwen"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_adapter(
    session: aiohttp.ClientSession, base_url: str, *, key: str = "sim-key", timeout: float = 5
) -> YanwenAdapter:
    settings = CarrierSettings(base_url=base_url, api_key=key, timeout=timeout)
    return YanwenAdapter(session=session, settings=settings, clock=lambda: T0 + timedelta(days=5))


async def test_round_trip_gives_back_exact_instants(session: aiohttp.ClientSession, base_url: str) -> None:
    [result] = await make_adapter(session, base_url).track(["YW123456789CN"])
    steps = [s for s in fixture_journey("x").steps if s.status is not Status.INFO_RECEIVED]
    assert [e.occurred_at for e in result.events] == [s.at for s in steps]
    assert [e.utc_offset_minutes for e in result.events] == [480, 480, 330, 60, 60, 60]
    assert [e.raw_code for e in result.events] == ["PU10", "LH30", "SC20", "CC30", "LM10", "LM40"]
    assert (result.status, result.raw_status) == (Status.DELIVERED, "LM40")


async def test_batch_of_40_and_not_found(
    session: aiohttp.ClientSession, base_url: str, state: SimState
) -> None:
    numbers = [f"YW{i:09d}CN" for i in range(40)] + ["NOTFOUND1"]
    results = await make_adapter(session, base_url).track(numbers)
    assert [r.tracking_number for r in results] == numbers
    assert (results[-1].found, results[-1].sub_status) == (False, SubStatus.NOT_FOUND)
    assert state.requests["yanwen"] == 2
    assert state.lookups[("yanwen", "NOTFOUND1")] == 1


async def test_wrong_customer_number_is_auth_error(session: aiohttp.ClientSession, base_url: str) -> None:
    with pytest.raises(AuthError):
        await make_adapter(session, base_url, key="nope").track(["YW123456789CN"])


async def test_malformed_item_only_marks_that_item(session: aiohttp.ClientSession, base_url: str) -> None:
    good, bad = await make_adapter(session, base_url).track(["YW123456789CN", "MALFORMED2"])
    assert good.found
    assert good.error is None
    assert bad.error is not None


@pytest.mark.parametrize(("header", "expected"), [("9", 9.0), ("http-date", 90.0), (None, 60.0)])
async def test_rate_limited(
    session: aiohttp.ClientSession, base_url: str, state: SimState, header: str | None, expected: float
) -> None:
    if header == "http-date":
        header = email.utils.format_datetime(T0 + timedelta(days=5, seconds=90), usegmt=True)
    state.faults.retry_after = header
    state.faults.rate_429 = 1.0
    with pytest.raises(RateLimited) as info:
        await make_adapter(session, base_url).track(["YW123456789CN"])
    assert info.value.retry_after == expected


async def test_server_errors_and_timeouts_are_unavailable(
    session: aiohttp.ClientSession, base_url: str, state: SimState
) -> None:
    state.faults.rate_5xx = 1.0
    with pytest.raises(CarrierUnavailable):
        await make_adapter(session, base_url).track(["YW123456789CN"])
    state.faults.rate_5xx = 0.0
    state.faults.latency_ms = 300
    with pytest.raises(CarrierUnavailable):
        await make_adapter(session, base_url, timeout=0.05).track(["YW123456789CN"])
