from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers.base import CarrierEvent, Location, TimeBasis
from carriers.status import TERMINAL, Status, SubStatus
from tracker.timeline import JOURNEY_ORDER, derive_status, fingerprint, merge, normalize_text, sort_key

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def ev(
    at: datetime = T0,
    status: Status = Status.IN_TRANSIT,
    sub: SubStatus = SubStatus.IN_TRANSIT,
    *,
    code: str = "PU",
    desc: str = "Arrived at facility",
    city: str | None = "Shenzhen",
    country: str | None = "CN",
    provider: str = "yanwen",
    basis: TimeBasis = TimeBasis.OFFSET_GIVEN,
) -> CarrierEvent:
    return CarrierEvent(
        occurred_at=at,
        time_basis=basis,
        local_time=at.replace(tzinfo=None).isoformat(),
        status=status,
        sub_status=sub,
        raw_code=code,
        description=desc,
        location=Location(city=city, country=country) if city or country else None,
        provider=provider,
    )


# --- strategies -------------------------------------------------------------------------

# A few shared instants force ties; a few offsets give the same instant in other zones.
_INSTANTS = [T0 + timedelta(hours=h) for h in (0, 0, 3, 7, 24)]
_ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]

instants = st.one_of(
    st.sampled_from(_INSTANTS),
    st.datetimes(
        min_value=datetime(2024, 1, 1),
        max_value=datetime(2024, 12, 31),
        timezones=st.just(UTC),
    ),
).flatmap(lambda at: st.sampled_from(_ZONES).map(at.astimezone))

events_st = st.builds(
    ev,
    at=instants,
    status=st.sampled_from(list(Status)),
    sub=st.sampled_from(list(SubStatus)),
    code=st.sampled_from(["PU", "DF", "OK", "RT"]),
    desc=st.sampled_from(["Arrived", "arrived.", "Departed facility", "Delivered", "清关中"]),
    city=st.sampled_from([None, "Shenzhen", "Los Angeles"]),
    provider=st.sampled_from(["yanwen", "usps"]),
)
event_lists = st.lists(events_st, max_size=12)


def unique_by_fingerprint(events: list[CarrierEvent]) -> list[CarrierEvent]:
    seen: dict[str, CarrierEvent] = {}
    for e in events:
        seen.setdefault(fingerprint(e), e)
    return list(seen.values())


# --- fingerprint ------------------------------------------------------------------------


def test_fingerprint_is_sha256_of_documented_canonical_form() -> None:
    e = ev(at=datetime(2024, 5, 1, 16, 30, tzinfo=timezone(timedelta(hours=8))), desc="  Arrived, at  HUB! ")
    canonical = json.dumps(
        ["yanwen", "PU", "2024-05-01T08:30:00.000000+00:00", "shenzhen cn", "arrived at hub"],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert fingerprint(e) == hashlib.sha256(canonical.encode()).hexdigest()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Arrived at facility", "ARRIVED   at facility."),
        ("Arrived,Shenzhen", "arrived shenzhen"),
        ("Ｃｕｓｔｏｍｓ　ｃｌｅａｒｅｄ", "customs cleared"),
        ("清关中，请等待", "清关中 请等待"),
    ],
)
def test_cosmetic_description_differences_collapse(a: str, b: str) -> None:
    assert fingerprint(ev(desc=a)) == fingerprint(ev(desc=b))


def test_same_instant_in_another_zone_has_same_fingerprint() -> None:
    other = T0.astimezone(timezone(timedelta(hours=8)))
    assert fingerprint(ev(at=T0)) == fingerprint(ev(at=other))


@pytest.mark.parametrize(
    "changed",
    [
        ev(provider="usps"),
        ev(code="DF"),
        ev(at=T0 + timedelta(seconds=1)),
        ev(city="Guangzhou"),
        ev(desc="Departed facility"),
    ],
)
def test_identity_fields_change_fingerprint(changed: CarrierEvent) -> None:
    assert fingerprint(changed) != fingerprint(ev())


def test_mapped_status_is_not_part_of_identity() -> None:
    # a re-mapped status table must not duplicate every stored scan
    assert fingerprint(ev(status=Status.EXCEPTION, sub=SubStatus.DELAYED)) == fingerprint(ev())


def test_normalize_text() -> None:
    assert normalize_text("  Out-for   Delivery!\n") == "out for delivery"


# --- merge properties -------------------------------------------------------------------


@given(events=event_lists, data=st.data())
def test_shuffles_and_duplications_give_identical_timeline(
    events: list[CarrierEvent], data: st.DataObject
) -> None:
    extra = data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    shuffled = data.draw(st.permutations(events + extra))
    assert merge([], shuffled) == merge([], events)


@given(events=event_lists)
def test_timeline_is_ordered_and_deduplicated(events: list[CarrierEvent]) -> None:
    timeline = merge([], events).events
    keys = [sort_key(e) for e in timeline]
    assert keys == sorted(keys)
    assert all(a.occurred_at <= b.occurred_at for a, b in itertools.pairwise(timeline))
    fps = [fingerprint(e) for e in timeline]
    assert len(fps) == len(set(fps))
    assert set(fps) == {fingerprint(e) for e in events}


@given(existing=event_lists, incoming=event_lists)
def test_merge_is_idempotent(existing: list[CarrierEvent], incoming: list[CarrierEvent]) -> None:
    first = merge(existing, incoming)
    again = merge(first.events, incoming)
    assert again.events == first.events
    assert again.new_events == ()
    assert merge(first.events, first.events).events == first.events


@given(a=event_lists, b=event_lists, c=event_lists)
def test_merge_is_associative_over_batches(
    a: list[CarrierEvent], b: list[CarrierEvent], c: list[CarrierEvent]
) -> None:
    left = merge(merge(a, b).events, c).events
    right = merge(a, merge(b, c).events).events
    assert left == right


@given(events=event_lists, data=st.data())
def test_batches_in_any_split_equal_one_merge(events: list[CarrierEvent], data: st.DataObject) -> None:
    events = unique_by_fingerprint(events)
    cut = data.draw(st.integers(min_value=0, max_value=len(events)))
    stepwise = merge(merge([], events[:cut]).events, events[cut:]).events
    assert stepwise == merge([], events).events


@given(existing=event_lists, incoming=event_lists)
def test_new_events_are_exactly_the_unknown_fingerprints(
    existing: list[CarrierEvent], incoming: list[CarrierEvent]
) -> None:
    result = merge(existing, incoming)
    expected = {fingerprint(e) for e in incoming} - {fingerprint(e) for e in existing}
    assert [fingerprint(e) for e in result.new_events] == [
        fingerprint(e) for e in result.events if fingerprint(e) in expected
    ]
    assert set(result.new_events) <= set(result.events)


def test_existing_copy_wins_over_a_near_duplicate() -> None:
    stored = ev(desc="Arrived at facility", status=Status.IN_TRANSIT)
    variant = ev(desc="ARRIVED AT FACILITY.", status=Status.EXCEPTION, sub=SubStatus.DELAYED)
    result = merge([stored], [variant])
    assert result.events == (stored,)
    assert result.new_events == ()


def test_near_duplicates_in_one_batch_pick_the_same_copy_in_any_order() -> None:
    a = ev(desc="Arrived at facility")
    b = ev(desc="ARRIVED AT FACILITY.")
    assert merge([], [a, b]).events == merge([], [b, a]).events
    assert len(merge([], [a, b]).events) == 1


def test_first_and_last_mile_interleave_by_instant() -> None:
    first = [ev(T0, code="A", provider="yanwen"), ev(T0 + timedelta(days=2), code="B", provider="yanwen")]
    last = [
        ev(T0 + timedelta(days=1), code="X", provider="usps"),
        ev(T0 + timedelta(days=3), code="Y", provider="usps"),
    ]
    timeline = merge(first, last).events
    assert [e.raw_code for e in timeline] == ["A", "X", "B", "Y"]


def test_equal_instants_put_the_more_advanced_milestone_last() -> None:
    out = ev(T0, Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY, code="OFD", desc="Out for delivery")
    done = ev(T0, Status.DELIVERED, SubStatus.SIGNED, code="DL", desc="Delivered")
    for order in ([out, done], [done, out]):
        assert [e.raw_code for e in merge([], order).events] == ["OFD", "DL"]
        assert derive_status(order, None, None) == (Status.DELIVERED, SubStatus.SIGNED)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (Status.PENDING, Status.INFO_RECEIVED),
        (Status.INFO_RECEIVED, Status.IN_TRANSIT),
        (Status.IN_TRANSIT, Status.EXCEPTION),
        (Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY),
        (Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT),
        (Status.FAILED_ATTEMPT, Status.AVAILABLE_FOR_PICKUP),
        (Status.AVAILABLE_FOR_PICKUP, Status.DELIVERED),
        (Status.EXCEPTION, Status.RETURNED),
    ],
)
@pytest.mark.parametrize("code", ["A", "B", "C", "D", "E", "F"])
def test_equal_instants_order_by_journey(earlier: Status, later: Status, code: str) -> None:
    # several codes, so the fingerprint order differs between cases and cannot decide alone
    a = ev(T0, earlier, SubStatus.OTHER, code=code + "1", desc="first " + code)
    b = ev(T0, later, SubStatus.OTHER, code=code + "2", desc="second " + code)
    for order in ([a, b], [b, a]):
        assert merge([], order).events == (a, b)
        assert derive_status(order, None, None) == (later, SubStatus.OTHER)


def test_terminal_statuses_rank_above_all_others() -> None:
    top_other = max(JOURNEY_ORDER[s] for s in Status if s not in TERMINAL)
    assert all(JOURNEY_ORDER[s] > top_other for s in TERMINAL)
    assert set(JOURNEY_ORDER) == set(Status)


# --- derive_status properties -----------------------------------------------------------

non_terminal = st.sampled_from([s for s in Status if s not in TERMINAL])


@given(
    history=st.lists(
        st.builds(
            ev,
            at=st.integers(min_value=1, max_value=10_000).map(lambda m: T0 - timedelta(minutes=m)),
            status=st.sampled_from(list(Status)),
        )
    ),
    late=st.lists(
        st.builds(
            ev,
            at=st.integers(min_value=0, max_value=10_000).map(lambda m: T0 - timedelta(minutes=m)),
            status=non_terminal,
            sub=st.sampled_from(list(SubStatus)),
            code=st.sampled_from(["LATE1", "LATE2"]),
        ),
        min_size=1,
    ),
    previous_known=st.booleans(),
)
def test_late_older_scan_never_moves_delivered_back(
    history: list[CarrierEvent], late: list[CarrierEvent], previous_known: bool
) -> None:
    delivered = ev(T0, Status.DELIVERED, SubStatus.SIGNED, code="DL")
    timeline = merge(history, [delivered]).events
    previous = derive_status(timeline, None, None)
    assert previous == (Status.DELIVERED, SubStatus.SIGNED)
    merged = merge(timeline, late).events
    got = derive_status(merged, previous if previous_known else None, (Status.IN_TRANSIT, SubStatus.OTHER))
    assert got == (Status.DELIVERED, SubStatus.SIGNED)


@given(
    history=st.lists(st.builds(ev, at=st.integers(1, 10_000).map(lambda m: T0 - timedelta(minutes=m)))),
    newer_by=st.integers(min_value=1, max_value=100_000),
    status=st.sampled_from(list(Status)),
    sub=st.sampled_from(list(SubStatus)),
)
def test_a_newer_event_moves_a_terminal_status(
    history: list[CarrierEvent], newer_by: int, status: Status, sub: SubStatus
) -> None:
    delivered = ev(T0, Status.DELIVERED, SubStatus.SIGNED, code="DL")
    timeline = merge(history, [delivered]).events
    newer = ev(T0 + timedelta(seconds=newer_by), status, sub, code="NEW")
    merged = merge(timeline, [newer]).events
    assert derive_status(merged, (Status.DELIVERED, SubStatus.SIGNED), None) == (status, sub)


@settings(max_examples=50)
@given(events=st.lists(events_st, min_size=1), data=st.data())
def test_derive_status_ignores_input_order(events: list[CarrierEvent], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(events))
    assert derive_status(shuffled, None, None) == derive_status(events, None, None)


def test_delivered_then_newer_returned_is_allowed() -> None:
    delivered = ev(T0, Status.DELIVERED, SubStatus.SIGNED, code="DL")
    returned = ev(T0 + timedelta(days=5), Status.RETURNED, SubStatus.RETURNED_TO_SENDER, code="RT")
    got = derive_status([returned, delivered], (Status.DELIVERED, SubStatus.SIGNED), None)
    assert got == (Status.RETURNED, SubStatus.RETURNED_TO_SENDER)


def test_latest_event_wins_without_terminal() -> None:
    a = ev(T0, Status.IN_TRANSIT, SubStatus.DEPARTED, code="A")
    b = ev(T0 + timedelta(hours=1), Status.EXCEPTION, SubStatus.CUSTOMS_HELD, code="B")
    assert derive_status([b, a], (Status.IN_TRANSIT, SubStatus.DEPARTED), None) == (
        Status.EXCEPTION,
        SubStatus.CUSTOMS_HELD,
    )


def test_no_events_uses_carrier_status_then_pending() -> None:
    carrier = (Status.INFO_RECEIVED, SubStatus.LABEL_CREATED)
    assert derive_status([], None, carrier) == carrier
    assert derive_status([], None, None) == (Status.PENDING, SubStatus.OTHER)
    assert derive_status([], (Status.DELIVERED, SubStatus.SIGNED), (Status.PENDING, SubStatus.NOT_FOUND)) == (
        Status.DELIVERED,
        SubStatus.SIGNED,
    )


def test_unbacked_terminal_previous_only_moves_for_news_after_it() -> None:
    expired = (Status.EXPIRED, SubStatus.OTHER)
    scan = ev(T0, Status.IN_TRANSIT, SubStatus.ARRIVED)
    assert derive_status([scan], expired, None) == expired
    assert derive_status([scan], expired, None, previous_since=T0) == expired
    assert derive_status([scan], expired, None, previous_since=T0 - timedelta(seconds=1)) == (
        Status.IN_TRANSIT,
        SubStatus.ARRIVED,
    )
