"""Retry policy: schedule with jitter, Retry-After, outcome classes, disabling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tracker.webhooks.retry import (
    MAX_RETRY_AFTER,
    Outcome,
    classify,
    next_attempt_at,
    parse_retry_after,
    should_disable,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

DESIGN_DELAYS = [
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
]


@pytest.mark.parametrize(("attempt_no", "delay"), list(enumerate(DESIGN_DELAYS, start=1)))
def test_midpoint_jitter_gives_the_design_schedule(attempt_no: int, delay: timedelta) -> None:
    assert next_attempt_at(attempt_no, NOW, 0.5) == NOW + delay


@pytest.mark.parametrize(("attempt_no", "delay"), list(enumerate(DESIGN_DELAYS, start=1)))
def test_jitter_stays_within_ten_percent(attempt_no: int, delay: timedelta) -> None:
    low = next_attempt_at(attempt_no, NOW, 0.0)
    high = next_attempt_at(attempt_no, NOW, 1.0)
    assert low == NOW + delay * 0.9
    assert high == NOW + delay * 1.1


def test_total_span_is_about_three_days_then_give_up() -> None:
    at = NOW
    for attempt_no in range(1, len(DESIGN_DELAYS) + 1):
        following = next_attempt_at(attempt_no, at, 0.5)
        assert following is not None
        at = following
    assert at - NOW == timedelta(hours=75, minutes=35, seconds=5)
    assert next_attempt_at(len(DESIGN_DELAYS) + 1, at, 0.5) is None


def test_retry_after_wins_only_when_longer() -> None:
    assert next_attempt_at(1, NOW, 0.5, retry_after=120) == NOW + timedelta(seconds=120)
    assert next_attempt_at(3, NOW, 0.5, retry_after=120) == NOW + timedelta(minutes=30)


@pytest.mark.parametrize("retry_after", [7 * 86400.0, 1e300])
def test_retry_after_is_capped(retry_after: float) -> None:
    assert next_attempt_at(1, NOW, 0.5, retry_after=retry_after) == NOW + MAX_RETRY_AFTER


@pytest.mark.parametrize("retry_after", [-10.0, 0.0, float("nan"), float("inf")])
def test_nonsense_retry_after_is_ignored(retry_after: float) -> None:
    assert next_attempt_at(2, NOW, 0.5, retry_after=retry_after) == NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("attempt_no", "now", "rand", "message"),
    [
        (0, NOW, 0.5, "attempt_no starts at 1"),
        (1, NOW, 1.5, "rand must be"),
        (1, NOW, -0.1, "rand must be"),
        (1, datetime(2026, 3, 1, 12, 0), 0.5, "timezone-aware"),
    ],
)
def test_next_attempt_rejects_bad_input(attempt_no: int, now: datetime, rand: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next_attempt_at(attempt_no, now, rand)


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (200, None, Outcome.SUCCESS),
        (201, None, Outcome.SUCCESS),
        (204, None, Outcome.SUCCESS),
        (299, None, Outcome.SUCCESS),
        (301, None, Outcome.FAILURE),
        (302, None, Outcome.FAILURE),
        (307, None, Outcome.FAILURE),
        (400, None, Outcome.FAILURE),
        (404, None, Outcome.FAILURE),
        (410, None, Outcome.GONE),
        (429, None, Outcome.THROTTLED),
        (500, None, Outcome.FAILURE),
        (502, None, Outcome.THROTTLED),
        (503, None, Outcome.THROTTLED),
        (504, None, Outcome.THROTTLED),
        (100, None, Outcome.FAILURE),
        (None, "timeout", Outcome.FAILURE),
        (None, "connection_error:Connection refused", Outcome.FAILURE),
        (None, "unsafe_url:private", Outcome.FAILURE),
    ],
)
def test_classify(status: int | None, error: str | None, outcome: Outcome) -> None:
    assert classify(status, error) is outcome


def test_classify_needs_a_status_or_an_error() -> None:
    with pytest.raises(ValueError, match="status or an error"):
        classify(None, None)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sun, 01 Mar 2026 12:02:00 GMT", 120.0),
        ("Sun, 01 Mar 2026 12:02:00 -0000", 120.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_parse_retry_after_uses_the_given_clock_in_any_zone() -> None:
    later = NOW.astimezone(timezone(timedelta(hours=8))) + timedelta(seconds=60)
    assert parse_retry_after("Sun, 01 Mar 2026 12:02:00 GMT", later) == 60.0


FIVE_DAYS = timedelta(days=5)


@pytest.mark.parametrize(
    ("first_failure_at", "last_success_at", "expected"),
    [
        (None, None, False),
        (NOW - FIVE_DAYS + timedelta(seconds=1), None, False),
        (NOW - FIVE_DAYS, None, True),
        (NOW - timedelta(days=9), None, True),
        (NOW - timedelta(days=9), NOW - timedelta(days=10), True),
        (NOW - timedelta(days=9), NOW - timedelta(days=1), False),
    ],
)
def test_should_disable_after_five_days_without_success(
    first_failure_at: datetime | None, last_success_at: datetime | None, expected: bool
) -> None:
    assert should_disable(first_failure_at, NOW, last_success_at=last_success_at) is expected


def test_should_disable_window_is_configurable() -> None:
    assert should_disable(NOW - timedelta(hours=2), NOW, window=timedelta(hours=1))
    assert not should_disable(NOW - timedelta(hours=2), NOW, window=timedelta(hours=3))
