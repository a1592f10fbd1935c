"""Local wall-clock time + place -> UTC instant, and offset parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carriers.base import TimeBasis
from carriers.timezones import country_zone, parse_offset, resolve_local, split_iso, zone_for


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def wall(*args: int) -> datetime:
    return datetime(*args)  # a carrier's local wall-clock reading, deliberately naive


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("+8", 480),
        ("+08:00", 480),
        ("-7:00", -420),
        ("+0800", 480),
        ("-05:30", -330),
        ("+0545", 345),
        ("GMT+8", 480),
        ("Z", 0),
        ("+00:00", 0),
    ],
)
def test_parse_offset(text: str, minutes: int) -> None:
    assert parse_offset(text) == minutes


@pytest.mark.parametrize("text", ["", "8", "+8:7", "+25:00", "+08:60", "abc", "+08:00:00"])
def test_parse_offset_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="offset"):
        parse_offset(text)


def test_single_zone_country_from_tz_database() -> None:
    # 2018-03-02 is winter in Amsterdam: CET, +01:00
    instant, basis, offset = resolve_local(wall(2018, 3, 2, 7, 53, 47), country="NL", city=None)
    assert (instant, basis, offset) == (utc(2018, 3, 2, 6, 53, 47), TimeBasis.ZONE_FROM_LOCATION, 60)


def test_countries_whose_zones_agree_count_as_single_zone() -> None:
    # Germany lists Europe/Berlin and Europe/Busingen; both keep the same offsets
    assert country_zone("DE") in ("Europe/Berlin", "Europe/Busingen")
    assert country_zone("US") is None
    assert country_zone("CN") == "Asia/Shanghai"


@pytest.mark.parametrize(
    ("country", "city", "region", "zone"),
    [
        ("US", "Wayne", "NJ", "America/New_York"),
        ("US", "Nowhere", "New Jersey", "America/New_York"),
        ("US", "SEATTLE", None, "America/Los_Angeles"),
        ("US", "JAMAICA NY", None, "America/New_York"),
        ("US", "Springfield", "IL", "America/Chicago"),
        ("CA", "St. John's", None, "America/St_Johns"),
        ("CA", "Montréal", None, "America/Toronto"),
        ("BR", "Manaus", None, "America/Manaus"),
        ("BR", "Somewhere", "São Paulo", "America/Sao_Paulo"),
        ("RU", "Vladivostok", None, "Asia/Vladivostok"),
        ("AU", "Perth", None, "Australia/Perth"),
        ("AU", "Bondi", "NSW", "Australia/Sydney"),
        ("MX", "Cancún", None, "America/Cancun"),
        ("ES", "Las Palmas de Gran Canaria", None, "Atlantic/Canary"),
        ("ES", "Madrid", None, "Europe/Madrid"),
        ("NL", "Oderweg 2, AMSTERDAM", None, "Europe/Amsterdam"),
    ],
)
def test_zone_for_places(country: str, city: str | None, region: str | None, zone: str) -> None:
    assert zone_for(country, city, region) == zone


def test_multi_zone_country_without_city_uses_fallback_then_utc() -> None:
    local = wall(2024, 7, 1, 9, 0, 0)
    assert resolve_local(local, country="US", city="Nowhere", fallback_zone="America/Denver") == (
        utc(2024, 7, 1, 15, 0, 0),
        TimeBasis.ZONE_ASSUMED,
        -360,
    )
    assert resolve_local(local, country="US", city="Nowhere", fallback_zone=None) == (
        utc(2024, 7, 1, 9, 0, 0),
        TimeBasis.ZONE_ASSUMED,
        0,
    )
    assert resolve_local(local, country=None, fallback_zone="Not/AZone") == (
        utc(2024, 7, 1, 9, 0, 0),
        TimeBasis.ZONE_ASSUMED,
        0,
    )


def test_dst_gap_and_fold_read_with_fold_zero() -> None:
    # 2025-03-30 02:30 does not exist in Berlin; fold=0 reads it at the pre-transition +01:00
    assert resolve_local(wall(2025, 3, 30, 2, 30), country="DE")[0] == utc(2025, 3, 30, 1, 30)
    # 2025-10-26 02:30 happens twice in Berlin; fold=0 picks the first (+02:00)
    assert resolve_local(wall(2025, 10, 26, 2, 30), country="DE")[0] == utc(2025, 10, 26, 0, 30)
    # the same input always gives the same instant
    assert resolve_local(wall(2025, 10, 26, 2, 30), country="DE") == resolve_local(
        wall(2025, 10, 26, 2, 30), country="DE"
    )


def test_aware_input_is_converted_as_is() -> None:
    aware = datetime.fromisoformat("2024-03-20T07:07:00+08:00")
    assert resolve_local(aware, country="US") == (utc(2024, 3, 19, 23, 7), TimeBasis.OFFSET_GIVEN, 480)


def test_split_iso() -> None:
    assert split_iso("2022-09-14T08:47:00+01:00") == (wall(2022, 9, 14, 8, 47), 60)
    assert split_iso("2018-03-02T07:53:47") == (wall(2018, 3, 2, 7, 53, 47), None)
    assert split_iso("2018-03-02T07:53:47Z") == (wall(2018, 3, 2, 7, 53, 47), 0)
    with pytest.raises(ValueError, match="Invalid"):
        split_iso("yesterday")
