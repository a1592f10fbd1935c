"""Column types shared by every table."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no zone type, so we store naive UTC and
    re-attach UTC on the way out. Naive values are refused at bind time because a naive
    datetime in this code base is always a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; use an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else utc_from_stored(value)


#: "YYYY-MM-DD HH:MM:SS.ffffff": how SQLite stores a `UTCDateTime` (naive UTC)
_SQLITE_INSTANT_LENGTH = 26


def utc_from_stored(value: Any) -> datetime:
    """A stored `UTCDateTime` value (a datetime, or SQLite's text) as an aware UTC instant.

    SQLite's usual text is parsed with its offset appended: `replace(tzinfo=...)` costs
    several times the parse, and stored timelines are read a dozen instants a poll.
    """
    if isinstance(value, str):
        if len(value) == _SQLITE_INSTANT_LENGTH:
            return datetime.fromisoformat(value + "+00:00")
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


#: "00" to "99", indexed by value
_TWO_DIGITS = tuple(f"{i:02d}" for i in range(100))


def utc_text(value: datetime, sep: str = "T") -> str:
    """An aware instant in UTC as "YYYY-MM-DD{sep}HH:MM:SS.ffffff", without an offset.

    The same text as `value.astimezone(UTC).isoformat(sep, "microseconds")[:26]`
    (`test_utc_text`). `isoformat` goes through `PyUnicode_FromFormat` and the C library's
    printf, about 11,600 machine instructions a call; a poll formats two dozen instants a
    shipment (fingerprints, SQLite text).
    """
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; use an aware UTC datetime")
        value = value.astimezone(UTC)
    two = _TWO_DIGITS
    # a format spec ("04d", "06d") costs as much as the rest of the instant together
    year = value.year
    return (
        f"{year if year > 999 else f'{year:04d}'}-{two[value.month]}-{two[value.day]}{sep}"
        f"{two[value.hour]}:{two[value.minute]}:{two[value.second]}.{str(value.microsecond + 1_000_000)[1:]}"
    )


def iso_text(value: datetime) -> str:
    """`value.isoformat()` for an aware datetime, written without `isoformat` when the
    zone is a fixed offset (UTC above all, as every stored instant is).

    Webhook payloads carry several instants a shipment; `isoformat` costs about 11,600
    machine instructions a call (see `utc_text`). `test_iso_text` holds the two equal.
    """
    zone = value.tzinfo
    if zone is UTC:
        offset = "+00:00"
    elif type(zone) is timezone:
        offset = _offset_text(zone)
    else:
        return value.isoformat()
    two = _TWO_DIGITS
    year = value.year
    text = (
        f"{year if year > 999 else f'{year:04d}'}-{two[value.month]}-{two[value.day]}T"
        f"{two[value.hour]}:{two[value.minute]}:{two[value.second]}"
    )
    if value.microsecond:
        text = f"{text}.{str(value.microsecond + 1_000_000)[1:]}"
    return text + offset


@lru_cache(maxsize=256)
def _offset_text(zone: timezone) -> str:
    # what isoformat writes after the seconds, taken from isoformat itself
    return datetime(2000, 1, 1, tzinfo=zone).isoformat()[19:]


_last = [0]
_lock = threading.Lock()
#: random bytes drawn from the OS at once, 10 an id: one `os.urandom` call per 256 ids
#: instead of one per id (a poll makes about 16 ids a shipment)
_RANDOM_BATCH = 2560
_random = bytearray()


def _forget_random() -> None:
    # a forked child must not hand out the random bytes its parent will use too
    _random.clear()


os.register_at_fork(after_in_child=_forget_random)


def _random_80_bits() -> int:
    if not _random:
        _random.extend(os.urandom(_RANDOM_BATCH))
    bits = int.from_bytes(_random[-10:], "big")
    del _random[-10:]
    return bits


def _crockford(value: int) -> str:
    """`value` (< 2**130) as 26 Crockford base32 digits, most significant first."""
    # written out two digits at a time: a third cheaper than a join over a generator
    p = _PAIRS
    return (
        p[value >> 120 & 1023]
        + p[value >> 110 & 1023]
        + p[value >> 100 & 1023]
        + p[value >> 90 & 1023]
        + p[value >> 80 & 1023]
        + p[value >> 70 & 1023]
        + p[value >> 60 & 1023]
        + p[value >> 50 & 1023]
        + p[value >> 40 & 1023]
        + p[value >> 30 & 1023]
        + p[value >> 20 & 1023]
        + p[value >> 10 & 1023]
        + p[value & 1023]
    )


def new_id(prefix: str) -> str:
    """A ULID-style id: 48-bit milliseconds then 80 random bits, Crockford base32.

    Monotonic within a process (an id made in the same millisecond is the previous one
    plus one), so cursor pagination by id follows creation order exactly.
    """
    with _lock:
        value = (int(time.time() * 1000) << 80) | _random_80_bits()
        if value <= _last[0]:
            value = _last[0] + 1
        _last[0] = value
    return f"{prefix}_{_crockford(value)}"
