"""DHL adapter: public samples, description refinement, and round trips to the simulator."""

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
from carriers.dhl import STATUS, DhlAdapter, is_not_found, map_event, parse_body
from carriers.simulator.journeys import journey_for
from carriers.status import Status, SubStatus
from tests.carriers.sim_helpers import ManualClock, harness, samples_dir

Server = Callable[[web.Application], Awaitable[TestServer]]
SAMPLES = samples_dir() / "dhl"
LATER = ManualClock(datetime(2026, 4, 1, tzinfo=UTC))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def express_sample() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLES / "shipments_openapi_example_express.json").read_bytes())
    return doc


# --- the public samples -----------------------------------------------------------------


def test_express_sample() -> None:
    [result] = parse_body((SAMPLES / "shipments_openapi_example_express.json").read_bytes())
    assert result.tracking_number == "7777777770"
    assert result.shipment_ref == "7777777770"  # a JSON number in the sample
    assert result.found
    assert result.error is None
    assert (result.status, result.sub_status, result.raw_status) == (
        Status.INFO_RECEIVED,
        SubStatus.LABEL_CREATED,
        "pre-transit",
    )
    assert (result.origin_country, result.destination_country) == ("NL", "NL")
    assert result.signed_by == "John Doe"
    assert result.estimated_delivery == utc(2018, 8, 3, 0, 0, 0)
    assert result.estimated_delivery_end == utc(2018, 8, 3, 22, 0, 0)
    [event] = result.events
    # "2018-03-02T07:53:47" without offset, in NL: CET (+01:00) in March
    assert event.occurred_at == utc(2018, 3, 2, 6, 53, 47)
    assert event.time_basis == TimeBasis.ZONE_FROM_LOCATION
    assert (event.local_time, event.utc_offset_minutes) == ("2018-03-02T07:53:47", 60)
    assert (event.status, event.raw_code, event.description) == (
        Status.INFO_RECEIVED,
        "pre-transit",
        "JESSICA",
    )
    assert event.location is not None
    assert (event.location.country, event.location.postcode) == ("NL", "1043 AG")


@pytest.mark.parametrize("name", ["error_404_live_problem_json.json", "error_404_openapi_example.json"])
def test_not_found_problem_bodies(name: str) -> None:
    assert is_not_found((SAMPLES / name).read_bytes())


def test_429_body_is_not_a_not_found() -> None:
    assert not is_not_found((SAMPLES / "error_429_live.json").read_bytes())
    with pytest.raises(BadResponse):
        parse_body((SAMPLES / "error_429_live.json").read_bytes())


# --- status -----------------------------------------------------------------------------


def test_every_documented_status_code_is_mapped() -> None:
    assert set(STATUS) == {"pre-transit", "transit", "delivered", "failure", "unknown"}


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (
            "transit",
            "Shipment is out with courier for delivery",
            (Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY),
        ),
        (
            "transit",
            "Die Sendung wurde in das Zustellfahrzeug geladen.",
            (Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY),
        ),
        (
            "transit",
            "The shipment is available for pick-up",
            (Status.AVAILABLE_FOR_PICKUP, SubStatus.PICKUP_POINT),
        ),
        (
            "transit",
            "Clearance processing complete at LEIPZIG",
            (Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED),
        ),
        ("transit", "Customs clearance status updated", (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING)),
        ("failure", "Held by customs", (Status.EXCEPTION, SubStatus.CUSTOMS_HELD)),
        (
            "failure",
            "Customs requires the commercial invoice",
            (Status.EXCEPTION, SubStatus.CUSTOMS_INFO_REQUIRED),
        ),
        (
            "failure",
            "Delivery attempted: recipient not available",
            (Status.FAILED_ATTEMPT, SubStatus.RECIPIENT_UNAVAILABLE),
        ),
        ("failure", "Something went wrong", (Status.EXCEPTION, SubStatus.OTHER)),
        ("delivered", "Delivered, signed for by A. MILLER", (Status.DELIVERED, SubStatus.SIGNED)),
        ("delivered", "Delivered", (Status.DELIVERED, SubStatus.OTHER)),
        (
            "pre-transit",
            "The shipment is pending completion of customs inspection",
            (Status.INFO_RECEIVED, SubStatus.LABEL_CREATED),
        ),
        ("", "Arrived at DHL Sort Facility LEIPZIG", (Status.IN_TRANSIT, SubStatus.ARRIVED)),
        ("", "Delivered - Signed for by: J SMITH", (Status.DELIVERED, SubStatus.OTHER)),
    ],
)
def test_description_refines_coarse_codes(code: str, text: str, expected: tuple[Status, SubStatus]) -> None:
    assert map_event(code, text) == expected


def test_events_without_code_keep_the_previous_status() -> None:
    doc = express_sample()
    doc["shipments"][0]["events"] = [
        {"timestamp": "2018-03-03T10:00:00", "description": "Shipment on hold"},
        {"timestamp": "2018-03-02T10:00:00", "statusCode": "transit", "description": "Processed"},
    ]
    [result] = parse_body(json.dumps(doc).encode())
    assert [(e.status, e.sub_status) for e in result.events] == [
        (Status.IN_TRANSIT, SubStatus.IN_TRANSIT),
        (Status.IN_TRANSIT, SubStatus.OTHER),
    ]


def test_return_flag_means_returned() -> None:
    doc = express_sample()
    doc["shipments"][0]["returnFlag"] = True
    doc["shipments"][0]["status"] = {"statusCode": "delivered", "description": "Delivered"}
    [result] = parse_body(json.dumps(doc).encode())
    assert (result.status, result.sub_status) == (Status.RETURNED, SubStatus.RETURNED_TO_SENDER)
    # on its way back: an exception, not yet terminal, so polling continues until it arrives
    doc["shipments"][0]["status"] = {"statusCode": "transit", "description": "Processed"}
    [result] = parse_body(json.dumps(doc).encode())
    assert (result.status, result.sub_status) == (Status.EXCEPTION, SubStatus.RETURNING)


# --- time -------------------------------------------------------------------------------


def test_timestamps_with_offsets_and_without_location() -> None:
    doc = express_sample()
    shipment = doc["shipments"][0]
    shipment["origin"] = {"address": {"countryCode": "CN", "addressLocality": "SHENZHEN"}}
    shipment["destination"] = {"address": {"countryCode": "US"}}
    shipment["events"] = [
        {"timestamp": "2024-07-05T09:00:00", "statusCode": "delivered", "description": "Delivered"},
        {"timestamp": "2024-07-03T09:00:00Z", "statusCode": "transit", "description": "Processed"},
        {"timestamp": "2024-07-02T09:00:00-04:00", "statusCode": "transit", "description": "Arrived"},
        {"timestamp": "2024-07-01T09:00:00", "statusCode": "pre-transit", "description": "Label"},
    ]
    [result] = parse_body(json.dumps(doc).encode())
    got = [(e.occurred_at, e.time_basis) for e in result.events]
    assert got == [
        (utc(2024, 7, 1, 1, 0), TimeBasis.ZONE_ASSUMED),  # no place: origin CN, +08:00
        (utc(2024, 7, 2, 13, 0), TimeBasis.OFFSET_GIVEN),
        (utc(2024, 7, 3, 9, 0), TimeBasis.UTC_GIVEN),
        # no place, destination US has no single zone and no city: UTC assumed
        (utc(2024, 7, 5, 9, 0), TimeBasis.ZONE_ASSUMED),
    ]


# --- several shipments, garbage ---------------------------------------------------------


def test_several_shipments_and_a_malformed_one() -> None:
    doc = express_sample()
    second = json.loads(json.dumps(doc["shipments"][0]))
    second["id"] = "7777777770-2"
    second["events"] = "not a list"
    third = {"service": "parcel-de"}
    doc["shipments"] += [second, third, "junk"]
    results = parse_body(json.dumps(doc).encode())
    assert [r.shipment_ref for r in results] == ["7777777770", "7777777770-2", None, None]
    assert results[0].error is None
    assert results[1].error == "events is not a list"
    assert results[2].error == "shipment without an id"
    assert results[3].error == "shipment without an id"


@pytest.mark.parametrize(
    "body", [b"", b"<html>", b"[]", b"{}", b'{"shipments": {}}', b"\x00\x01", b'{"shipments": null}']
)
def test_unreadable_bodies_raise_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_body(body)


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"shipments": ' + b"[" * 100_000, b'{"a": ' * 100_000])
def test_bodies_nested_too_deep_raise_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_body(body)
    assert not is_not_found(body)


# --- over loopback ----------------------------------------------------------------------

ROUND_TRIP = [
    "SBXDELIVEREDDHL01",
    "SBXRETURNEDDHL02",
    "SBXCUSTOMSDHL03",
    "SBXFAILEDDHL04",
    *[f"JD0146000{i:011d}" for i in range(1, 25)],
]


async def test_round_trip_gives_back_exact_instants_and_statuses(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["dhl"], clock=LATER) as h:
        adapter = DhlAdapter(session=h.session, settings=h.settings("dhl"), clock=h.clock)
        for number in ROUND_TRIP:
            [result] = await adapter.track([number])
            journey = journey_for(number, "dhl", h.state)
            assert journey is not None
            steps = journey.visible(h.clock())
            assert result.tracking_number == number
            assert result.error is None
            assert [e.occurred_at for e in result.events] == [s.at for s in steps], number
            assert all(e.time_basis == TimeBasis.ZONE_FROM_LOCATION for e in result.events)
            assert [(e.status, e.sub_status) for e in result.events] == [
                (s.status, s.sub_status) for s in steps
            ]
            assert result.estimated_delivery == journey.eta
            if steps[-1].status == Status.DELIVERED:
                assert result.signed_by == journey.signed_by
        assert h.state.lookups[("dhl", "SBXDELIVEREDDHL01")] == 1


async def test_returned_journey_sets_return_flag(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["dhl"], clock=LATER) as h:
        adapter = DhlAdapter(session=h.session, settings=h.settings("dhl"), clock=h.clock)
        [result] = await adapter.track(["SBXRETURNEDDHL02"])
        assert (result.status, result.sub_status) == (Status.RETURNED, SubStatus.RETURNED_TO_SENDER)


async def test_unknown_number_is_not_found(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["dhl"], clock=LATER) as h:
        adapter = DhlAdapter(session=h.session, settings=h.settings("dhl"), clock=h.clock)
        [result] = await adapter.track(["NOTFOUNDDHL"])
        assert (result.tracking_number, result.found, result.error) == ("NOTFOUNDDHL", False, None)


async def test_wrong_key_is_auth_error(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["dhl"]) as h:
        adapter = DhlAdapter(session=h.session, settings=h.settings("dhl", api_key="nope"), clock=h.clock)
        with pytest.raises(AuthError):
            await adapter.track(["SBXDELIVEREDDHL01"])


async def test_one_number_per_call(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["dhl"]) as h:
        adapter = DhlAdapter(session=h.session, settings=h.settings("dhl"), clock=h.clock)
        with pytest.raises(ValueError, match="one number"):
            await adapter.track(["A1", "A2"])
        assert h.state.requests["dhl"] == 0


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("12", 12.0), ("http-date", 90.0), (None, DhlAdapter.default_retry_after)],
)
async def test_rate_limited(aiohttp_server: Server, retry_after: str | None, expected: float) -> None:
    async with harness(aiohttp_server, ["dhl"]) as h:
        if retry_after == "http-date":
            retry_after = email.utils.format_datetime(h.clock() + timedelta(seconds=90), usegmt=True)
        h.state.faults.rate_429 = 1.0
        h.state.faults.retry_after = retry_after
        adapter = DhlAdapter(session=h.session, settings=h.settings("dhl"), clock=h.clock)
        with pytest.raises(RateLimited) as caught:
            await adapter.track(["SBXDELIVEREDDHL01"])
        assert caught.value.retry_after == expected


async def test_server_errors_timeouts_and_truncation(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["dhl"], clock=LATER) as h:
        adapter = DhlAdapter(session=h.session, settings=h.settings("dhl"), clock=h.clock)
        h.state.faults.rate_5xx = 1.0
        with pytest.raises(CarrierUnavailable, match="HTTP 50"):
            await adapter.track(["SBXDELIVEREDDHL01"])
        h.state.faults.rate_5xx = 0.0
        h.state.faults.rate_malformed = 1.0
        with pytest.raises(BadResponse):
            await adapter.track(["SBXDELIVEREDDHL01"])
        h.state.faults.rate_malformed = 0.0
        h.state.faults.latency_ms = 5000
        slow = DhlAdapter(session=h.session, settings=h.settings("dhl", timeout=0.2), clock=h.clock)
        with pytest.raises(CarrierUnavailable, match="timeout"):
            await slow.track(["SBXDELIVEREDDHL01"])
