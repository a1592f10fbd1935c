"""`new_id`: ULID layout, order of creation, and no shared randomness across a fork."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.models.types import _CROCKFORD, _crockford, new_id


def _reference(value: int) -> str:
    digits = []
    for _ in range(26):
        digits.append(_CROCKFORD[value % 32])
        value //= 32
    return "".join(reversed(digits))


def _decode(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 32 + _CROCKFORD.index(ch)
    return value


@given(st.integers(min_value=0, max_value=2**130 - 1))
def test_crockford_digits_match_a_plain_base32_conversion(value: int) -> None:
    assert _crockford(value) == _reference(value)


def test_an_id_carries_its_creation_millisecond_and_80_random_bits() -> None:
    before = int(time.time() * 1000)
    made = new_id("shp")
    after = int(time.time() * 1000)
    prefix, _, body = made.partition("_")
    assert prefix == "shp"
    assert len(body) == 26 and set(body) <= set(_CROCKFORD)
    assert before <= _decode(body) >> 80 <= after
    # the random part differs from id to id (80 bits: a repeat would be a defect)
    assert len({_decode(new_id("x")[2:]) & (2**80 - 1) for _ in range(5000)}) == 5000


def test_ids_follow_the_order_they_were_made_in() -> None:
    made = [new_id("evt") for _ in range(20_000)]  # many within one millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def _child_ids(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put([new_id("evt") for _ in range(300)])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_its_own_random_bits() -> None:
    new_id("evt")  # the parent now holds random bytes it has not used yet
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(timeout=30)
    ours = [new_id("evt") for _ in range(300)]

    def random_parts(ids: list[str]) -> set[int]:
        return {_decode(i[4:]) & (2**80 - 1) for i in ids}

    assert not random_parts(ours) & random_parts(theirs)
