"""When to poll a shipment next (DESIGN §6), and retry backoff. Pure maths, no clock reads.

The caller supplies `now` and the random draws, so every decision is reproducible in tests
and the same inputs give the same schedule on every worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from carriers.status import CUSTOMS, Status, SubStatus


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """Poll intervals by status; config may override any field per carrier."""

    pending_first: timedelta = timedelta(hours=1)
    #: how long after registration `pending_first` applies before falling back to `pending`
    pending_first_window: timedelta = timedelta(days=1)
    pending: timedelta = timedelta(hours=6)
    in_transit: timedelta = timedelta(hours=4)
    exception: timedelta = timedelta(hours=4)
    customs: timedelta = timedelta(hours=2)
    #: out for delivery, failed attempt, available for pickup
    last_mile: timedelta = timedelta(hours=1)
    #: the one confirming poll after delivered / returned; carriers correct mis-scans within hours
    confirm_terminal: timedelta = timedelta(hours=6)
    #: a shipment with no news (no event, counting from registration) for this long expires
    expire_after: timedelta = timedelta(days=30)
    #: relative spread of the jitter: 0.1 spreads each interval over ±10 %
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("PollPolicy.jitter must be in [0, 1)")


class PollReason(StrEnum):
    """Why a decision was taken; logged and handy in tests and metrics."""

    PENDING_FIRST = "pending_first"
    PENDING = "pending"
    IN_TRANSIT = "in_transit"
    EXCEPTION = "exception"
    CUSTOMS = "customs"
    LAST_MILE = "last_mile"
    CONFIRM_TERMINAL = "confirm_terminal"
    TERMINAL_CONFIRMED = "terminal_confirmed"
    ALREADY_EXPIRED = "already_expired"
    NO_NEWS = "no_news"


@dataclass(frozen=True, slots=True)
class PollDecision:
    """The next poll time (None: stop polling) and whether to mark the shipment expired."""

    next_at: datetime | None
    expire: bool
    reason: PollReason


_LAST_MILE = frozenset({Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT, Status.AVAILABLE_FOR_PICKUP})
_CONFIRMED = frozenset({Status.DELIVERED, Status.RETURNED})


def _check_unit(value: float, name: str) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def jittered(interval: timedelta, spread: float, draw: float) -> timedelta:
    """`interval` scaled by a factor in [1 - spread, 1 + spread), chosen by `draw` in [0, 1)."""
    _check_unit(draw, "draw")
    return interval * (1.0 + spread * (2.0 * draw - 1.0))


def _interval(
    status: Status, sub_status: SubStatus, age: timedelta, policy: PollPolicy
) -> tuple[timedelta, PollReason]:
    if status in _LAST_MILE:
        return policy.last_mile, PollReason.LAST_MILE
    if sub_status in CUSTOMS:
        return policy.customs, PollReason.CUSTOMS
    # info_received (label created) behaves like pending: the parcel may sit for days.
    if status in (Status.PENDING, Status.INFO_RECEIVED):
        if age < policy.pending_first_window:
            return policy.pending_first, PollReason.PENDING_FIRST
        return policy.pending, PollReason.PENDING
    if status == Status.EXCEPTION:
        return policy.exception, PollReason.EXCEPTION
    return policy.in_transit, PollReason.IN_TRANSIT


def next_poll(
    *,
    now: datetime,
    status: Status,
    sub_status: SubStatus,
    registered_at: datetime,
    last_event_at: datetime | None,
    confirmed_terminal: bool,
    policy: PollPolicy,
    jitter: float,
) -> PollDecision:
    """Decide the next poll after one has just been recorded.

    `confirmed_terminal` is True when the shipment was already delivered or returned before
    this poll, i.e. this poll was the confirming one. `jitter` is a uniform draw in [0, 1)
    from the caller. The next poll is never later than the expiry deadline, so a silent
    shipment is checked (and then expired) on time.
    """
    _check_unit(jitter, "jitter")
    for value, name in ((now, "now"), (registered_at, "registered_at"), (last_event_at, "last_event_at")):
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")

    if status == Status.EXPIRED:
        return PollDecision(None, expire=False, reason=PollReason.ALREADY_EXPIRED)
    if status in _CONFIRMED:
        if confirmed_terminal:
            return PollDecision(None, expire=False, reason=PollReason.TERMINAL_CONFIRMED)
        delay = jittered(policy.confirm_terminal, policy.jitter, jitter)
        return PollDecision(now + delay, expire=False, reason=PollReason.CONFIRM_TERMINAL)

    # A carrier clock may put the last scan before registration (number registered late);
    # news is then counted from registration, so a fresh registration is not expired at once.
    last_news = registered_at if last_event_at is None else max(registered_at, last_event_at)
    deadline = last_news + policy.expire_after
    if now >= deadline:
        return PollDecision(None, expire=True, reason=PollReason.NO_NEWS)

    interval, reason = _interval(status, sub_status, now - registered_at, policy)
    next_at = min(now + jittered(interval, policy.jitter, jitter), deadline)
    return PollDecision(next_at, expire=False, reason=reason)


def backoff(attempt: int, *, base: float, cap: float, rand: float) -> float:
    """Full-jitter exponential backoff: `rand * min(cap, base * 2**attempt)` seconds.

    `attempt` counts from 0 (the first retry); `rand` is a uniform draw in [0, 1).
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must be >= 0")
    _check_unit(rand, "rand")
    # 2.0**1024 overflows a float; by then the cap has long applied.
    ceiling = cap if attempt >= 1024 else min(cap, base * 2.0**attempt)
    return rand * ceiling
