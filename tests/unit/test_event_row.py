"""The poll's new-event rows carry each value in the column `insert_events` binds it to."""

from __future__ import annotations

from datetime import UTC, datetime

from carriers.base import CarrierEvent, Location, TimeBasis
from carriers.status import Status, SubStatus
from tracker.polling import _event_row
from tracker.store.tracking import EVENT_COLUMNS


def test_event_row_order() -> None:
    at = datetime(2026, 5, 1, 3, 4, 5, 678, tzinfo=UTC)
    now = datetime(2026, 5, 2, tzinfo=UTC)
    event = CarrierEvent(
        at,
        TimeBasis.OFFSET_GIVEN,
        "2026-05-01T11:04:05",
        Status.IN_TRANSIT,
        SubStatus.ARRIVED,
        "AF",
        "Arrived at facility",
        Location(city="Shenzhen", region="Guangdong", country="CN", postcode="518000"),
        "yanwen",
        480,
    )
    row = dict(zip(EVENT_COLUMNS, _event_row("shp_1", "f" * 64, event, now), strict=True))
    assert row == {
        "shipment_id": "shp_1",
        "fingerprint": "f" * 64,
        "occurred_at": at,
        "time_basis": TimeBasis.OFFSET_GIVEN.value,
        "local_time": "2026-05-01T11:04:05",
        "utc_offset_minutes": 480,
        "status": "in_transit",
        "sub_status": SubStatus.ARRIVED.value,
        "raw_code": "AF",
        "description": "Arrived at facility",
        "city": "Shenzhen",
        "region": "Guangdong",
        "country": "CN",
        "postcode": "518000",
        "provider": "yanwen",
        "recorded_at": now,
    }
    # empty place parts are stored as NULL
    bare = CarrierEvent(at, TimeBasis.UTC_GIVEN, "", Status.IN_TRANSIT, SubStatus.OTHER, "X", "x", Location(city=""))
    row = dict(zip(EVENT_COLUMNS, _event_row("shp_1", "f" * 64, bare, now), strict=True))
    place = (row["city"], row["region"], row["country"], row["postcode"], row["provider"])
    assert place == (None, None, None, None, "")
