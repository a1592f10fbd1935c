"""Per-carrier token bucket and circuit breaker (DESIGN §6).

Neither sleeps nor reads the time itself: both take a monotonic clock callable returning
seconds, and the token bucket answers how long to wait, leaving the waiting (or
rescheduling) to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

MonotonicClock = Callable[[], float]


class TokenBucket:
    """Allows `rate_per_s` calls per second on average, with bursts up to `burst`."""

    def __init__(self, rate_per_s: float, burst: int, clock: MonotonicClock) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = rate_per_s
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._paused_until = float("-inf")

    def _refill(self, now: float) -> None:
        # max(): a clock that steps back must not drain tokens.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = max(self._updated, now)

    @property
    def tokens(self) -> float:
        """Tokens available now (fractional while refilling)."""
        self._refill(self._clock())
        return self._tokens

    def try_acquire(self) -> float:
        """Take a token and return 0.0, or return the seconds to wait before trying again."""
        now = self._clock()
        self._refill(now)
        if now < self._paused_until:
            return self._paused_until - now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate

    def pause_until(self, t: float) -> None:
        """Refuse every call before clock time `t` (a carrier's Retry-After); never shortens a pause."""
        self._paused_until = max(self._paused_until, t)

    def pause_for(self, seconds: float) -> None:
        """`pause_until(now + seconds)`, for a Retry-After already converted to seconds."""
        self.pause_until(self._clock() + max(0.0, seconds))


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Stops calling a carrier after `failure_threshold` consecutive failures.

    Open for `reset_after_s`, then half-open: one trial call is allowed; its success
    closes the breaker, its failure opens it again. A trial whose outcome is never
    recorded (the worker died) is given up after another `reset_after_s`, so the breaker
    cannot stay stuck half-open.
    """

    def __init__(self, failure_threshold: int, reset_after_s: float, clock: MonotonicClock) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if reset_after_s < 0:
            raise ValueError("reset_after_s must be >= 0")
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The current state; an open breaker whose wait is over reads as half-open."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_after_s:
            self._state = BreakerState.HALF_OPEN
            self._trial_at = None
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures recorded since the last success."""
        return self._failures

    def retry_in(self) -> float:
        """Seconds until `allow()` can answer True (0.0 when it may now)."""
        state = self.state
        now = self._clock()
        if state is BreakerState.OPEN:
            return self._opened_at + self.reset_after_s - now
        if state is BreakerState.HALF_OPEN and self._trial_at is not None:
            return max(0.0, self._trial_at + self.reset_after_s - now)
        return 0.0

    def allow(self) -> bool:
        """Whether a call may go out now. In half-open, True for exactly one trial."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        now = self._clock()
        if self._trial_at is None or now - self._trial_at >= self.reset_after_s:
            self._trial_at = now
            return True
        return False

    def record_success(self) -> None:
        """A call succeeded: close the breaker and forget past failures."""
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trial_at = None

    def record_failure(self) -> None:
        """A call failed: count it; open at the threshold, or again after a failed trial."""
        self._failures += 1
        state = self.state
        if state is BreakerState.HALF_OPEN or (
            state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._trial_at = None
