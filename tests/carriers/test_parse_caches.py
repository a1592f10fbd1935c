"""Parsing shortcuts of FedEx and 17TRACK give exactly what the plain forms give: the
offset-given instant against `split_iso` + `from_offset`, and the depot caches against a fresh read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from carriers.base import Location, TimeBasis
from carriers.fedex import _instant, _location
from carriers.timezones import from_offset, split_iso, wall_clock
from carriers.track17 import _location as track17_location

PROPS = settings(max_examples=300, deadline=None, derandomize=True, database=None)

OFFSETS = st.integers(min_value=-14 * 3600, max_value=14 * 3600).map(lambda s: timedelta(seconds=s))
WALLS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1))


@PROPS
@given(WALLS, OFFSETS, st.sampled_from(["seconds", "milliseconds", "microseconds"]))
def test_offset_given_instant_matches_the_plain_reading(wall: datetime, offset: timedelta, spec: str) -> None:

    text = wall.replace(tzinfo=timezone(offset)).isoformat(timespec=spec)
    plain_wall, minutes = split_iso(text)
    assert minutes is not None
    at, basis, local, given_minutes = _instant(text, None)
    assert (at, basis, local, given_minutes) == (
        from_offset(plain_wall, minutes),
        TimeBasis.OFFSET_GIVEN,
        wall_clock(plain_wall),
        minutes,
    )
    assert at.tzinfo is UTC


TEXTS = st.one_of(st.none(), st.integers(), st.text(max_size=6), st.lists(st.text(max_size=2), max_size=2))


@PROPS
@given(TEXTS, TEXTS, TEXTS, TEXTS)
def test_depot_cache_reads_like_a_fresh_read(city: Any, region: Any, country: Any, postcode: Any) -> None:
    raw = {"city": city, "stateOrProvinceCode": region, "countryCode": country, "postalCode": postcode}

    def text(v: Any) -> str:
        return v.strip() if isinstance(v, str) else ""

    fresh = Location(
        city=text(city) or None,
        region=text(region) or None,
        country=text(country).upper() or None,
        postcode=text(postcode) or None,
    )
    expected = fresh if any((fresh.city, fresh.region, fresh.country, fresh.postcode)) else None
    assert _location(raw) == expected
    assert _location(raw) == expected  # and again, from the cache


@PROPS
@given(TEXTS, TEXTS, TEXTS, TEXTS)
def test_17track_depot_cache_reads_like_a_fresh_read(city: Any, state: Any, country: Any, postcode: Any) -> None:

    def text(v: Any) -> str:
        return v.strip() if isinstance(v, str) else ""

    code = text(country).upper()
    fresh = Location(
        city=text(city) or None,
        region=text(state) or None,
        country=code if len(code) == 2 and code.isalpha() else None,
        postcode=text(postcode) or None,
    )
    expected = fresh if any((fresh.city, fresh.region, fresh.country, fresh.postcode)) else None
    raw = {"city": city, "state": state, "country": country, "postal_code": postcode}
    assert track17_location(raw) == expected
    assert track17_location(raw) == expected
