"""`utc_text` writes what `datetime.isoformat` writes: fingerprints and SQLite rows store it."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.models.types import utc_text

#: whole-minute offsets as carriers send them, and odd ones datetime allows
offsets = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
# away from the ends of the range, where converting to UTC would leave it
instants = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)


@given(instants, st.sampled_from(["T", " "]))
def test_utc_text_is_isoformat_in_utc_without_the_offset(value: datetime, sep: str) -> None:
    expected = value.astimezone(UTC).isoformat(sep, "microseconds")
    assert expected.endswith("+00:00")
    assert utc_text(value, sep) == expected[:-6]


def test_utc_text_pads_every_field() -> None:
    assert utc_text(datetime(7, 3, 4, 5, 6, 7, 8, tzinfo=UTC)) == "0007-03-04T05:06:07.000008"
    assert utc_text(datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), " ") == "2026-12-31 23:59:59.999999"


def test_utc_text_converts_an_offset_to_utc() -> None:
    shanghai = datetime(2026, 1, 1, 7, 30, tzinfo=timezone(timedelta(hours=8)))
    assert utc_text(shanghai) == "2025-12-31T23:30:00.000000"


def test_utc_text_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        utc_text(datetime(2026, 1, 1))
