"""17TRACK adapter: the public webhook sample, status table, and round trips to the simulator."""

from __future__ import annotations

import email.utils
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from carriers import track17
from carriers.base import (
    AuthError,
    BadResponse,
    CarrierUnavailable,
    RateLimited,
    TimeBasis,
    load_json_exact,
    load_json_fast,
)
from carriers.simulator.journeys import journey_for
from carriers.status import Status, SubStatus
from carriers.track17 import (
    STATUS,
    Track17Adapter,
    parse_push,
    parse_split,
    verify_push_signature,
)
from tests.carriers.sim_helpers import ManualClock, harness, samples_dir

Server = Callable[[web.Application], Awaitable[TestServer]]
SAMPLE = samples_dir() / "17track" / "webhook_tracking_updated_dhl_paket.json"
LATER = ManualClock(datetime(2026, 4, 1, tzinfo=UTC))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def envelope(accepted: list[Any], rejected: list[Any] | None = None) -> bytes:
    return json.dumps({"code": 0, "data": {"accepted": accepted, "rejected": rejected or []}}).encode()


def sample_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE.read_bytes())["data"]
    return data


# --- the public sample ------------------------------------------------------------------


def test_webhook_sample() -> None:
    [result] = parse_push(SAMPLE.read_bytes())
    assert result.tracking_number == "1234567890"
    assert result.found
    assert result.error is None
    # 17TRACK's own verdict is kept, even though the event's stage says pick-up
    assert (result.status, result.sub_status, result.raw_status) == (
        Status.EXCEPTION,
        SubStatus.OTHER,
        "Exception_Other",
    )
    assert (result.origin_country, result.destination_country) == ("DE", "DE")
    assert result.estimated_delivery is None
    assert result.signed_by is None
    [event] = result.events
    # time_iso 2022-09-14T08:47:00+01:00
    assert event.occurred_at == utc(2022, 9, 14, 7, 47, 0)
    assert event.time_basis == TimeBasis.OFFSET_GIVEN
    assert event.local_time == "2022-09-14T08:47:00"
    assert event.utc_offset_minutes == 60
    assert (event.status, event.sub_status, event.raw_code) == (
        Status.AVAILABLE_FOR_PICKUP,
        SubStatus.PICKUP_POINT,
        "AvailableForPickup",
    )
    assert event.provider == "DHL Paket"
    assert event.description.startswith("The shipment is available for pick-up")


def test_sample_inside_a_gettrackinfo_envelope_with_rejections() -> None:
    body = envelope(
        [sample_data()],
        [
            {"number": "RR123456785CN", "error": {"code": -18019909, "message": "No tracking information."}},
            {"number": "XX1", "error": {"code": -18019903, "message": "Carrier not detected."}},
        ],
    )
    results, codes = parse_split(body)
    assert [r.tracking_number for r in results] == ["1234567890", "RR123456785CN", "XX1"]
    assert [r.found for r in results] == [True, False, False]
    assert results[1].error is None
    assert results[1].status == Status.PENDING
    assert results[2].error == "-18019903: Carrier not detected."
    assert codes == {"RR123456785CN": -18019909, "XX1": -18019903}


def test_stopped_push_without_track_info_yields_nothing() -> None:
    body = b'{"event":"TRACKING_STOPPED","data":{"number":"RR123456785CN"}}'
    assert parse_push(body) == []


def test_push_signature_known_answer() -> None:
    body = b'{"event":"TRACKING_STOPPED","data":{"number":"RR123456785CN"}}'
    good = "a0552a3c6be7344bf697cc45371a1f027a76acf094c4c12f01df4cdd1b953cae"
    assert verify_push_signature(body, good, "s3cret")
    assert verify_push_signature(body, good.upper(), "s3cret")
    assert not verify_push_signature(body, good, "other")
    assert not verify_push_signature(body + b" ", good, "s3cret")
    assert not verify_push_signature(body, "", "s3cret")


# --- status table -----------------------------------------------------------------------

REFERENCE_SUB_STATUSES = [
    "NotFound_Other",
    "NotFound_InvalidCode",
    "InfoReceived",
    "InTransit_PickedUp",
    "InTransit_Departure",
    "InTransit_Arrival",
    "InTransit_CustomsProcessing",
    "InTransit_CustomsReleased",
    "InTransit_CustomsRequiringInformation",
    "InTransit_Other",
    "Expired_Other",
    "AvailableForPickup_Other",
    "OutForDelivery_Other",
    "DeliveryFailure_Other",
    "DeliveryFailure_NoBody",
    "DeliveryFailure_Security",
    "DeliveryFailure_Rejected",
    "DeliveryFailure_InvalidAddress",
    "Delivered_Other",
    "Exception_Returning",
    "Exception_Returned",
    "Exception_Other",
    "Exception_NoBody",
    "Exception_Security",
    "Exception_Damage",
    "Exception_Rejected",
    "Exception_Delayed",
    "Exception_Lost",
    "Exception_Destroyed",
    "Exception_Cancel",
]


def test_every_documented_sub_status_is_mapped() -> None:
    assert set(REFERENCE_SUB_STATUSES) <= set(STATUS)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InTransit_CustomsProcessing", (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING)),
        ("InTransit_CustomsReleased", (Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED)),
        ("InTransit_CustomsRequiringInformation", (Status.EXCEPTION, SubStatus.CUSTOMS_INFO_REQUIRED)),
        ("DeliveryFailure_InvalidAddress", (Status.FAILED_ATTEMPT, SubStatus.ADDRESS_ISSUE)),
        ("Exception_Returned", (Status.RETURNED, SubStatus.RETURNED_TO_SENDER)),
        ("Exception_Lost", (Status.EXCEPTION, SubStatus.LOST)),
        ("NotFound_InvalidCode", (Status.PENDING, SubStatus.NOT_FOUND)),
    ],
)
def test_status_mapping(code: str, expected: tuple[Status, SubStatus]) -> None:
    entry = sample_data()
    entry["track_info"]["latest_status"] = {"status": code.split("_")[0], "sub_status": code}
    [result] = parse_split(envelope([entry]))[0]
    assert (result.status, result.sub_status) == expected


def test_unknown_sub_status_maps_to_parent_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    entry = sample_data()
    entry["track_info"]["latest_status"] = {"status": "InTransit", "sub_status": "InTransit_Teleported"}
    with caplog.at_level(logging.WARNING, logger="carriers.status"):
        for _ in range(3):
            [result] = parse_split(envelope([entry]))[0]
            assert (result.status, result.sub_status) == (Status.IN_TRANSIT, SubStatus.OTHER)
    hits = [r for r in caplog.records if getattr(r, "raw_code", None) == "InTransit_Teleported"]
    assert len(hits) == 1


# --- time rules -------------------------------------------------------------------------


def _one_event(event: dict[str, Any], provider_country: str | None = "DE") -> Any:
    entry = sample_data()
    block = entry["track_info"]["tracking"]["providers"][0]
    block["provider"]["country"] = provider_country
    block["events"] = [event]
    [result] = parse_split(envelope([entry]))[0]
    assert result.error is None
    [parsed] = result.events
    return parsed


def test_time_utc_used_when_time_iso_has_no_offset() -> None:
    event = _one_event({"time_iso": "2022-09-14T08:47:00", "time_utc": "2022-09-14T07:47:00Z", "stage": None})
    assert (event.occurred_at, event.time_basis) == (utc(2022, 9, 14, 7, 47), TimeBasis.UTC_GIVEN)
    assert (event.local_time, event.utc_offset_minutes) == ("2022-09-14T08:47:00", 60)
    assert (event.status, event.sub_status, event.raw_code) == (Status.IN_TRANSIT, SubStatus.OTHER, "")


def test_naive_time_resolved_from_the_event_address() -> None:
    event = _one_event(
        {"time_iso": "2024-01-10T09:00:00", "time_utc": None, "address": {"country": "US", "city": "Seattle"}}
    )
    # Seattle in January: PST, -08:00
    assert (event.occurred_at, event.time_basis) == (utc(2024, 1, 10, 17, 0), TimeBasis.ZONE_FROM_LOCATION)
    assert event.location is not None
    assert event.location.country == "US"


def test_naive_time_without_address_assumes_provider_country() -> None:
    event = _one_event({"time_iso": "2024-01-10T09:00:00", "time_utc": None}, provider_country="CN")
    assert (event.occurred_at, event.time_basis) == (utc(2024, 1, 10, 1, 0), TimeBasis.ZONE_ASSUMED)


def test_event_sub_status_beats_stage() -> None:
    event = _one_event(
        {
            "time_iso": "2024-01-10T09:00:00+08:00",
            "stage": "Arrival",
            "sub_status": "InTransit_CustomsProcessing",
        }
    )
    assert (event.status, event.sub_status) == (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING)


def test_estimated_delivery_from_time_metrics() -> None:
    entry = sample_data()
    entry["track_info"]["time_metrics"]["estimated_delivery_date"] = {
        "source": "17TRACK",
        "from": "2022-09-20T00:00:00+02:00",
        "to": "2022-09-22",
    }
    [result] = parse_split(envelope([entry]))[0]
    assert result.estimated_delivery == utc(2022, 9, 19, 22, 0)
    # a bare date is read at midnight in the recipient's country (DE, +02:00 in September)
    assert result.estimated_delivery_end == utc(2022, 9, 21, 22, 0)


# --- garbage ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"code": 0}',
        b'{"code": "0", "data": {}}',
        b'{"code": -18010002, "data": {}}',
        b'{"code": 0, "data": {"accepted": "x", "rejected": []}}',
        b"\xff\xfe",
    ],
)
def test_unreadable_bodies_raise_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_split(body)


def test_a_malformed_item_does_not_sink_the_batch() -> None:
    broken_events = sample_data()
    broken_events["number"] = "BROKEN2"
    broken_events["track_info"]["tracking"]["providers"] = [{"provider": 5, "events": [7, {"time_iso": []}]}]
    body = envelope(
        [sample_data(), {"number": "BROKEN1", "track_info": "x"}, {"track_info": {}}, broken_events, 42]
    )
    results, _ = parse_split(body)
    assert [r.tracking_number for r in results] == ["1234567890", "BROKEN1", "", "BROKEN2", ""]
    assert results[0].error is None
    assert len(results[0].events) == 1
    assert results[1].error == "track_info is not an object"
    assert results[2].error == "entry without a number"
    # unreadable events are skipped, the parcel itself still reads
    assert results[3].error is None
    assert results[3].events == []
    assert results[4].error == "entry without a number"


@pytest.mark.parametrize(
    "body", [b"{}", b'{"event": "X", "data": {}}', b'{"event": "TRACKING_UPDATED"}', b"1"]
)
def test_bad_pushes_raise_bad_response(body: bytes) -> None:
    with pytest.raises(BadResponse):
        parse_push(body)


# --- over loopback ----------------------------------------------------------------------


async def test_round_trip_gives_back_exact_instants_and_providers(aiohttp_server: Server) -> None:
    numbers = ["SBXDELIVERED17T01", "SBXRETURNED17T02", "SBXCUSTOMS17T03", "LP00123456789012"]
    async with harness(aiohttp_server, ["17track"], clock=LATER) as h:
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        results = await adapter.track(numbers)
        assert [r.tracking_number for r in results] == numbers
        for number, result in zip(numbers, results, strict=True):
            journey = journey_for(number, "17track", h.state)
            assert journey is not None
            steps = journey.visible(h.clock())
            assert result.found
            assert result.error is None
            assert [e.occurred_at for e in result.events] == [s.at for s in steps]
            assert [e.provider for e in result.events] == [s.provider for s in steps]
            assert all(e.time_basis == TimeBasis.OFFSET_GIVEN for e in result.events)
            assert [e.location.city if e.location else None for e in result.events] == [s.city for s in steps]
            assert result.status == steps[-1].status
            assert result.estimated_delivery == journey.eta
            assert (result.origin_country, result.destination_country) == (
                journey.origin,
                journey.destination,
            )
        assert results[0].status == Status.DELIVERED
        assert len({e.provider for e in results[0].events}) == 2  # first mile and last mile


async def test_registers_once_then_only_reads(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["17track"], clock=LATER) as h:
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        await adapter.track(["SBXDELIVERED17T01"])
        assert h.state.requests["17track"] == 2  # register + gettrackinfo
        await adapter.track(["SBXDELIVERED17T01"])
        assert h.state.requests["17track"] == 3
        assert h.state.lookups[("17track", "SBXDELIVERED17T01")] == 2


async def test_each_reply_is_read_once(aiohttp_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The envelope check and the results come from one reading of the body."""
    readings: list[bytes] = []

    def counted(read: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        def reading(body: bytes) -> Any:
            readings.append(body)
            return read(body)

        return reading

    monkeypatch.setattr(track17, "load_json_fast", counted(load_json_fast))
    monkeypatch.setattr(track17, "load_json_exact", counted(load_json_exact))
    async with harness(aiohttp_server, ["17track"], clock=LATER) as h:
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        [result] = await adapter.track(["SBXDELIVERED17T01"])
        assert result.found
        assert h.state.requests["17track"] == 2  # register + gettrackinfo
        assert len(readings) == 2
        assert len(set(readings)) == 2


async def test_not_registered_reply_registers_and_retries(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["17track"], clock=LATER) as h:
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        adapter.registered.add("SBXDELIVERED17T01")  # believed registered, unknown to 17TRACK
        [result] = await adapter.track(["SBXDELIVERED17T01"])
        assert result.found
        assert result.error is None
        assert h.state.requests["17track"] == 3  # gettrackinfo, register, gettrackinfo
        assert "SBXDELIVERED17T01" in h.state.registered_17track


async def test_unknown_and_malformed_numbers_in_one_batch(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["17track"], clock=LATER) as h:
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        good, unknown, broken = "SBXDELIVERED17T01", "NOTFOUND17T", "SBXMALFORMED17T"
        results = await adapter.track([good, unknown, broken])
        by_number = {r.tracking_number: r for r in results}
        assert by_number[good].found
        assert by_number[good].error is None
        assert not by_number[unknown].found
        assert by_number[unknown].error is None
        assert by_number[unknown].status == Status.PENDING
        assert not by_number[broken].found
        assert by_number[broken].error == "track_info is not an object"


async def test_nothing_visible_yet_is_pending(aiohttp_server: Server) -> None:
    early = ManualClock(datetime(2025, 12, 1, tzinfo=UTC))  # before the simulator's epoch
    async with harness(aiohttp_server, ["17track"], clock=early) as h:
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        [result] = await adapter.track(["SBXDELIVERED17T01"])
        assert (result.found, result.error, result.status) == (False, None, Status.PENDING)


async def test_wrong_key_is_auth_error(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["17track"]) as h:
        adapter = Track17Adapter(
            session=h.session, settings=h.settings("17track", api_key="wrong"), clock=h.clock
        )
        with pytest.raises(AuthError):
            await adapter.track(["SBXDELIVERED17T01"])


async def test_batch_limit(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["17track"]) as h:
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        with pytest.raises(ValueError, match="at most 40"):
            await adapter.track([f"SBX{i:05d}" for i in range(41)])
        url = h.server.make_url("/17track/track/v2.2/register")
        items = [{"number": f"SBX{i:05d}"} for i in range(41)]
        async with h.session.post(url, json=items, headers={"17token": h.state.creds.api_key}) as resp:
            body = await resp.json()
        assert body["code"] == -18010014
        assert h.state.registered_17track == set()
        async with h.session.post(url, json=items[:40], headers={"17token": h.state.creds.api_key}) as resp:
            body = await resp.json()
        assert body["code"] == 0
        assert len(body["data"]["accepted"]) == 40


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), ("http-date", 30.0), (None, Track17Adapter.default_retry_after)],
)
async def test_rate_limited(aiohttp_server: Server, retry_after: str | None, expected: float) -> None:
    async with harness(aiohttp_server, ["17track"]) as h:
        if retry_after == "http-date":
            retry_after = email.utils.format_datetime(h.clock() + timedelta(seconds=30), usegmt=True)
        h.state.faults.rate_429 = 1.0
        h.state.faults.retry_after = retry_after
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        with pytest.raises(RateLimited) as caught:
            await adapter.track(["SBXDELIVERED17T01"])
        assert caught.value.retry_after == expected


async def test_server_errors_and_timeouts_are_unavailable(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["17track"]) as h:
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        h.state.faults.rate_5xx = 1.0
        with pytest.raises(CarrierUnavailable, match="HTTP 50"):
            await adapter.track(["SBXDELIVERED17T01"])
        h.state.faults.rate_5xx = 0.0
        h.state.faults.latency_ms = 5000
        slow = Track17Adapter(session=h.session, settings=h.settings("17track", timeout=0.2), clock=h.clock)
        with pytest.raises(CarrierUnavailable, match="timeout"):
            await slow.track(["SBXDELIVERED17T01"])


async def test_truncated_body_is_bad_response(aiohttp_server: Server) -> None:
    async with harness(aiohttp_server, ["17track"]) as h:
        h.state.faults.rate_malformed = 1.0
        adapter = Track17Adapter(session=h.session, settings=h.settings("17track"), clock=h.clock)
        with pytest.raises(BadResponse):
            await adapter.track(["SBXDELIVERED17T01"])
