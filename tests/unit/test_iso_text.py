"""`iso_text` writes what `datetime.isoformat` writes: webhook payloads carry it."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from tracker.models.types import iso_text

#: whole-minute offsets as carriers send them, and the odd ones datetime allows (seconds,
#: microseconds)
offsets = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
zones = st.one_of(st.just(UTC), offsets, st.sampled_from([ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York")]))
instants = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=zones)


@given(instants)
def test_iso_text_is_isoformat(value: datetime) -> None:
    assert iso_text(value) == value.isoformat()


def test_iso_text_leaves_out_zero_microseconds_and_pads_the_rest() -> None:
    assert iso_text(datetime(7, 3, 4, 5, 6, 7, tzinfo=UTC)) == "0007-03-04T05:06:07+00:00"
    assert iso_text(datetime(2026, 3, 4, 5, 6, 7, 80, tzinfo=UTC)) == "2026-03-04T05:06:07.000080+00:00"


def test_iso_text_writes_the_instants_own_offset() -> None:
    shanghai = datetime(2026, 1, 1, 7, 30, tzinfo=timezone(timedelta(hours=8)))
    assert iso_text(shanghai) == "2026-01-01T07:30:00+08:00"
    odd = datetime(2026, 1, 1, tzinfo=timezone(-timedelta(hours=3, minutes=30, seconds=15)))
    assert iso_text(odd) == "2026-01-01T00:00:00-03:30:15"
