"""Column types shared by every table."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_PAIR_SHIFTS = range(120, -1, -10)


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


_last = [0]
_lock = threading.Lock()


def new_id(prefix: str) -> str:
    """A ULID-style id: 48-bit milliseconds then 80 random bits, Crockford base32.

    Monotonic within a process (an id made in the same millisecond is the previous one
    plus one), so cursor pagination by id follows creation order exactly.
    """
    with _lock:
        value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
        if value <= _last[0]:
            value = _last[0] + 1
        _last[0] = value
    # 26 characters of 5 bits, written two at a time from the most significant end
    return f"{prefix}_{''.join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])}"
