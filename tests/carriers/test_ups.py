"""UPS adapter: public samples, time rules, OAuth2 token handling and simulator round trips."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from carriers.base import AuthError, BadResponse, CarrierUnavailable, RateLimited, TimeBasis
from carriers.simulator.journeys import journey_for
from carriers.status import Status, SubStatus
from carriers.ups import STATUS, UpsAdapter, map_status, parse_body
from tests.carriers.sim_helpers import ManualClock, harness, samples_dir

Server = Callable[[web.Application], Awaitable[TestServer]]
SAMPLES = samples_dir() / "ups"
START = datetime(2026, 4, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def example() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLES / "track_v1_openapi_example.json").read_bytes())
    return doc


def with_activities(*activities: dict[str, Any], **package: Any) -> bytes:
    doc = example()
    doc["trackResponse"]["shipment"][0]["package"][0]["activity"] = list(activities)
    doc["trackResponse"]["shipment"][0]["package"][0].update(package)
    return json.dumps(doc).encode()


# --- the public samples -----------------------------------------------------------------


def test_openapi_example() -> None:
    [result] = parse_body((SAMPLES / "track_v1_openapi_example.json").read_bytes())
    assert result.tracking_number == "1Z023E2X0214323462"
    assert result.shipment_ref == "string"  # the spec's placeholder package number
    assert result.found
    assert result.error is None
    assert (result.status, result.sub_status, result.raw_status) == (
        Status.INFO_RECEIVED,
        SubStatus.LABEL_CREATED,
        "003",
    )
    assert result.signed_by == "163000"
    assert result.estimated_delivery is None  # deliveryDate holds placeholders
    [event] = result.events
    # 20210210 071356 local in Wayne, NJ, no gmt fields: EST (-05:00)
    assert event.occurred_at == utc(2021, 2, 10, 12, 13, 56)
    assert event.time_basis == TimeBasis.ZONE_FROM_LOCATION
    assert (event.local_time, event.utc_offset_minutes) == ("2021-02-10T07:13:56", -300)
    assert event.description == "Your package was released by the customs agency."
    assert event.location is not None
    assert (event.location.city, event.location.region, event.location.country) == ("Wayne", "NJ", "US")


def test_not_found_warning() -> None:
    [result] = parse_body((SAMPLES / "not_found_warning_TW0001.json").read_bytes())
    assert (result.found, result.error, result.raw_status) == (False, None, "TW0001")


def test_invalid_inquiry_is_an_item_error() -> None:
    [result] = parse_body((SAMPLES / "error_invalid_inquiry_TV1002.json").read_bytes())
    assert result.found is False
    assert result.error == "TV1002: Invalid inquiry number"


def test_429_body_is_bad_response() -> None:
    with pytest.raises(BadResponse, match="10429"):
        parse_body((SAMPLES / "error_429_too_many_requests.json").read_bytes())


# --- time -------------------------------------------------------------------------------


def test_gmt_fields_both_forms() -> None:
    body = with_activities(
        # spec example form: unpadded "74700" = 07:47:00
        {
            "date": "20240320",
            "time": "154700",
            "gmtDate": "20240320",
            "gmtTime": "74700",
            "gmtOffset": "+08:00",
        },
        # real form, local date one day ahead of the gmt date
        {
            "date": "20240320",
            "time": "070700",
            "gmtDate": "20240319",
            "gmtTime": "23:07:00",
            "gmtOffset": "+08:00",
        },
    )
    [result] = parse_body(body)
    assert [(e.occurred_at, e.time_basis, e.utc_offset_minutes, e.local_time) for e in result.events] == [
        (utc(2024, 3, 19, 23, 7), TimeBasis.UTC_GIVEN, 480, "2024-03-20T07:07:00"),
        (utc(2024, 3, 20, 7, 47), TimeBasis.UTC_GIVEN, 480, "2024-03-20T15:47:00"),
    ]


def test_offset_only_and_assumed_zone() -> None:
    body = with_activities(
        {"date": "20240705", "time": "090000", "gmtOffset": "-7:00"},
        {"date": "20240704", "time": "090000"},  # no place, no gmt: origin's zone assumed
        packageAddress=[{"type": "ORIGIN", "address": {"countryCode": "CN", "city": "Shenzhen"}}],
    )
    [result] = parse_body(body)
    assert [(e.occurred_at, e.time_basis) for e in result.events] == [
        (utc(2024, 7, 4, 1, 0), TimeBasis.ZONE_ASSUMED),
        (utc(2024, 7, 5, 16, 0), TimeBasis.OFFSET_GIVEN),
    ]


def test_eta_from_scheduled_delivery_date_and_window() -> None:
    body = with_activities(
        {
            "date": "20240705",
            "time": "090000",
            "gmtDate": "20240705",
            "gmtTime": "13:00:00",
            "gmtOffset": "-04:00",
        },
        deliveryDate=[{"type": "SDD", "date": "20240708"}],
        deliveryTime={"type": "EDW", "startTime": "100000", "endTime": "140000"},
        packageAddress=[{"type": "DESTINATION", "address": {"countryCode": "US", "city": "Chicago"}}],
        deliveryInformation={"receivedBy": ""},
    )
    [result] = parse_body(body)
    # Chicago in July: CDT, -05:00
    assert result.estimated_delivery == utc(2024, 7, 8, 15, 0)
    assert result.estimated_delivery_end == utc(2024, 7, 8, 19, 0)
    assert result.destination_country == "US"
    assert result.signed_by is None


# --- status -----------------------------------------------------------------------------

REFERENCE_CODES = [
    "003", "080", "157", "007", "043", "038", "160", "167", "168", "169", "005", "010", "025", "039",
    "047", "087", "158", "159", "164", "165", "012", "014", "084", "092", "134", "058", "124", "125",
    "126", "123", "006", "021", "037", "089", "091", "146", "162", "072", "078", "022", "023", "024",
    "060", "061", "062", "066", "145", "017", "040", "100", "106", "108", "144", "161", "011", "026",
    "143", "033", "034", "035", "036", "067", "081", "118", "119", "013", "029", "030", "046", "048",
    "049", "050", "051", "052", "053", "059", "064", "068", "069", "086", "090", "147", "149",
]  # fmt: skip


def test_every_documented_status_code_is_mapped() -> None:
    assert set(REFERENCE_CODES) <= set(STATUS)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {"type": "X", "code": "RZ", "statusCode": "012"},
            (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING, "012"),
        ),
        ({"type": "X", "statusCode": "058"}, (Status.EXCEPTION, SubStatus.CUSTOMS_INFO_REQUIRED, "058")),
        ({"type": "I", "statusCode": "021"}, (Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY, "021")),
        ({"type": "D", "statusCode": "011"}, (Status.DELIVERED, SubStatus.OTHER, "011")),
        ({"type": "D"}, (Status.DELIVERED, SubStatus.OTHER, "D")),
        ({"type": "M"}, (Status.INFO_RECEIVED, SubStatus.LABEL_CREATED, "M")),
        ({"type": "RS"}, (Status.RETURNED, SubStatus.RETURNED_TO_SENDER, "RS")),
        # an unmapped statusCode falls back to its type's status, sub-status other
        ({"type": "D", "statusCode": "999"}, (Status.DELIVERED, SubStatus.OTHER, "999")),
        ({"type": "??"}, (Status.IN_TRANSIT, SubStatus.OTHER, "??")),
        (None, (Status.IN_TRANSIT, SubStatus.OTHER, "")),
    ],
)
def test_status_mapping(status: Any, expected: tuple[Status, SubStatus, str]) -> None:
    assert map_status(status) == expected


# --- several packages, garbage ----------------------------------------------------------


def test_a_malformed_package_does_not_sink_the_others() -> None:
    doc = example()
    good = doc["trackResponse"]["shipment"][0]["package"][0]
    bad = dict(good, trackingNumber="1ZBAD", activity={"not": "a list"})
    doc["trackResponse"]["shipment"][0]["package"] = [good, bad, "junk"]
    doc["trackResponse"]["shipment"].append({"inquiryNumber": "1ZNOPKG"})
    results = parse_body(json.dumps(doc).encode())
    assert [r.error for r in results] == [
        None,
        "activity is not a list",
        "package is not an object",
        "shipment without packages",
    ]
    assert [r.tracking_number for r in results] == ["1Z023E2X0214323462"] * 3 + ["1ZNOPKG"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"nope",
        b"[]",
        b"{}",
        b'{"trackResponse": {}}',
        b'{"response": {"errors": [{"code": "250003"}]}}',
        b"\xff",
    ],
)
def test_unreadable_bodies_raise_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_body(body)


# --- over loopback ----------------------------------------------------------------------

ROUND_TRIP = [
    "SBXDELIVEREDUPS01",
    "SBXFAILEDUPS02",
    "SBXLATEUPS03",
    *[f"1Z999AA1{i:010d}" for i in range(1, 25)],
]


async def test_round_trip_gives_back_exact_instants(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["ups"], clock=ManualClock(START)) as h:
        adapter = UpsAdapter(session=h.session, settings=h.settings("ups"), clock=h.clock)
        for number in ROUND_TRIP:
            [result] = await adapter.track([number])
            journey = journey_for(number, "ups", h.state)
            assert journey is not None
            steps = journey.visible(h.clock())
            assert result.tracking_number == number
            assert result.error is None
            assert [e.occurred_at for e in result.events] == [s.at for s in steps]
            assert all(e.time_basis == TimeBasis.UTC_GIVEN for e in result.events)
            assert [e.status for e in result.events] == [s.status for s in steps]
            assert result.status == steps[-1].status
            if steps[-1].status == Status.DELIVERED:
                assert result.signed_by == journey.signed_by
        assert h.state.requests["ups"] == len(ROUND_TRIP) + 1  # one token for every call


async def test_eta_round_trip_while_in_transit(aiohttp_server: Server) -> None:
    number = "SBXDELIVEREDUPS01"
    async with harness(aiohttp_server, ["ups"], clock=ManualClock(START)) as h:
        journey = journey_for(number, "ups", h.state)
        assert journey is not None
        h.clock.now = journey.steps[2].at  # a few scans in, not yet delivered
        adapter = UpsAdapter(session=h.session, settings=h.settings("ups"), clock=h.clock)
        [result] = await adapter.track([number])
        assert len(result.events) == 3
        assert result.estimated_delivery == journey.eta


async def test_token_cached_then_refreshed_once_when_expired(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["ups"], clock=ManualClock(START)) as h:
        # the adapter's own clock stands still while the carrier's runs on, so the carrier
        # expires the token before our cache would drop it
        ours = ManualClock(START)
        adapter = UpsAdapter(session=h.session, settings=h.settings("ups"), clock=ours)
        for _ in range(3):
            await adapter.track(["SBXDELIVEREDUPS01"])
        assert adapter.tokens.fetches == 1
        assert h.state.requests["ups"] == 1 + 3
        h.clock.advance(seconds=h.state.faults.token_ttl + 1)
        [result] = await adapter.track(["SBXDELIVEREDUPS01"])
        assert result.found
        assert adapter.tokens.fetches == 2
        assert h.state.requests["ups"] == 4 + 3  # refused call, new token, retried call
        # when our clock passes the cached lifetime, we fetch a new token before asking
        ours.advance(seconds=h.state.faults.token_ttl)
        h.clock.advance(seconds=1)
        await adapter.track(["SBXDELIVEREDUPS01"])
        assert adapter.tokens.fetches == 3
        assert h.state.requests["ups"] == 7 + 2


async def test_bad_client_credentials_are_auth_error(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["ups"]) as h:
        adapter = UpsAdapter(
            session=h.session, settings=h.settings("ups", client_secret="wrong"), clock=h.clock
        )
        with pytest.raises(AuthError):
            await adapter.track(["SBXDELIVEREDUPS01"])


async def test_token_refused_twice_is_auth_error(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["ups"]) as h:
        h.state.faults.token_ttl = 0  # every token is already expired when it arrives
        adapter = UpsAdapter(session=h.session, settings=h.settings("ups"), clock=h.clock)
        with pytest.raises(AuthError):
            await adapter.track(["SBXDELIVEREDUPS01"])
        assert adapter.tokens.fetches == 2


async def test_unknown_and_invalid_numbers(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["ups"]) as h:
        adapter = UpsAdapter(session=h.session, settings=h.settings("ups"), clock=h.clock)
        [unknown] = await adapter.track(["NOTFOUNDUPS1"])
        assert (unknown.tracking_number, unknown.found, unknown.error) == ("NOTFOUNDUPS1", False, None)
        [invalid] = await adapter.track(["1Z-"])
        assert (invalid.tracking_number, invalid.found) == ("1Z-", False)
        assert invalid.error == "TV1002: Invalid inquiry number"


async def test_trans_id_is_required_and_unique(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["ups"], clock=ManualClock(START)) as h:
        adapter = UpsAdapter(session=h.session, settings=h.settings("ups"), clock=h.clock)
        await adapter.track(["SBXDELIVEREDUPS01"])
        await adapter.track(["SBXDELIVEREDUPS01"])  # a repeated transId would be refused
        token = await adapter.tokens.get()
        url = h.server.make_url("/ups/api/track/v1/details/SBXDELIVEREDUPS01")
        headers = {"Authorization": f"Bearer {token}", "transactionSrc": "test"}
        async with h.session.get(url, headers=headers) as resp:
            assert resp.status == 400
        async with h.session.get(url, headers={**headers, "transId": "t1"}) as resp:
            assert resp.status == 200
        async with h.session.get(url, headers={**headers, "transId": "t1"}) as resp:
            assert resp.status == 400


async def test_one_number_per_call(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["ups"]) as h:
        adapter = UpsAdapter(session=h.session, settings=h.settings("ups"), clock=h.clock)
        with pytest.raises(ValueError, match="one number"):
            await adapter.track(["1ZA", "1ZB"])


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("5", 5.0), ("http-date", 120.0), (None, UpsAdapter.default_retry_after)],
)
async def test_rate_limited(aiohttp_server: Server, retry_after: str | None, expected: float) -> None:
    async with harness(aiohttp_server, ["ups"]) as h:
        if retry_after == "http-date":
            retry_after = email.utils.format_datetime(h.clock() + timedelta(seconds=120), usegmt=True)
        h.state.faults.rate_429 = 1.0
        h.state.faults.retry_after = retry_after
        adapter = UpsAdapter(session=h.session, settings=h.settings("ups"), clock=h.clock)
        with pytest.raises(RateLimited) as caught:
            await adapter.track(["SBXDELIVEREDUPS01"])
        assert caught.value.retry_after == expected


async def test_server_errors_timeouts_and_truncation(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["ups"], clock=ManualClock(START)) as h:
        adapter = UpsAdapter(session=h.session, settings=h.settings("ups"), clock=h.clock)
        await adapter.tokens.get()
        h.state.faults.rate_5xx = 1.0
        with pytest.raises(CarrierUnavailable, match="HTTP 50"):
            await adapter.track(["SBXDELIVEREDUPS01"])
        h.state.faults.rate_5xx = 0.0
        h.state.faults.rate_malformed = 1.0
        with pytest.raises(BadResponse):
            await adapter.track(["SBXDELIVEREDUPS01"])
        h.state.faults.rate_malformed = 0.0
        h.state.faults.latency_ms = 5000
        slow = UpsAdapter(session=h.session, settings=h.settings("ups", timeout=0.2), clock=h.clock)
        with pytest.raises(CarrierUnavailable, match="timeout"):
            await slow.track(["SBXDELIVEREDUPS01"])
