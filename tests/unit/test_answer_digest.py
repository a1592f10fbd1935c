"""`answer_digest` changes with everything a poll reads from an answer, and only with that."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from carriers.base import CarrierEvent, Location, TimeBasis, TrackResult
from carriers.status import Status, SubStatus
from tracker.polling import answer_digest
from tracker.store.tracking import PollState

AT = datetime(2026, 3, 2, 8, 30, 0, 250, tzinfo=UTC)
EVENTS = [
    CarrierEvent(
        occurred_at=AT,
        time_basis=TimeBasis.OFFSET_GIVEN,
        local_time="2026-03-02T16:30:00",
        status=Status.IN_TRANSIT,
        sub_status=SubStatus.OTHER,
        raw_code="AR",
        description="Arrived at sort facility",
        location=Location(city="Shenzhen", region="Guangdong", country="CN", postcode="518000"),
        provider="fedex",
        utc_offset_minutes=480,
    ),
    CarrierEvent(
        occurred_at=AT + timedelta(hours=9),
        time_basis=TimeBasis.ZONE_ASSUMED,
        local_time="2026-03-02T17:30:00",
        status=Status.IN_TRANSIT,
        sub_status=SubStatus.CUSTOMS_PROCESSING,
        raw_code="CC",
        description="Customs clearance",
        provider="fedex",
    ),
]
RESULT = TrackResult(
    tracking_number="FX100000000001",
    found=True,
    status=Status.IN_TRANSIT,
    sub_status=SubStatus.CUSTOMS_PROCESSING,
    events=EVENTS,
    estimated_delivery=AT + timedelta(days=3),
    estimated_delivery_end=AT + timedelta(days=4),
    signed_by=None,
    origin_country="CN",
    provider="fedex",
    raw_status="CC",
)


def _state(**changes: Any) -> PollState:
    values = {"status": "in_transit", "sub_status": "customs_processing", "status_changed_at": AT, **changes}
    return cast(PollState, SimpleNamespace(**values))


def _digest(result: TrackResult = RESULT, code: str = "fedex", **state: Any) -> str:
    return answer_digest(result, code, _state(**state))


def test_the_same_answer_and_status_give_the_same_digest() -> None:
    again = replace(RESULT, events=[replace(e) for e in EVENTS])
    assert _digest() == _digest(again)
    assert len(_digest()) == 32 and int(_digest(), 16) >= 0


EVENT_CHANGES: list[dict[str, Any]] = [
    {"occurred_at": AT + timedelta(microseconds=1)},
    {"time_basis": TimeBasis.UTC_GIVEN},
    {"local_time": "2026-03-02T16:31:00"},
    {"status": Status.OUT_FOR_DELIVERY},
    {"sub_status": SubStatus.CUSTOMS_HELD},
    {"raw_code": "AR2"},
    {"description": "Arrived at sort facility."},
    {"location": Location(city="Shenzhen", region="Guangdong", country="CN")},
    {"location": None},
    {"provider": "usps"},
    {"utc_offset_minutes": 420},
]


@pytest.mark.parametrize("change", EVENT_CHANGES, ids=lambda c: next(iter(c)))
def test_any_field_of_any_event_changes_the_digest(change: dict[str, Any]) -> None:
    changed = replace(RESULT, events=[replace(EVENTS[0], **change), EVENTS[1]])
    assert _digest(changed) != _digest()


RESULT_CHANGES: list[dict[str, Any]] = [
    {"status": Status.EXCEPTION},
    {"sub_status": SubStatus.OTHER},
    {"events": EVENTS[:1]},
    {"events": EVENTS[::-1]},
    {"events": [*EVENTS, EVENTS[1]]},
    {"estimated_delivery": AT + timedelta(days=2)},
    {"estimated_delivery_end": None},
    {"signed_by": "J. DOE"},
    {"origin_country": "HK"},
]


@pytest.mark.parametrize("change", RESULT_CHANGES, ids=lambda c: next(iter(c)))
def test_what_a_poll_reads_from_the_answer_changes_the_digest(change: dict[str, Any]) -> None:
    assert _digest(replace(RESULT, **change)) != _digest()


@pytest.mark.parametrize(
    "state",
    [{"status": "exception"}, {"sub_status": "customs_held"}, {"status_changed_at": AT + timedelta(seconds=1)}],
    ids=lambda c: next(iter(c)),
)
def test_the_status_the_shipment_has_changes_the_digest(state: dict[str, Any]) -> None:
    assert _digest(**state) != _digest()


def test_the_carrier_asked_changes_the_digest() -> None:
    assert _digest(code="17track") != _digest()


def test_what_a_poll_does_not_read_leaves_the_digest_alone() -> None:
    # the number, the adapter's code and the carrier's own status text are not merged
    unread = replace(RESULT, tracking_number="FX100000000002", provider="x", raw_status="XX", destination_country="US")
    assert _digest(unread) == _digest()
