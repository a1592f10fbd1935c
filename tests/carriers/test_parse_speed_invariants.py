"""The shortcuts taken for parsing speed give exactly what the plain forms give.

`load_json` against `json.loads`, `shown_time` against `wall_clock`, `localize` against
reading the wall clock with `replace(tzinfo=zone, fold=0)`, and the DHL place cache
against reading each address afresh.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carriers.base import load_json
from carriers.dhl import _location, parse_body
from carriers.timezones import localize, shown_time, wall_clock
from tests.carriers.sim_helpers import samples_dir

SAMPLES = samples_dir()
PROPS = settings(max_examples=300, deadline=None, derandomize=True, database=None)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@PROPS
@given(JSON_VALUES)
def test_load_json_reads_what_json_loads_reads(value: Any) -> None:
    body = json.dumps(value).encode()
    assert load_json(body) == json.loads(body)
    assert load_json(body.decode()) == json.loads(body)


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


def test_localize_reads_an_aware_value_as_a_wall_clock() -> None:
    aware = datetime(2024, 7, 1, 9, 0, tzinfo=UTC)
    assert localize(aware, ZoneInfo("Asia/Shanghai")) == (datetime(2024, 7, 1, 1, 0, tzinfo=UTC), 480)


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
