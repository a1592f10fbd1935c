from __future__ import annotations

import pytest

from tracker.ratelimit import BreakerState, CircuitBreaker, TokenBucket


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- token bucket -----------------------------------------------------------------------


def test_burst_then_wait_for_refill() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=2.0, burst=3, clock=clock)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.try_acquire() == pytest.approx(0.5)
    clock.advance(0.25)
    assert bucket.try_acquire() == pytest.approx(0.25)
    clock.advance(0.25)
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == pytest.approx(0.5)


def test_refusals_do_not_consume_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=1.0, burst=1, clock=clock)
    assert bucket.try_acquire() == 0.0
    for _ in range(5):
        assert bucket.try_acquire() == pytest.approx(1.0)
    clock.advance(1.0)
    assert bucket.try_acquire() == 0.0


def test_refill_is_capped_at_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=10.0, burst=2, clock=clock)
    clock.advance(3600)
    assert bucket.tokens == 2.0
    assert [bucket.try_acquire() for _ in range(3)][:2] == [0.0, 0.0]


def test_sustained_rate_matches_configuration() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=4.0, burst=1, clock=clock)
    granted = 0
    for _ in range(640):  # 10 s in steps of 1/64 s, exact in binary floating point
        if bucket.try_acquire() == 0.0:
            granted += 1
        clock.advance(1 / 64)
    assert granted == 40


def test_pause_until_blocks_and_never_shortens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=5.0, burst=5, clock=clock)
    bucket.pause_until(clock.now + 30)
    bucket.pause_until(clock.now + 10)  # a shorter Retry-After must not cut the pause
    assert bucket.try_acquire() == pytest.approx(30.0)
    clock.advance(29.5)
    assert bucket.try_acquire() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.try_acquire() == 0.0


def test_pause_for_is_relative_to_the_clock() -> None:
    clock = FakeClock(50.0)
    bucket = TokenBucket(rate_per_s=1.0, burst=1, clock=clock)
    bucket.pause_for(12.0)
    assert bucket.try_acquire() == pytest.approx(12.0)


def test_clock_stepping_back_does_not_drain_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_s=1.0, burst=2, clock=clock)
    clock.advance(-100)
    assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() == 0.0


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_bucket_refuses_bad_configuration(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        TokenBucket(rate, burst, FakeClock())


# --- circuit breaker --------------------------------------------------------------------


def state(breaker: CircuitBreaker) -> BreakerState:
    # a call, so the type checker does not narrow the property across assertions
    return breaker.state


def test_opens_after_consecutive_failures() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=60.0, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(60.0)


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=60.0, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.failures == 1


def test_half_open_allows_one_trial_and_success_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=30.0, clock=clock)
    breaker.record_failure()
    clock.advance(29.9)
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(0.1)
    clock.advance(0.1)
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # only one trial in flight
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED
    assert all(breaker.allow() for _ in range(5))


def test_failed_trial_reopens_for_a_full_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=5, reset_after_s=30.0, clock=clock)
    for _ in range(5):
        breaker.record_failure()
    clock.advance(30.0)
    assert breaker.allow()
    clock.advance(2.0)
    breaker.record_failure()  # a single failed trial is enough, whatever the threshold
    assert state(breaker) is BreakerState.OPEN
    clock.advance(29.0)
    assert not breaker.allow()
    clock.advance(1.0)
    assert breaker.allow()


def test_abandoned_trial_is_given_up_after_the_reset_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=10.0, clock=clock)
    breaker.record_failure()
    clock.advance(10.0)
    assert breaker.allow()
    clock.advance(9.0)
    assert not breaker.allow()
    assert breaker.retry_in() == pytest.approx(1.0)
    clock.advance(1.0)
    assert breaker.allow()


@pytest.mark.parametrize(("threshold", "reset"), [(0, 1.0), (1, -1.0)])
def test_breaker_refuses_bad_configuration(threshold: int, reset: float) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        CircuitBreaker(threshold, reset, FakeClock())
