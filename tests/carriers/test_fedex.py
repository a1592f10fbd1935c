"""FedEx adapter: sample bodies parsed by hand-checked rules, and round trips to the simulator."""

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

from carriers.base import (
    AuthError,
    BadResponse,
    CarrierSettings,
    CarrierUnavailable,
    RateLimited,
    TimeBasis,
)
from carriers.fedex import STATUS, FedexAdapter, parse_response
from carriers.simulator.faults import fault_middleware
from carriers.simulator.fedex import add_routes
from carriers.simulator.journey import Journey, Step
from carriers.simulator.state import SimState
from carriers.status import Status, SubStatus

SHARED = Path(os.environ.get("TRACKER_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
SAMPLES = SHARED / "carrier-samples" / "fedex"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- samples ---------------------------------------------------------------------------


def test_delivered_sample_with_mixed_offsets() -> None:
    [result] = parse_response(sample("track_delivered_mixed_offsets.json"))
    assert result.tracking_number == "738488882438"
    assert result.found
    assert result.error is None
    assert (result.status, result.sub_status) == (Status.DELIVERED, SubStatus.SIGNED)
    assert result.signed_by == "CREILLY"
    assert result.shipment_ref == "12028~738488882438~FDEG"
    assert (result.origin_country, result.destination_country) == ("US", "US")
    # only standardTransitTimeWindow.ends is given: 2024-08-21T00:00:00-06:00
    assert result.estimated_delivery == utc(2024, 8, 21, 6, 0, 0)
    assert [e.occurred_at for e in result.events] == [
        utc(2024, 8, 15, 5, 0, 0),  # PU, naive midnight in MANKATO MN -> CDT (-05:00)
        utc(2024, 8, 15, 15, 36, 0),
        utc(2024, 8, 15, 23, 35, 0),
        utc(2024, 8, 15, 23, 40, 27),
        utc(2024, 8, 16, 0, 29, 25),
        utc(2024, 8, 16, 9, 34, 0),
        utc(2024, 8, 16, 12, 35, 16),
        utc(2024, 8, 16, 23, 39, 0),
        utc(2024, 8, 17, 12, 52, 11),
        utc(2024, 8, 18, 7, 39, 18),
        utc(2024, 8, 18, 20, 3, 54),
        utc(2024, 8, 19, 13, 13, 51),
        utc(2024, 8, 19, 18, 31, 0),
        utc(2024, 8, 20, 5, 29, 5),
        utc(2024, 8, 20, 10, 38, 0),
        utc(2024, 8, 20, 10, 47, 0),
        utc(2024, 8, 20, 16, 41, 57),
    ]
    first, last = result.events[0], result.events[-1]
    assert (first.raw_code, first.time_basis, first.local_time) == (
        "PU",
        TimeBasis.ZONE_FROM_LOCATION,
        "2024-08-15T00:00:00",
    )
    assert first.utc_offset_minutes == -300
    assert all(e.time_basis is TimeBasis.OFFSET_GIVEN for e in result.events[1:])
    assert (last.raw_code, last.status, last.local_time) == ("DL", Status.DELIVERED, "2024-08-20T12:41:57")
    assert last.location is not None
    assert last.location.label() == "Blue Point, NY, US"
    # OD carries derivedStatusCode IT: the eventType must win
    od = result.events[-2]
    assert (od.raw_code, od.status, od.sub_status) == (
        "OD",
        Status.OUT_FOR_DELIVERY,
        SubStatus.OUT_FOR_DELIVERY,
    )
    assert [e.sub_status for e in result.events[2:5]] == [
        SubStatus.ARRIVED,
        SubStatus.IN_TRANSIT,
        SubStatus.DEPARTED,
    ]


def test_openapi_example_with_not_found_item() -> None:
    first, second = parse_response(sample("track_openapi_example_with_notfound_item.json"))
    assert first.tracking_number == "123456789012"
    assert first.found
    assert first.error is None
    assert first.shipment_ref == "245822~123456789012~FDEG"
    # latest status PU with delayDetail DELAYED
    assert (first.status, first.sub_status) == (Status.IN_TRANSIT, SubStatus.DELAYED)
    assert [(e.occurred_at, e.raw_code) for e in first.events] == [(utc(2018, 2, 2, 19, 1, 0), "PU")]
    assert first.events[0].description == "Picked Up (Package available for clearance)"
    # window begins naive in SEATTLE WA (PDT, -07:00); ends carries -06:00
    assert first.estimated_delivery == utc(2021, 10, 1, 15, 0, 0)
    assert first.estimated_delivery_end == utc(2021, 10, 15, 6, 0, 0)
    assert first.signed_by == "Reciever"
    assert second.tracking_number == "39936862321"
    assert (second.found, second.status, second.sub_status, second.error) == (
        False,
        Status.PENDING,
        SubStatus.NOT_FOUND,
        None,
    )
    assert second.events == []


def test_not_found_item_sample() -> None:
    [result] = parse_response(sample("track_not_found_item.json"))
    assert result.tracking_number == "02399989320920003663"
    assert not result.found
    assert result.sub_status is SubStatus.NOT_FOUND
    assert result.error is None
    assert result.raw_status == "TRACKING.TRACKINGNUMBER.NOTFOUND"


def test_request_level_error_sample_is_bad_response() -> None:
    with pytest.raises(BadResponse, match=r"TRACKING\.TRACKINGNUMBER\.EMPTY"):
        parse_response(sample("error_tracking_number_empty.json"))


def test_other_item_error_sets_error() -> None:
    body = (
        b'{"output": {"completeTrackResults": [{"trackingNumber": "1", "trackResults": '
        b'[{"error": {"code": "TRACKING.TRACKINGNUMBER.INVALID", "message": "Invalid"}}]}]}}'
    )
    [result] = parse_response(body)
    assert not result.found
    assert result.error == "TRACKING.TRACKINGNUMBER.INVALID: Invalid"


@pytest.mark.parametrize(
    "body", [b"", b"null", b"[]", b"{", b'{"output": 3}', b"\xff\xfe", b"[" * 100_000, b'"x"']
)
def test_garbage_raises_only_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_response(body)


def test_malformed_items_do_not_sink_the_batch() -> None:
    body = (
        b'{"output": {"completeTrackResults": ['
        b'{"trackingNumber": "A", "trackResults": [7]},'
        b'{"trackingNumber": "B", "trackResults": [{"scanEvents": [{"date": 5}]}]},'
        b'{"trackingNumber": "C", "trackResults": [{"latestStatusDetail": {"code": "DL"}}]}]}}'
    )
    a, b, c = parse_response(body)
    assert a.error
    assert b.error
    assert c.error is None
    assert (c.found, c.status) == (True, Status.DELIVERED)


def test_status_table_covers_documented_codes() -> None:
    documented = [
        "OC",
        "IN",
        "EP",
        "MD",
        "OX",
        "PU",
        "PX",
        "AP",
        "OF",
        "AR",
        "AF",
        "AA",
        "AC",
        "AX",
        "DP",
        "EA",
        "EO",
        "FD",
        "IT",
        "IX",
        "LO",
        "PF",
        "PL",
        "PM",
        "SF",
        "TR",
        "AO",
        "AE",
        "OD",
        "ED",
        "AD",
        "DE",
        "HL",
        "HP",
        "DL",
        "RS",
        "RT",
        "SE",
        "CD",
        "DY",
        "DD",
        "PY",
        "HA",
        "CA",
        "RD",
        "RL",
    ]
    assert set(documented) <= set(STATUS)
    assert STATUS["CD"] == (Status.EXCEPTION, SubStatus.CUSTOMS_HELD)
    assert STATUS["DY"] == (Status.IN_TRANSIT, SubStatus.DELAYED)


def test_unknown_code_maps_to_safe_parent_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    scan = '{"date": "2024-01-01T10:00:00+01:00", "eventType": "ZQ", "derivedStatusCode": ""}'
    body = (
        '{"output": {"completeTrackResults": [{"trackingNumber": "1", "trackResults": '
        f'[{{"scanEvents": [{scan}, {scan}]}}]}}]}}}}'
    ).encode()
    with caplog.at_level(logging.WARNING, logger="carriers.status"):
        [result] = parse_response(body)
        parse_response(body)
    assert [(e.status, e.sub_status) for e in result.events] == [(Status.IN_TRANSIT, SubStatus.OTHER)] * 2
    assert len([r for r in caplog.records if getattr(r, "raw_code", "") == "ZQ"]) == 1


# --- adapter <-> simulator -------------------------------------------------------------

T0 = utc(2026, 1, 5, 2, 0, 0)


def fixture_journey(number: str) -> Journey:
    def step(hours: float, status: Status, sub: SubStatus, text: str, place: tuple[str, ...]) -> Step:
        city, country, tz, region = place
        return Step(T0 + timedelta(hours=hours), status, sub, text, city, country, tz, region)

    shenzhen = ("Shenzhen", "CN", "Asia/Shanghai", "")
    la = ("Los Angeles", "US", "America/Los_Angeles", "CA")
    chicago = ("Chicago", "US", "America/Chicago", "IL")
    steps = (
        step(0, Status.INFO_RECEIVED, SubStatus.LABEL_CREATED, "Shipment information sent", shenzhen),
        step(5.2525, Status.IN_TRANSIT, SubStatus.PICKED_UP, "Picked up", shenzhen),
        step(20.5, Status.IN_TRANSIT, SubStatus.DEPARTED, "Departed", shenzhen),
        step(33.75, Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING, "Clearance in progress", la),
        step(40.1, Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED, "Cleared customs", la),
        step(41, Status.IN_TRANSIT, SubStatus.PICKED_UP, "Picked up by domestic hub", la),
        step(70.25, Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived at FedEx location", chicago),
        step(80, Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY, "On FedEx vehicle", chicago),
        step(84.5, Status.DELIVERED, SubStatus.SIGNED, "Delivered", chicago),
    )
    return Journey(number, "fedex", "delivered", "CN", "US", steps, T0 + timedelta(days=4), "J. DOE")


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
    app = web.Application(middlewares=[fault_middleware(state, ["fedex"])])
    add_routes(app, state, "/fedex", journeys=fixture_lookup)
    server = await aiohttp_server(app)  # type: ignore[misc]
    return str(server.make_url("/fedex"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_adapter(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, **kw: object
) -> FedexAdapter:
    settings = CarrierSettings(
        base_url=base_url,
        client_id=str(kw.pop("client_id", "sim-client")),
        client_secret=str(kw.pop("client_secret", "sim-secret")),
        timeout=float(kw.pop("timeout", 5.0)),  # type: ignore[arg-type]
    )
    return FedexAdapter(session=session, settings=settings, clock=clock)


async def test_round_trip_gives_back_exact_instants(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock
) -> None:
    adapter = make_adapter(session, base_url, clock)
    [result] = await adapter.track(["794600000001"])
    journey = fixture_journey("794600000001")
    assert result.found
    assert result.error is None
    assert [e.occurred_at for e in result.events] == [s.at for s in journey.steps]
    assert [e.status for e in result.events] == [s.status for s in journey.steps]
    assert [e.sub_status for e in result.events[:7]] == [s.sub_status for s in journey.steps[:7]]
    # pick-up scans come naive and are read in the zone of their place
    picked = [e for e in result.events if e.raw_code == "PU"]
    assert {e.time_basis for e in picked} == {TimeBasis.ZONE_FROM_LOCATION}
    assert (result.status, result.sub_status, result.signed_by) == (
        Status.DELIVERED,
        SubStatus.SIGNED,
        "J. DOE",
    )
    assert (result.origin_country, result.destination_country) == ("CN", "US")


async def test_only_visible_steps_and_eta(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock
) -> None:
    clock.now = T0 + timedelta(hours=50)
    [result] = await make_adapter(session, base_url, clock).track(["794600000001"])
    assert len(result.events) == 6
    assert result.status is Status.IN_TRANSIT
    assert result.estimated_delivery == T0 + timedelta(days=4)


async def test_not_found_number(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    [result] = await make_adapter(session, base_url, clock).track(["NOTFOUND123"])
    assert (result.found, result.sub_status, result.error) == (False, SubStatus.NOT_FOUND, None)
    assert state.lookups[("fedex", "NOTFOUND123")] == 1


async def test_bad_credentials_raise_auth_error(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock
) -> None:
    adapter = make_adapter(session, base_url, clock, client_secret="wrong")
    with pytest.raises(AuthError):
        await adapter.track(["794600000001"])


async def test_token_is_cached(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    adapter = make_adapter(session, base_url, clock)
    await adapter.track(["794600000001"])
    await adapter.track(["794600000002"])
    assert adapter.tokens.fetches == 1
    assert state.requests["fedex"] == 3


async def test_token_refreshed_once_on_401(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    # the server expires tokens after 10 minutes although FedEx announces 3599 seconds
    state.faults.token_ttl = 600
    adapter = make_adapter(session, base_url, clock)
    await adapter.track(["794600000001"])
    clock.advance(700)
    [result] = await adapter.track(["794600000001"])
    assert result.found
    assert adapter.tokens.fetches == 2
    assert state.requests["fedex"] == 5  # token, track, track (401), token, track


async def test_refresh_happens_only_once(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    state.faults.token_ttl = 0
    adapter = make_adapter(session, base_url, clock)
    with pytest.raises(AuthError):
        await adapter.track(["794600000001"])
    assert adapter.tokens.fetches == 2
    assert state.requests["fedex"] == 4


@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("http-date", 30.0), (None, FedexAdapter.default_retry_after)],
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
        header = email.utils.format_datetime(clock() + timedelta(seconds=30), usegmt=True)
    state.faults.retry_after = header
    state.faults.rate_429 = 1.0
    with pytest.raises(RateLimited) as info:
        await make_adapter(session, base_url, clock).track(["794600000001"])
    assert info.value.retry_after == expected


async def test_server_errors_are_unavailable(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    state.faults.rate_5xx = 1.0
    with pytest.raises(CarrierUnavailable):
        await make_adapter(session, base_url, clock).track(["794600000001"])


async def test_timeout_is_unavailable(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    state.faults.latency_ms = 300
    with pytest.raises(CarrierUnavailable):
        await make_adapter(session, base_url, clock, timeout=0.05).track(["794600000001"])


async def test_truncated_body_is_bad_response(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    state.faults.rate_malformed = 1.0
    with pytest.raises(BadResponse):
        await make_adapter(session, base_url, clock).track(["794600000001"])


async def test_malformed_item_only_marks_that_item(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock
) -> None:
    good, bad = await make_adapter(session, base_url, clock).track(["794600000001", "SBXMALFORMED1"])
    assert good.found
    assert good.error is None
    assert bad.tracking_number == "SBXMALFORMED1"
    assert bad.error is not None
    assert not bad.found


async def test_reused_number_yields_one_result_per_shipment(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock
) -> None:
    results = await make_adapter(session, base_url, clock).track(["REUSED77"])
    assert [r.tracking_number for r in results] == ["REUSED77", "REUSED77"]
    assert len({r.shipment_ref for r in results}) == 2


async def test_batches_are_cut_at_30(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    numbers = [f"7946{i:08d}" for i in range(31)]
    results = await make_adapter(session, base_url, clock).track(numbers)
    assert [r.tracking_number for r in results] == numbers
    assert state.requests["fedex"] == 3  # one token, two track calls


async def test_simulator_refuses_more_than_30(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock
) -> None:
    adapter = make_adapter(session, base_url, clock)
    token = await adapter.tokens.get()
    body = {"trackingInfo": [{"trackingNumberInfo": {"trackingNumber": f"7946{i:08d}"}} for i in range(31)]}
    async with session.post(
        f"{base_url}/track/v1/trackingnumbers", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 400
        payload = await resp.json()
    assert payload["errors"][0]["code"] == "TRACKING.TRACKINGNUMBER.LIMIT.EXCEEDED"


async def test_request_shape_reaches_simulator(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, state: SimState
) -> None:
    await make_adapter(session, base_url, clock).track(["794600000001", "794600000002"])
    assert state.lookups[("fedex", "794600000001")] == 1
    assert state.lookups[("fedex", "794600000002")] == 1
