from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carriers.status import Status, SubStatus
from tracker.schedule import PollDecision, PollPolicy, PollReason, backoff, jittered, next_poll

REG = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
POLICY = PollPolicy()
NO_JITTER = PollPolicy(jitter=0.0)
H = timedelta(hours=1)


def decide(
    status: Status,
    sub: SubStatus = SubStatus.OTHER,
    *,
    now: datetime = REG + 2 * H,
    last_event_at: datetime | None = None,
    confirmed: bool = False,
    policy: PollPolicy = NO_JITTER,
    jitter: float = 0.5,
    registered_at: datetime = REG,
) -> PollDecision:
    return next_poll(
        now=now,
        status=status,
        sub_status=sub,
        registered_at=registered_at,
        last_event_at=last_event_at,
        confirmed_terminal=confirmed,
        policy=policy,
        jitter=jitter,
    )


def test_pending_is_hourly_for_the_first_day_then_six_hourly() -> None:
    first = decide(Status.PENDING, now=REG + 23 * H)
    assert first == PollDecision(REG + 24 * H, expire=False, reason=PollReason.PENDING_FIRST)
    later = decide(Status.PENDING, now=REG + 24 * H)
    assert later == PollDecision(REG + 30 * H, expire=False, reason=PollReason.PENDING)


def test_info_received_follows_the_pending_rule() -> None:
    assert decide(Status.INFO_RECEIVED, now=REG + 2 * H).next_at == REG + 3 * H
    assert decide(Status.INFO_RECEIVED, now=REG + 48 * H).next_at == REG + 54 * H


@pytest.mark.parametrize(
    ("status", "sub", "hours", "reason"),
    [
        (Status.IN_TRANSIT, SubStatus.DEPARTED, 4, PollReason.IN_TRANSIT),
        (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING, 2, PollReason.CUSTOMS),
        (Status.EXCEPTION, SubStatus.CUSTOMS_HELD, 2, PollReason.CUSTOMS),
        (Status.EXCEPTION, SubStatus.CUSTOMS_INFO_REQUIRED, 2, PollReason.CUSTOMS),
        (Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED, 4, PollReason.IN_TRANSIT),
        (Status.EXCEPTION, SubStatus.DELAYED, 4, PollReason.EXCEPTION),
        (Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY, 1, PollReason.LAST_MILE),
        (Status.FAILED_ATTEMPT, SubStatus.RECIPIENT_UNAVAILABLE, 1, PollReason.LAST_MILE),
        (Status.AVAILABLE_FOR_PICKUP, SubStatus.PICKUP_POINT, 1, PollReason.LAST_MILE),
    ],
)
def test_interval_by_status(status: Status, sub: SubStatus, hours: int, reason: PollReason) -> None:
    now = REG + 50 * H
    got = decide(status, sub, now=now, last_event_at=now - H)
    assert got == PollDecision(now + hours * H, expire=False, reason=reason)


@pytest.mark.parametrize("status", [Status.DELIVERED, Status.RETURNED])
def test_terminal_gets_one_confirming_poll_then_stops(status: Status) -> None:
    now = REG + 72 * H
    first = decide(status, now=now, last_event_at=now)
    assert first == PollDecision(now + 6 * H, expire=False, reason=PollReason.CONFIRM_TERMINAL)
    second = decide(status, now=now + 6 * H, last_event_at=now, confirmed=True)
    assert second == PollDecision(None, expire=False, reason=PollReason.TERMINAL_CONFIRMED)


def test_expired_is_never_polled() -> None:
    got = decide(Status.EXPIRED, now=REG + 40 * 24 * H)
    assert got == PollDecision(None, expire=False, reason=PollReason.ALREADY_EXPIRED)


def test_thirty_days_without_news_expires() -> None:
    last = REG + 5 * 24 * H
    just_before = decide(
        Status.IN_TRANSIT, now=last + timedelta(days=30) - timedelta(seconds=1), last_event_at=last
    )
    assert not just_before.expire
    assert just_before.next_at == last + timedelta(days=30)  # clamped to the deadline
    at_deadline = decide(Status.IN_TRANSIT, now=last + timedelta(days=30), last_event_at=last)
    assert at_deadline == PollDecision(None, expire=True, reason=PollReason.NO_NEWS)


def test_pending_without_any_event_expires_thirty_days_after_registration() -> None:
    assert decide(Status.PENDING, now=REG + timedelta(days=30)).expire
    assert not decide(Status.PENDING, now=REG + timedelta(days=29)).expire


def test_scan_older_than_registration_counts_news_from_registration() -> None:
    old_scan = REG - timedelta(days=45)
    got = decide(Status.IN_TRANSIT, now=REG + H, last_event_at=old_scan)
    assert got.expire is False
    assert got.next_at == REG + 5 * H


def test_policy_overrides_per_carrier() -> None:
    slow = PollPolicy(in_transit=timedelta(hours=12), expire_after=timedelta(days=60), jitter=0.0)
    now = REG + 40 * 24 * H
    got = decide(Status.IN_TRANSIT, now=now, last_event_at=REG, policy=slow)
    assert got == PollDecision(now + 12 * H, expire=False, reason=PollReason.IN_TRANSIT)


def test_jitter_spreads_ten_percent_either_way() -> None:
    now = REG + 50 * H
    low = decide(Status.IN_TRANSIT, now=now, last_event_at=now, policy=POLICY, jitter=0.0)
    mid = decide(Status.IN_TRANSIT, now=now, last_event_at=now, policy=POLICY, jitter=0.5)
    high = decide(Status.IN_TRANSIT, now=now, last_event_at=now, policy=POLICY, jitter=0.75)
    assert low.next_at == now + timedelta(minutes=216)  # 240 min * 0.9
    assert mid.next_at == now + timedelta(minutes=240)
    assert high.next_at == now + timedelta(minutes=252)  # 240 min * 1.05


@given(draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True), spread=st.floats(0.0, 0.5))
def test_jittered_stays_in_band(draw: float, spread: float) -> None:
    base = timedelta(hours=4)
    got = jittered(base, spread, draw)
    assert base * (1 - spread) - timedelta(microseconds=1) <= got <= base * (1 + spread)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0])
def test_jitter_draw_out_of_range_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="jitter"):
        decide(Status.IN_TRANSIT, jitter=bad)


def test_policy_jitter_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        PollPolicy(jitter=1.0)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="now"):
        decide(Status.IN_TRANSIT, now=datetime(2024, 6, 2))


# --- backoff ----------------------------------------------------------------------------


def test_backoff_grows_exponentially_until_the_cap() -> None:
    ceilings = [backoff(n, base=2.0, cap=60.0, rand=0.999999) / 0.999999 for n in range(7)]
    assert ceilings == pytest.approx([2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0])


def test_backoff_is_full_jitter() -> None:
    assert backoff(3, base=1.0, cap=100.0, rand=0.0) == 0.0
    assert backoff(3, base=1.0, cap=100.0, rand=0.25) == 2.0
    assert backoff(10, base=1.0, cap=100.0, rand=0.5) == 50.0


def test_backoff_survives_huge_attempt_counts() -> None:
    assert backoff(5000, base=1.0, cap=30.0, rand=0.5) == 15.0
    assert backoff(1023, base=1.0, cap=30.0, rand=0.5) == 15.0


@pytest.mark.parametrize(
    ("attempt", "rand"),
    [(-1, 0.5), (0, 1.0), (0, -0.5)],
)
def test_backoff_refuses_bad_input(attempt: int, rand: float) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        backoff(attempt, base=1.0, cap=10.0, rand=rand)
