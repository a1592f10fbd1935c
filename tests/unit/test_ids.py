"""Ids: ULID-style, Crockford base32, monotonic within a process."""

from __future__ import annotations

import re
import time

from tracker.models.types import new_id

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def decode(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 32 + CROCKFORD.index(ch)
    return value


def test_ids_carry_the_millisecond_and_sort_in_creation_order() -> None:
    before = int(time.time() * 1000)
    ids = [new_id("msg") for _ in range(5000)]
    after = int(time.time() * 1000)
    assert all(re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", i) for i in ids)
    values = [decode(i[4:]) for i in ids]
    assert values == sorted(values) and len(set(values)) == len(values)
    assert all(before <= v >> 80 <= after for v in values)
    # random bits differ from one id to the next, not only the counter
    assert len({v & ((1 << 80) - 1) for v in values}) == len(values)
