"""Pure retry policy for webhook deliveries: schedule, outcome and disabling (DESIGN §8)."""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

# Delay after the n-th failed attempt (Standard Webhooks' example schedule, ~3 days).
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
    timedelta(hours=20),
    timedelta(hours=24),
)
# +/-10 % spreads retries of many messages that failed together (an endpoint outage).
JITTER_FRACTION = 0.1
# A receiver may ask for a pause, but not stall the message beyond the longest step.
MAX_RETRY_AFTER = timedelta(hours=24)
DISABLE_AFTER = timedelta(days=5)
THROTTLE_STATUSES = frozenset({429, 502, 503, 504})
_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


class Outcome(StrEnum):
    """What one delivery attempt means for the message and the endpoint."""

    SUCCESS = "success"
    FAILURE = "failure"
    THROTTLED = "throttled"
    """Retry later, honouring Retry-After."""
    GONE = "gone"
    """410: the receiver asked us to stop; disable the endpoint."""


def classify(status: int | None, error: str | None) -> Outcome:
    """Classify an attempt: only 2xx succeeds; 3xx is a failure because redirects are not followed."""
    if status is None:
        if error is None:
            raise ValueError("an attempt has a status or an error")
        return Outcome.FAILURE
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 410:
        return Outcome.GONE
    if status in THROTTLE_STATUSES:
        return Outcome.THROTTLED
    return Outcome.FAILURE


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def next_attempt_at(attempt_no: int, now: datetime, rand: float, retry_after: float | None = None) -> datetime | None:
    """When to retry after failed attempt number `attempt_no` (1-based); None means give up.

    `rand` is a caller-supplied uniform number in [0, 1] that sets the jitter.
    """
    _require_aware(now, "now")
    if attempt_no < 1:
        raise ValueError("attempt_no starts at 1")
    if not 0.0 <= rand <= 1.0:
        raise ValueError("rand must be in [0, 1]")
    if attempt_no > len(RETRY_SCHEDULE):
        return None
    delay = RETRY_SCHEDULE[attempt_no - 1] * (1 + JITTER_FRACTION * (2 * rand - 1))
    if retry_after is not None and math.isfinite(retry_after) and retry_after > 0:
        delay = max(delay, timedelta(seconds=min(retry_after, MAX_RETRY_AFTER.total_seconds())))
    return now + delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Parse a Retry-After header (delay-seconds or HTTP-date) into seconds from `now`."""
    _require_aware(now, "now")
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # "-0000" parses without a zone; HTTP-dates are always GMT.
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def should_disable(
    first_failure_at: datetime | None,
    now: datetime,
    *,
    window: timedelta = DISABLE_AFTER,
    last_success_at: datetime | None = None,
) -> bool:
    """Whether an endpoint has failed without a single success for `window` (5 days)."""
    _require_aware(now, "now")
    if first_failure_at is None:
        return False
    _require_aware(first_failure_at, "first_failure_at")
    if last_success_at is not None:
        _require_aware(last_success_at, "last_success_at")
        if last_success_at >= first_failure_at:
            return False
    return now - first_failure_at >= window
