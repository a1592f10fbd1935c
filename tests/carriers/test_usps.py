"""USPS adapter: sample bodies with the local-time quirks, and round trips to the simulator."""

from __future__ import annotations

import email.utils
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from carriers.base import (
    AuthError,
    BadResponse,
    CarrierSettings,
    CarrierUnavailable,
    RateLimited,
    TimeBasis,
)
from carriers.simulator.faults import fault_middleware
from carriers.simulator.journey import Journey, Step
from carriers.simulator.state import SimState
from carriers.simulator.usps import add_routes, render_event
from carriers.status import Status, SubStatus
from carriers.usps import STATUS, UspsAdapter, parse_body

SHARED = Path(os.environ.get("TRACKER_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
SAMPLES = SHARED / "carrier-samples" / "usps"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- samples ---------------------------------------------------------------------------


def test_delivered_parcel_locker_sample() -> None:
    [result] = parse_body(sample("tracking_v3_detail_delivered_parcel_locker.json"))
    assert result.tracking_number == "9400109104250532908587"
    assert (result.status, result.sub_status) == (Status.DELIVERED, SubStatus.PICKUP_POINT)
    assert (result.origin_country, result.destination_country) == ("US", "US")
    # UTC = eventTimestamp - GMTOffset(-05:00); seconds from GMTTimestamp where it agrees
    assert [(e.occurred_at, e.raw_code) for e in result.events] == [
        (utc(2024, 11, 15, 16, 32, 33), "GX"),
        (utc(2024, 11, 18, 16, 10, 31), "03"),
        (utc(2024, 11, 18, 22, 1, 35), "SF"),
        (utc(2024, 11, 18, 23, 2, 52), "10"),
        (utc(2024, 11, 19, 11, 16, 41), "T1"),
        (utc(2024, 11, 19, 17, 11, 23), "TL"),
        (utc(2024, 11, 19, 23, 7, 58), "TL"),
        (utc(2024, 11, 20, 6, 11, 52), "TL"),
        (utc(2024, 11, 20, 6, 13, 31), "A1"),
        (utc(2024, 11, 22, 13, 59, 45), "07"),
        (utc(2024, 11, 22, 14, 10, 45), "OF"),
        (utc(2024, 11, 22, 18, 58, 40), "01"),
    ]
    assert {e.time_basis for e in result.events} == {TimeBasis.OFFSET_GIVEN}
    assert {e.utc_offset_minutes for e in result.events} == {-300}
    assert result.events[-1].local_time == "2024-11-22T13:58:00"
    assert [e.status for e in result.events[:2]] == [Status.INFO_RECEIVED, Status.IN_TRANSIT]
    assert result.events[-2].status is Status.OUT_FOR_DELIVERY


def test_in_transit_sample_day_off_gmt_and_missing_gmt() -> None:
    [result] = parse_body(sample("tracking_v3_detail_in_transit_gmt_missing.json"))
    assert (result.status, result.sub_status) == (Status.IN_TRANSIT, SubStatus.ARRIVED)
    # expectedDeliveryTimeStamp 2024-11-29T00:00:00 in MILWAUKEE WI (CST, -06:00)
    assert result.estimated_delivery == utc(2024, 11, 29, 6, 0, 0)
    ma, accepted, departed, arrived = result.events
    # no GMT fields, no place: read where the shipper is (NEW BERLIN WI, CST)
    assert (ma.raw_code, ma.occurred_at, ma.time_basis) == (
        "MA",
        utc(2024, 11, 23, 6, 0, 0),
        TimeBasis.ZONE_ASSUMED,
    )
    assert ma.status is Status.INFO_RECEIVED
    # GMTTimestamp says 2024-11-25T00:26:14Z: the date is a day early
    assert accepted.occurred_at == utc(2024, 11, 26, 0, 26, 14)
    assert departed.occurred_at == utc(2024, 11, 26, 0, 31, 21)
    assert departed.local_time == "2024-11-25T18:31:00"
    assert arrived.occurred_at == utc(2024, 11, 26, 7, 44, 28)


def test_official_example_bogus_z_is_local_time() -> None:
    [result] = parse_body(sample("tracking_v3_detail_official_readme_example.json"))
    [event] = result.events
    # 07:31 in RICHMOND, VA on 2 August 2023 is EDT (-04:00)
    assert event.occurred_at == utc(2023, 8, 2, 11, 31, 0)
    assert event.time_basis is TimeBasis.ZONE_FROM_LOCATION
    assert event.utc_offset_minutes == -240
    assert (result.status, result.sub_status) == (Status.IN_TRANSIT, SubStatus.PICKED_UP)


def test_not_yet_available_is_pending_not_error() -> None:
    [result] = parse_body(sample("tracking_v3_not_found_400.json"), "9400100000000000000000")
    assert result.tracking_number == "9400100000000000000000"
    assert (result.found, result.status, result.sub_status, result.error) == (
        False,
        Status.PENDING,
        SubStatus.NOT_FOUND,
        None,
    )


def test_quota_error_body_is_bad_response() -> None:
    with pytest.raises(BadResponse, match="Exceeded quota"):
        parse_body(sample("error_429_quota_exceeded.json"))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"{",
        b"\xff",
        b"[" * 100_000,
        b'{"trackingEvents": 5}',
        b'{"trackingEvents": [{"eventTimestamp": "nope"}]}',
        b'{"trackingEvents": [{"eventTimestamp": "2024-01-01T10:00:00", "GMTOffset": "+99:00"}]}',
        b'{"error": "x"}',
    ],
)
def test_garbage_raises_only_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_body(body)


def test_status_table_covers_documented_codes() -> None:
    documented = [
        "GX",
        "MA",
        "80",
        "81",
        "82",
        "03",
        "PA",
        "TM",
        "10",
        "A1",
        "T1",
        "EF",
        "SF",
        "TL",
        "AD",
        "07",
        "PC",
        "06",
        "08",
        "15",
        "42",
        "OF",
        "02",
        "52",
        "53",
        "54",
        "55",
        "56",
        "30",
        "51",
        "71",
        "14",
        "16",
        "01",
        "17",
        "43",
        "09",
        "21",
        "22",
        "23",
        "24",
        "25",
        "26",
        "27",
        "28",
        "29",
        "31",
        "04",
        "05",
        "11",
        "44",
        "DX",
    ]
    assert set(documented) <= set(STATUS)


def test_customs_wording_and_string_services() -> None:
    body = (
        b'{"trackingNumber": "LX1", "services": "one", "emailEnabled": "true", "trackingEvents": ['
        b'{"eventType": "Held in Customs", "eventTimestamp": "2024-03-01T10:00:00", "GMTOffset": "-5:00",'
        b' "eventCode": "PC", "eventCountry": "UNITED STATES"}]}'
    )
    [result] = parse_body(body)
    [event] = result.events
    assert (event.status, event.sub_status) == (Status.EXCEPTION, SubStatus.CUSTOMS_HELD)
    assert event.occurred_at == utc(2024, 3, 1, 15, 0, 0)
    assert event.location is not None
    assert event.location.country == "US"


# --- adapter <-> simulator -------------------------------------------------------------

T0 = utc(2026, 1, 5, 2, 0, 0)


def fixture_journey(number: str) -> Journey:
    def step(at: datetime, status: Status, sub: SubStatus, text: str, place: tuple[str, ...]) -> Step:
        city, country, tz, region = place
        return Step(at, status, sub, text, city, country, tz, region)

    shenzhen = ("Shenzhen", "CN", "Asia/Shanghai", "")
    chicago = ("Chicago", "US", "America/Chicago", "IL")
    denver = ("Denver", "US", "America/Denver", "CO")
    steps = (
        step(T0, Status.INFO_RECEIVED, SubStatus.LABEL_CREATED, "Shipping label created", shenzhen),
        step(
            T0 + timedelta(hours=3, seconds=7), Status.IN_TRANSIT, SubStatus.PICKED_UP, "Accepted", shenzhen
        ),
        step(utc(2026, 1, 7, 0, 31, 21), Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING, "Customs", chicago),
        step(utc(2026, 1, 7, 5, 2, 9), Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED, "Released", chicago),
        step(utc(2026, 1, 8, 1, 40, 55), Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived", denver),
        step(utc(2026, 1, 8, 14, 1, 1), Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY, "Out", denver),
        step(utc(2026, 1, 8, 20, 15, 44), Status.DELIVERED, SubStatus.PICKUP_POINT, "Delivered", denver),
    )
    return Journey(number, "usps", "delivered", "CN", "US", steps, utc(2026, 1, 9), "K. TANAKA")


def fixture_lookup(number: str, carrier: str, state: SimState) -> Journey | None:
    return None if number.startswith("NOTFOUND") else fixture_journey(number)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + timedelta(days=10))


@pytest.fixture
def state(clock: FakeClock) -> SimState:
    return SimState(clock=clock)


@pytest.fixture
async def base_url(aiohttp_server: Callable[..., object], state: SimState) -> str:
    app = web.Application(middlewares=[fault_middleware(state, ["usps"])])
    add_routes(app, state, "/usps", journeys=fixture_lookup)
    server = await aiohttp_server(app)  # type: ignore[misc]
    return str(server.make_url("/usps"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_adapter(
    session: aiohttp.ClientSession,
    base_url: str,
    clock: FakeClock,
    *,
    secret: str = "sim-secret",
    timeout: float = 5,
) -> UspsAdapter:
    settings = CarrierSettings(
        base_url=base_url, client_id="sim-client", client_secret=secret, timeout=timeout
    )
    return UspsAdapter(session=session, settings=settings, clock=clock)


def test_simulator_renders_the_day_off_gmt_timestamp() -> None:
    step = fixture_journey("X").steps[2]
    event = render_event(step, None)
    assert event["eventTimestamp"] == "2026-01-06T18:31:21"
    assert (event["GMTTimestamp"], event["GMTOffset"]) == ("2026-01-06T00:31:21Z", "-06:00")


async def test_round_trip_gives_back_exact_instants(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock
) -> None:
    [result] = await make_adapter(session, base_url, clock).track(["9400111111111111111111"])
    journey = fixture_journey("9400111111111111111111")
    assert result.found
    assert result.error is None
    assert [e.occurred_at for e in result.events] == [s.at for s in journey.steps]
    assert [(e.status, e.sub_status) for e in result.events] == [
        (s.status, s.sub_status) for s in journey.steps
    ]
    assert result.events[0].time_basis is TimeBasis.ZONE_FROM_LOCATION
    assert result.signed_by == "K. TANAKA"
    assert (result.origin_country, result.destination_country) == ("CN", "US")


async def test_pending_when_no_update_yet(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    [result] = await make_adapter(session, base_url, clock).track(["NOTFOUND1"])
    assert (result.tracking_number, result.found, result.error) == ("NOTFOUND1", False, None)
    assert state.lookups[("usps", "NOTFOUND1")] == 1


async def test_one_request_per_number(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    results = await make_adapter(session, base_url, clock).track(["9400111111111111111111", "NOTFOUND2"])
    assert [r.found for r in results] == [True, False]
    assert state.requests["usps"] == 3  # one token, two lookups


async def test_bad_credentials_raise_auth_error(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock
) -> None:
    with pytest.raises(AuthError):
        await make_adapter(session, base_url, clock, secret="wrong").track(["9400111111111111111111"])


async def test_token_cached_then_renewed_after_expiry(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    adapter = make_adapter(session, base_url, clock)
    await adapter.track(["9400111111111111111111"])
    await adapter.track(["9400111111111111111111"])
    assert adapter.tokens.fetches == 1
    clock.advance(state.faults.token_ttl + 1)
    await adapter.track(["9400111111111111111111"])
    assert adapter.tokens.fetches == 2
    assert state.requests["usps"] == 5


async def test_token_refreshed_once_on_401(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    adapter = make_adapter(session, base_url, clock)
    await adapter.track(["9400111111111111111111"])
    state.tokens.clear()  # revoked on the server side
    [result] = await adapter.track(["9400111111111111111111"])
    assert result.found
    assert adapter.tokens.fetches == 2


async def test_refresh_happens_only_once(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    state.faults.token_ttl = 0
    adapter = make_adapter(session, base_url, clock)
    with pytest.raises(AuthError):
        await adapter.track(["9400111111111111111111"])
    assert adapter.tokens.fetches == 2
    assert state.requests["usps"] == 4


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), ("http-date", 45.0), (None, UspsAdapter.default_retry_after)],
)
async def test_rate_limited(
    session: aiohttp.ClientSession,
    base_url: str,
    clock: FakeClock,
    state: SimState,
    header: str | None,
    expected: float,
) -> None:
    if header == "http-date":
        header = email.utils.format_datetime(clock() + timedelta(seconds=45), usegmt=True)
    state.faults.retry_after = header
    state.faults.rate_429 = 1.0
    with pytest.raises(RateLimited) as info:
        await make_adapter(session, base_url, clock).track(["9400111111111111111111"])
    assert info.value.retry_after == expected


async def test_server_errors_are_unavailable(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    state.faults.rate_5xx = 1.0
    with pytest.raises(CarrierUnavailable):
        await make_adapter(session, base_url, clock).track(["9400111111111111111111"])


async def test_timeout_is_unavailable(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    state.faults.latency_ms = 300
    with pytest.raises(CarrierUnavailable):
        await make_adapter(session, base_url, clock, timeout=0.05).track(["9400111111111111111111"])


async def test_malformed_item_only_marks_that_item(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock
) -> None:
    good, bad = await make_adapter(session, base_url, clock).track(["9400111111111111111111", "MALFORMED9"])
    assert good.found
    assert good.error is None
    assert bad.tracking_number == "MALFORMED9"
    assert bad.error is not None
    assert not bad.found
