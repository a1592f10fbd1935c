"""Outbox payloads: the same JSON document whatever the values hold."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tracker.store.outbox import payload

NOW = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "data",
    [
        {"text": "Livré à « Zoë » 已签收", "numbers": [1, 2.5, 1e-7, None, True]},
        {"at": datetime(2026, 1, 5, 8, 30, 1, 5, tzinfo=UTC), "day": date(2026, 1, 6), "amount": Decimal("1.10")},
        {"big": 2**70, "nested": {"list": [{"k": "v"}]}},
        {1: "an integer key"},
    ],
    ids=["text", "dates-and-decimals", "big-integer", "non-string-key"],
)
def test_payload_is_the_document_json_dumps_writes(data: dict[Any, Any]) -> None:
    expected = json.dumps(
        {"type": "shipment.updated", "timestamp": "2026-01-05T08:30:00Z", "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    text = payload("shipment.updated", data, NOW)
    assert json.loads(text) == json.loads(expected)
    assert "\\u" not in text  # non-ASCII text is written as UTF-8, not escaped


def test_the_timestamp_keeps_the_zone_it_was_given_in() -> None:
    # the same instant in UTC, then at +08:00: equal datetimes, written differently
    first = json.loads(payload("shipment.updated", {}, NOW))["timestamp"]
    shanghai = NOW.astimezone(timezone(timedelta(hours=8)))
    second = json.loads(payload("shipment.updated", {}, shanghai))["timestamp"]
    assert (first, second) == ("2026-01-05T08:30:00Z", "2026-01-05T16:30:00+08:00")
