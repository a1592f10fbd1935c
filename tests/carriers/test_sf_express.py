"""SF Express adapter: the sample payload, the signature, and round trips to the simulator."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
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
from carriers.sf_express import OPCODE, SECONDARY, SfExpressAdapter, build_form, msg_digest, parse_response
from carriers.simulator.faults import fault_middleware
from carriers.simulator.journey import Journey, Step
from carriers.simulator.sf_express import add_routes
from carriers.simulator.state import SimState
from carriers.status import Status, SubStatus

SHARED = Path(os.environ.get("TRACKER_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
SAMPLES = SHARED / "carrier-samples" / "sf_express"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def wrap(payload: dict[str, object], code: str = "A1000") -> bytes:
    return json.dumps(
        {"apiErrorMsg": "", "apiResponseID": "X", "apiResultCode": code, "apiResultData": json.dumps(payload)}
    ).encode()


# --- samples ---------------------------------------------------------------------------


def check_sample_result(body: bytes) -> None:
    [result] = parse_response(body)
    assert result.tracking_number == "SF1011603494291"
    assert result.found
    assert (result.status, result.sub_status) == (Status.DELIVERED, SubStatus.SIGNED)
    picked, signed = result.events
    # China time, +08:00
    assert (picked.occurred_at, picked.raw_code, picked.sub_status) == (
        utc(2019, 5, 9, 2, 11, 26),
        "50",
        SubStatus.PICKED_UP,
    )
    assert (signed.occurred_at, signed.raw_code, signed.description) == (
        utc(2019, 5, 9, 10, 11, 26),
        "80",
        "已签收",
    )
    assert {e.time_basis for e in result.events} == {TimeBasis.ZONE_ASSUMED}
    assert {e.utc_offset_minutes for e in result.events} == {480}
    assert picked.local_time == "2019-05-09T10:11:26"


def test_sample_business_payload() -> None:
    check_sample_result((SAMPLES / "route_query_msgdata_example.json").read_bytes())


def test_sample_inside_gateway_envelope_is_decoded_twice() -> None:
    payload = json.loads((SAMPLES / "route_query_msgdata_example.json").read_bytes())
    check_sample_result(wrap(payload))


def test_secondary_status_wins_and_customs_codes() -> None:
    routes = [
        {
            "acceptTime": "2024-03-01 09:00:00",
            "acceptAddress": "香港",
            "opCode": "30",
            "secondaryStatusCode": "204",
        },
        {
            "acceptTime": "2024-03-01 18:30:00",
            "acceptAddress": "深圳",
            "opCode": "30",
            "secondaryStatusCode": "205",
        },
    ]
    [result] = parse_response(
        wrap({"success": True, "msgData": {"routeResps": [{"mailNo": "SF1", "routes": routes}]}})
    )
    held, released = result.events
    assert held.sub_status is SubStatus.CUSTOMS_PROCESSING
    assert released.sub_status is SubStatus.CUSTOMS_RELEASED
    # Hong Kong names its own place: the zone comes from the location
    assert (held.time_basis, held.occurred_at) == (TimeBasis.ZONE_FROM_LOCATION, utc(2024, 3, 1, 1, 0, 0))
    assert held.location is not None
    assert held.location.country == "HK"


def test_empty_routes_are_not_found() -> None:
    [result] = parse_response(
        wrap({"success": True, "msgData": {"routeResps": [{"mailNo": "SF2", "routes": []}]}})
    )
    assert (result.tracking_number, result.found, result.sub_status) == ("SF2", False, SubStatus.NOT_FOUND)


def test_status_tables_cover_documented_codes() -> None:
    assert {"101", "201", "204", "205", "301", "1301", "401"} <= set(SECONDARY)
    assert {"50", "54", "30", "31", "36", "105", "106", "310", "70", "80"} <= set(OPCODE)
    assert OPCODE["80"] == (Status.DELIVERED, SubStatus.SIGNED)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"\xff",
        b"[" * 100_000,
        b'{"apiResultCode": "A1006", "apiErrorMsg": "bad"}',
        b'{"apiResultCode": "A1000", "apiResultData": "{oops"}',
        b'{"apiResultCode": "A1000", "apiResultData": "[]"}',
        b'{"success": false, "errorCode": "8000", "errorMsg": "no"}',
        b'{"success": true, "msgData": {"routeResps": 3}}',
    ],
)
def test_garbage_raises_only_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_response(body)


def test_malformed_route_marks_only_its_waybill() -> None:
    resps = [{"mailNo": "A", "routes": [{"acceptTime": "x"}]}, {"mailNo": "B", "routes": 4}, 5]
    a, b, c = parse_response(wrap({"success": True, "msgData": {"routeResps": resps}}))
    assert (a.tracking_number, b.tracking_number) == ("A", "B")
    assert a.error
    assert b.error
    assert c.error


def test_digest_known_answer() -> None:
    # computed independently: md5 over the URL-encoded concatenation, then base64
    msg, ts, word = '{"trackingNumber":["SF1 2"]}', "1700000000000", "w~*"
    encoded = "%7B%22trackingNumber%22%3A%5B%22SF1+2%22%5D%7D1700000000000w%7E*"
    expected = base64.b64encode(hashlib.md5(encoded.encode()).digest()).decode()
    assert msg_digest(msg, ts, word) == expected


def test_form_fields() -> None:
    form = build_form(
        ["SF1", "SF2"], partner_id="P", check_word="W", timestamp_ms=5, request_id="R", phone="1234"
    )
    assert (form["partnerID"], form["requestID"], form["serviceCode"], form["timestamp"]) == (
        "P",
        "R",
        "EXP_RECE_SEARCH_ROUTES",
        "5",
    )
    data = json.loads(form["msgData"])
    assert data["trackingNumber"] == ["SF1", "SF2"]
    assert data["checkPhoneNo"] == "1234,1234"
    assert form["msgDigest"] == msg_digest(form["msgData"], "5", "W")


# --- adapter <-> simulator -------------------------------------------------------------

T0 = utc(2026, 1, 5, 2, 0, 0)


def fixture_journey(number: str) -> Journey:
    def step(hours: float, status: Status, sub: SubStatus, place: tuple[str, str, str]) -> Step:
        city, country, tz = place
        return Step(T0 + timedelta(hours=hours), status, sub, f"{sub.value}", city, country, tz)

    sz, hk = ("深圳", "CN", "Asia/Shanghai"), ("Singapore", "SG", "Asia/Singapore")
    steps = (
        step(0, Status.INFO_RECEIVED, SubStatus.LABEL_CREATED, sz),
        step(1.5, Status.IN_TRANSIT, SubStatus.PICKED_UP, sz),
        step(6.25, Status.IN_TRANSIT, SubStatus.IN_TRANSIT, sz),
        step(20.0125, Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING, hk),
        step(26, Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED, hk),
        step(30.5, Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY, hk),
        step(33.2, Status.DELIVERED, SubStatus.SIGNED, hk),
    )
    return Journey(number, "sf_express", "delivered", "CN", "SG", steps)


def fixture_lookup(number: str, carrier: str, state: SimState) -> Journey | None:
    return None if number.startswith("NOTFOUND") else fixture_journey(number)


@pytest.fixture
def state() -> SimState:
    return SimState(clock=lambda: T0 + timedelta(days=5))


@pytest.fixture
async def base_url(aiohttp_server: Callable[..., object], state: SimState) -> str:
    app = web.Application(middlewares=[fault_middleware(state, ["sf_express"])])
    add_routes(app, state, "/sf_express", journeys=fixture_lookup)
    server = await aiohttp_server(app)  # type: ignore[misc]
    return str(server.make_url("/sf_express"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_adapter(
    session: aiohttp.ClientSession,
    base_url: str,
    *,
    partner: str = "SIMPARTNER",
    word: str = "sim-check-word",
    timeout: float = 5,
) -> SfExpressAdapter:
    settings = CarrierSettings(base_url=base_url, client_id=partner, client_secret=word, timeout=timeout)
    return SfExpressAdapter(session=session, settings=settings, clock=lambda: T0 + timedelta(days=5))


async def test_round_trip_gives_back_exact_instants(session: aiohttp.ClientSession, base_url: str) -> None:
    [result] = await make_adapter(session, base_url).track(["SF1234567890"])
    steps = [s for s in fixture_journey("x").steps if s.status is not Status.INFO_RECEIVED]
    assert [e.occurred_at for e in result.events] == [s.at for s in steps]
    assert [(e.status, e.sub_status) for e in result.events] == [(s.status, s.sub_status) for s in steps]
    assert (result.status, result.found) == (Status.DELIVERED, True)


async def test_batch_and_not_found(session: aiohttp.ClientSession, base_url: str, state: SimState) -> None:
    numbers = [f"SF{i:010d}" for i in range(11)] + ["NOTFOUND1"]
    results = await make_adapter(session, base_url).track(numbers)
    assert [r.tracking_number for r in results] == numbers
    assert results[-1].found is False
    assert state.requests["sf_express"] == 2  # cut at 10 a call


async def test_wrong_check_word_fails_signature(session: aiohttp.ClientSession, base_url: str) -> None:
    with pytest.raises(AuthError, match="A1006"):
        await make_adapter(session, base_url, word="wrong").track(["SF1234567890"])


async def test_unknown_partner_is_auth_error(session: aiohttp.ClientSession, base_url: str) -> None:
    with pytest.raises(AuthError, match="A1004"):
        await make_adapter(session, base_url, partner="OTHER").track(["SF1234567890"])


async def test_simulator_checks_the_digest_itself(session: aiohttp.ClientSession, base_url: str) -> None:
    form = build_form(
        ["SF1"],
        partner_id="SIMPARTNER",
        check_word="sim-check-word",
        timestamp_ms=1,
        request_id="r",
        phone="",
    )
    form["msgData"] = form["msgData"].replace("SF1", "SF2")  # tampered after signing
    async with session.post(f"{base_url}/std/service", data=form) as resp:
        body = await resp.json()
    assert body["apiResultCode"] == "A1006"


async def test_business_error_marks_every_number(
    session: aiohttp.ClientSession, base_url: str, state: SimState
) -> None:
    adapter = make_adapter(session, base_url)
    results = await adapter._query([f"SF{i:010d}" for i in range(11)])  # past the simulator's limit
    assert len(results) == 11
    assert all(r.error and not r.found for r in results)


async def test_malformed_item_only_marks_that_item(session: aiohttp.ClientSession, base_url: str) -> None:
    good, bad = await make_adapter(session, base_url).track(["SF1234567890", "SFMALFORMED1"])
    assert good.found
    assert good.error is None
    assert bad.error is not None


@pytest.mark.parametrize(("header", "expected"), [("5", 5.0), ("http-date", 20.0), (None, 60.0)])
async def test_rate_limited(
    session: aiohttp.ClientSession, base_url: str, state: SimState, header: str | None, expected: float
) -> None:
    if header == "http-date":
        header = email.utils.format_datetime(T0 + timedelta(days=5, seconds=20), usegmt=True)
    state.faults.retry_after = header
    state.faults.rate_429 = 1.0
    with pytest.raises(RateLimited) as info:
        await make_adapter(session, base_url).track(["SF1234567890"])
    assert info.value.retry_after == expected


async def test_server_errors_and_timeouts_are_unavailable(
    session: aiohttp.ClientSession, base_url: str, state: SimState
) -> None:
    state.faults.rate_5xx = 1.0
    with pytest.raises(CarrierUnavailable):
        await make_adapter(session, base_url).track(["SF1234567890"])
    state.faults.rate_5xx = 0.0
    state.faults.latency_ms = 300
    with pytest.raises(CarrierUnavailable):
        await make_adapter(session, base_url, timeout=0.05).track(["SF1234567890"])
