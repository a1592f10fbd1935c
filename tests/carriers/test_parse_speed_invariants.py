"""The shortcuts taken for parsing speed give exactly what the plain forms give.

`load_json` and `load_json_fast` against `json.loads`; DHL's, FedEx's, Yanwen's and
17TRACK's fast readings against exact ones; `shown_time` against `wall_clock`, `localize`
against reading the wall clock with `replace(tzinfo=zone, fold=0)`, `resolve_in` against
`resolve_local`, the DHL place and wording caches against reading each address and text
afresh, and `CarrierEvent`'s own constructor against the fields it declares.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers import fedex, track17, yanwen
from carriers.base import (
    BadResponse,
    CarrierEvent,
    ExactFloat,
    InexactNumber,
    Location,
    TimeBasis,
    load_json,
    load_json_exact,
    load_json_fast,
    number_text,
)
from carriers.dhl import _location, _reading, parse_body, parse_shipment
from carriers.status import Status, SubStatus
from carriers.timezones import (
    from_offset,
    localize,
    resolve_in,
    resolve_local,
    shown_time,
    split_iso,
    wall_clock,
    zone_for,
    zone_info,
)
from tests.carriers.sim_helpers import samples_dir

SAMPLES = samples_dir()
PROPS = settings(max_examples=300, deadline=None, derandomize=True, database=None)


def json_values(integers: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    """Any JSON document whose integers are drawn from `integers`."""
    return st.recursive(
        st.none() | st.booleans() | integers | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )


JSON_VALUES = json_values(st.integers(min_value=-(10**30), max_value=10**30))


@PROPS
@given(JSON_VALUES)
def test_load_json_reads_what_json_loads_reads(value: Any) -> None:
    body = json.dumps(value).encode()
    assert load_json(body) == json.loads(body)
    assert load_json(body.decode()) == json.loads(body)


#: digit runs as carriers send them in texts (USPS and FedEx numbers of 20 to 22 digits)
#: beside integers beyond 64 bits
DIGIT_TEXTS = st.recursive(
    st.from_regex(r"\A[0-9]{17,24}\Z")
    | st.from_regex(r"\A[A-Z -]{0,2}[0-9]{19,23}\Z")
    | st.integers(-(10**25), 10**25),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.from_regex(r"\A[0-9]{0,22}\Z"), inner, max_size=4),
    max_leaves=12,
)


@PROPS
@given(DIGIT_TEXTS, st.sampled_from(["", " ", "\n"]))
def test_load_json_reads_long_digit_runs_as_json_loads_does(value: Any, space: str) -> None:
    body = (space + json.dumps(value)).encode()
    assert load_json(body) == json.loads(body)


def test_load_json_keeps_the_fast_reader_for_a_text_of_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("read by json.loads")

    monkeypatch.setattr(json, "loads", refuse)
    body = b'{"trackingNumber": "9400111899562537283591", "events": [{"code": "01"}]}'
    assert load_json(body)["trackingNumber"] == "9400111899562537283591"
    # a number that long cannot take the fast reader
    with pytest.raises(AssertionError, match=r"json\.loads"):
        load_json(b'{"trackingNumber": "9400111899562537283591", "id": 12345678901234567890123}')
    with pytest.raises(AssertionError, match=r"json\.loads"):
        load_json(b"12345678901234567890123")


def test_load_json_accepts_what_only_the_standard_parser_accepts() -> None:
    doc = load_json(b'{"id": 123456789012345678901234567890, "weight": NaN}')
    assert doc["id"] == 123456789012345678901234567890
    assert math.isnan(doc["weight"])
    assert load_json(json.dumps({"a": 1}).encode("utf-16")) == {"a": 1}


def _failure(read: Callable[[Any], Any], body: bytes | str) -> type[BaseException] | None:
    try:
        read(body)
    except ValueError as err:
        return type(err)
    return None


@pytest.mark.parametrize("body", [b"", b"<html>", b"\x00\x01", b'{"a": ', b"\xff\xfe\xfd", "[1,", b"[NaN"])
def test_load_json_fails_like_json_loads(body: bytes | str) -> None:
    expected = _failure(json.loads, body)
    assert expected is not None
    assert _failure(load_json, body) is expected


#: the integers orjson reads exactly
WITHIN_64_BITS = json_values(st.integers(min_value=-(2**63), max_value=2**64 - 1))


@PROPS
@given(WITHIN_64_BITS)
def test_load_json_fast_reads_what_json_loads_reads_within_64_bits(value: Any) -> None:
    body = json.dumps(value).encode()
    assert load_json_fast(body) == json.loads(body)


@PROPS
@given(JSON_VALUES)
def test_load_json_exact_reads_what_json_loads_reads(value: Any) -> None:
    body = json.dumps(value).encode()
    assert load_json_exact(body) == json.loads(body)


def test_exact_floats_are_marked_and_fast_ones_refused_when_they_may_be_integers() -> None:
    doc = load_json_exact(b"[1.5, 1e19, NaN, -Infinity, 18446744073709551616, 7]")
    assert all(type(v) is ExactFloat for v in doc[:4])
    assert [number_text(v) for v in doc] == ["1.5", "1e+19", "nan", "-inf", "18446744073709551616", "7"]
    # orjson gives the integer 2**64 as a float: one that large is refused, smaller ones are not
    [big, small] = load_json_fast(b"[18446744073709551616, 9.2e18]")
    with pytest.raises(InexactNumber):
        number_text(big)
    with pytest.raises(InexactNumber):
        number_text(-big)
    assert number_text(small) == "9.2e+18"
    assert number_text(float("nan")) == "nan"
    # what orjson refuses comes back exact
    assert type(load_json_fast(b"[NaN]")[0]) is ExactFloat


def _express() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLES / "dhl" / "shipments_openapi_example_express.json").read_bytes())
    return doc


def _read_exactly(body: bytes) -> list[Any]:
    """What DHL's parse gives when the body is read exactly from the start."""
    return [parse_shipment(s) for s in load_json_exact(body)["shipments"]]


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("id",), 12345678901234567890123, "12345678901234567890123"),
        (("id",), -9223372036854775809, "-9223372036854775809"),
        (("id",), 1e19, "1e+19"),  # a float as the body spells it
        (("id",), 18446744073709551615, "18446744073709551615"),  # the largest orjson holds
    ],
)
def test_dhl_reads_long_numbers_as_spelled(path: tuple[str, ...], value: Any, expected: str) -> None:
    doc = _express()
    doc["shipments"][0][path[0]] = value
    body = json.dumps(doc).encode()
    [result] = parse_body(body)
    assert result.shipment_ref == expected
    assert [result] == _read_exactly(body)


def test_dhl_long_numbers_where_text_belongs() -> None:
    doc = _express()
    shipment = doc["shipments"][0]
    shipment["origin"]["address"]["postalCode"] = 12345678901234567890
    shipment["events"][0]["description"] = 98765432109876543210
    shipment["details"]["proofOfDelivery"]["signed"]["name"] = 1e300
    body = json.dumps(doc).encode()
    [result] = parse_body(body)
    assert [result] == _read_exactly(body)
    assert result.events[0].description == "98765432109876543210"


def test_dhl_long_numbers_it_does_not_read_leave_the_fast_reading_alone() -> None:
    doc = _express()
    doc["shipments"][0]["details"]["pieceIds"].append(123456789012345678901234567890)
    doc["shipments"][0]["details"]["weight"]["value"] = 1e300
    body = json.dumps(doc).encode()
    assert parse_body(body) == _read_exactly(body) == parse_body(json.dumps(_express()).encode())


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, child in value.items() for leaf in _leaves(child, (*path, key))]
    if isinstance(value, list):
        return [leaf for i, child in enumerate(value) for leaf in _leaves(child, (*path, i))]
    return [path]


NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 2**64 - 1, 10**30]),
    st.floats(allow_nan=False),
)


def _mutated(doc: Any, data: st.DataObject) -> bytes:
    """`doc` with one to four of its leaves replaced by numbers, orjson's limits included."""
    leaves = _leaves(doc)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        *parents, last = data.draw(st.sampled_from(leaves))
        target = doc
        for step in parents:
            target = target[step]
        target[last] = data.draw(NUMBERS)
    return json.dumps(doc).encode()


@PROPS
@given(st.data())
def test_dhl_fast_reading_gives_what_the_exact_one_gives(data: st.DataObject) -> None:
    doc = _express()
    doc["shipments"].append(json.loads(json.dumps(doc["shipments"][0])))
    body = _mutated(doc, data)
    try:
        expected = _read_exactly(body)
    except (KeyError, TypeError):  # the mutation broke the envelope
        with pytest.raises(BadResponse):
            parse_body(body)
        return
    assert parse_body(body) == expected


def test_a_long_numeric_id_keeps_every_digit() -> None:
    doc = json.loads((SAMPLES / "dhl" / "shipments_openapi_example_express.json").read_bytes())
    doc["shipments"][0]["id"] = 12345678901234567890123
    [result] = parse_body(json.dumps(doc).encode())
    assert result.shipment_ref == "12345678901234567890123"
    assert load_json(b"[-9223372036854775809]") == [-9223372036854775809]


NAIVE = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31))
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60)


def _offset_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@PROPS
@given(
    NAIVE,
    st.sampled_from(["T", " "]),
    st.sampled_from(["auto", "seconds", "minutes", "milliseconds", "microseconds"]),
    st.none() | st.just("Z") | OFFSETS.map(_offset_text),
)
def test_shown_time_is_the_wall_clock_of_the_text(local: datetime, sep: str, timespec: str, suffix: str | None) -> None:
    text = local.isoformat(sep=sep, timespec=timespec) + (suffix or "")
    parsed = datetime.fromisoformat(text)
    assert shown_time(text, parsed) == wall_clock(parsed)


ZONES = st.sampled_from(
    ["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/St_Johns", "UTC"]
)


@PROPS
@given(NAIVE, st.sampled_from([0, 1]), ZONES)
def test_localize_reads_the_wall_clock_with_fold_zero(local: datetime, fold: int, name: str) -> None:
    zone = ZoneInfo(name)
    reference = local.replace(tzinfo=zone, fold=0)
    offset = reference.utcoffset() or timedelta(0)
    instant, minutes = localize(local.replace(fold=fold), zone)
    assert instant == reference.astimezone(UTC)
    assert instant.tzinfo is UTC
    assert minutes == int(offset.total_seconds() // 60)


@PROPS
@given(NAIVE, st.none() | st.integers(min_value=-(24 * 3600 - 1), max_value=24 * 3600 - 1))
def test_split_iso_is_the_reading_without_its_offset(local: datetime, seconds: int | None) -> None:
    zone = None if seconds is None else timezone(timedelta(seconds=seconds))
    text = local.replace(tzinfo=zone).isoformat()
    parsed = datetime.fromisoformat(text)
    offset = parsed.utcoffset()
    expected_minutes = None if offset is None else int(offset.total_seconds() // 60)
    wall, minutes = split_iso(text)
    assert (wall, minutes) == (parsed.replace(tzinfo=None), expected_minutes)
    assert wall.tzinfo is None


@PROPS
@given(NAIVE, OFFSETS, st.sampled_from([None, UTC, timezone(timedelta(hours=-7))]))
def test_from_offset_is_the_reading_at_that_offset(local: datetime, minutes: int, zone: timezone | None) -> None:
    reading = local.replace(tzinfo=zone)
    instant = from_offset(reading, minutes)
    assert instant == local.replace(tzinfo=timezone(timedelta(minutes=minutes))).astimezone(UTC)
    assert instant.tzinfo is UTC


def test_localize_reads_an_aware_value_as_a_wall_clock() -> None:
    aware = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)
    assert localize(aware, ZoneInfo("Asia/Shanghai")) == (datetime(2024, 7, 1, 1, 0, tzinfo=UTC), 480)


PLACES = st.sampled_from(
    [
        (None, None, None),
        ("NL", "AMSTERDAM", None),
        ("US", "JAMAICA NY", None),
        ("US", None, "CA"),
        ("US", None, None),
        ("AU", "Sydney", "NSW"),
        (None, "Leipzig", None),
    ]
)
FALLBACKS = st.sampled_from([None, "Asia/Shanghai", "America/New_York", "Australia/Lord_Howe"])


@PROPS
@given(NAIVE, st.sampled_from([0, 1]), PLACES, FALLBACKS)
def test_resolve_in_is_resolve_local(
    local: datetime, fold: int, place: tuple[str | None, str | None, str | None], fallback: str | None
) -> None:
    country, city, region = place
    local = local.replace(fold=fold)
    expected = resolve_local(local, country=country, city=city, region=region, fallback_zone=fallback)
    got = resolve_in(local, zone_info(zone_for(country, city, region)), zone_info(fallback))
    assert got == expected
    assert got[0].tzinfo is UTC and got[0].fold == expected[0].fold


def test_carrier_event_constructor_is_the_dataclass_one() -> None:
    names = [f.name for f in dataclasses.fields(CarrierEvent)]
    params = inspect.signature(CarrierEvent).parameters
    assert list(params) == names
    assert [params[n].default for n in names] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        for f in dataclasses.fields(CarrierEvent)
    ]
    at = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)
    args = (at, TimeBasis.UTC_GIVEN, "2024-07-01T09:00:00", Status.IN_TRANSIT, SubStatus.ARRIVED, "AR", "Arrived")
    event = CarrierEvent(*args, Location(country="NL"), "dhl", 0)
    assert event == CarrierEvent(**dict(zip(names, (*args, Location(country="NL"), "dhl", 0), strict=True)))
    assert [getattr(event, n) for n in names] == [*args, Location(country="NL"), "dhl", 0]
    plain = CarrierEvent(*args)
    assert (plain.location, plain.provider, plain.utc_offset_minutes) == (None, "", None)
    assert dataclasses.replace(event, provider="ups").provider == "ups"
    assert hash(event) == hash(CarrierEvent(*args, Location(country="NL"), "dhl", 0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.provider = "ups"  # type: ignore[misc]
    with pytest.raises(ValueError, match="timezone-aware"):
        CarrierEvent(at.replace(tzinfo=None), *args[1:])


def test_a_remembered_wording_is_the_wording_read_afresh() -> None:
    raw = {"statusCode": " Transit ", "description": "Arrived at DHL Sort Facility", "status": "ok"}
    first, second = _reading(raw), _reading(dict(raw))
    assert first == second == ("transit", "Arrived at DHL Sort Facility", "ok", (Status.IN_TRANSIT, SubStatus.ARRIVED))
    # equal as keys, read differently: never answered from what a text left behind
    assert _reading({"statusCode": 1})[0] == "1"
    assert _reading({"statusCode": True})[0] == ""
    assert _reading({"statusCode": ["transit"]})[0] == ""


def test_places_equal_as_keys_but_read_differently_stay_apart() -> None:
    # 1, 1.0 and True are one dict key; as address fields they read differently
    cities = [_location({"address": {"addressLocality": v, "countryCode": "NL"}}) for v in (1, 1.0, True, "1")]
    assert [loc.city if loc else None for loc in cities] == ["1", "1.0", None, "1"]


def test_a_remembered_place_is_the_place_read_afresh() -> None:
    raw = {"address": {"addressLocality": " Leipzig ", "countryCode": "de", "postalCode": "04435"}}
    first, second = _location(raw), _location(dict(raw))
    assert first == second
    assert first is not None and (first.city, first.country, first.postcode) == ("Leipzig", "DE", "04435")
    assert _location({"address": {"addressLocality": ["Leipzig"]}}) is None


def _outcome(parse: Callable[[bytes], Any], body: bytes) -> tuple[str, Any]:
    try:
        return "parsed", parse(body)
    except BadResponse as err:
        return "refused", str(err)


def _same_reading(fast: Callable[[bytes], Any], exact: Callable[[bytes], Any], body: bytes) -> None:
    """The fast path gives what the exact reading gives, or the same BadResponse."""
    assert _outcome(fast, body) == _outcome(exact, body)


@PROPS
@given(st.data())
def test_fedex_fast_reading_gives_what_json_loads_gives(data: st.DataObject) -> None:
    doc = json.loads((SAMPLES / "fedex" / "track_delivered_mixed_offsets.json").read_bytes())
    doc["output"]["completeTrackResults"].append(json.loads(json.dumps(doc["output"]["completeTrackResults"][0])))
    body = _mutated(doc, data)
    _same_reading(fedex.parse_response, lambda b: fedex.parse_document(json.loads(b), b), body)


def _yanwen_doc() -> Any:
    doc = json.loads((SAMPLES / "yanwen" / "tracking_response_example.json").read_bytes())
    doc["result"].append(json.loads(json.dumps(doc["result"][0])))
    return doc


@PROPS
@given(st.data())
def test_yanwen_fast_reading_gives_what_the_exact_one_gives(data: st.DataObject) -> None:
    body = _mutated(_yanwen_doc(), data)
    _same_reading(yanwen.parse_response, lambda b: yanwen.parse_document(load_json_exact(b), b), body)


#: integers orjson cannot hold, read as text by the carriers that take numbers for text
LONG_INTEGERS = [(n, str(n)) for n in (123456789012345678901234567890, 2**64, -(2**63) - 1)]


@pytest.mark.parametrize(("value", "expected"), [*LONG_INTEGERS, (1e19, "1e+19"), (12345, "12345")])
def test_yanwen_numbers_read_as_text_keep_every_digit(value: Any, expected: str) -> None:
    doc = _yanwen_doc()
    doc["result"][0]["tracking_number"] = value
    body = json.dumps(doc).encode()
    first = yanwen.parse_response(body)[0]
    assert first.tracking_number == expected
    assert first.found


def test_yanwen_long_number_in_a_checkpoint_is_read_not_a_broken_parcel() -> None:
    doc = _yanwen_doc()
    doc["result"][0]["checkpoints"][0]["message"] = 98765432109876543210
    [first, second] = yanwen.parse_response(json.dumps(doc).encode())
    assert first.error is None
    assert first.events[0].description == "98765432109876543210"
    assert second.events[0].description == "Yanwen Acceptance"


def _track17_push() -> Any:
    return json.loads((SAMPLES / "17track" / "webhook_tracking_updated_dhl_paket.json").read_bytes())


def _track17_reply() -> Any:
    entry = _track17_push()["data"]
    rejected = [{"number": "LP0001", "error": {"code": -18019909, "message": "No tracking information."}}]
    return {"code": 0, "data": {"accepted": [entry, json.loads(json.dumps(entry))], "rejected": rejected}}


@PROPS
@given(st.data())
def test_track17_fast_reading_gives_what_the_exact_one_gives(data: st.DataObject) -> None:
    body = _mutated(_track17_reply(), data)
    _same_reading(track17.parse_split, lambda b: track17.split_reply(load_json_exact(b), b), body)


@PROPS
@given(st.data())
def test_track17_fast_reading_of_a_push_gives_what_the_exact_one_gives(data: st.DataObject) -> None:
    body = _mutated(_track17_push(), data)
    _same_reading(track17.parse_push, lambda b: track17._push_results(load_json_exact(b), b), body)


# a float is no tracking number to 17TRACK's parser
@pytest.mark.parametrize(("number", "expected"), [*LONG_INTEGERS, (1234567890, "1234567890"), (1e19, "")])
def test_track17_numbers_given_as_integers_keep_every_digit(number: Any, expected: str) -> None:
    reply = _track17_reply()
    reply["data"]["accepted"][0]["number"] = number
    reply["data"]["rejected"][0]["error"]["code"] = 2**70
    results, codes = track17.parse_split(json.dumps(reply).encode())
    assert results[0].tracking_number == expected
    assert results[2].raw_status == str(2**70)
    assert codes == {"LP0001": 2**70}
