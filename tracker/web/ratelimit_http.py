"""Request rate limits for the public pages: per client IP and per tracking number.

Token buckets keyed by a string, in memory (each web process limits on its own), bounded
in size, reading an injected clock so tests move time by hand.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web

from tracker.clock import Clock


class KeyedLimiter:
    """`per_minute` requests per key on average, bursts up to `burst`."""

    def __init__(self, per_minute: float, burst: int, clock: Clock, *, max_keys: int = 100_000) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("per_minute must be > 0 and burst >= 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, datetime]] = OrderedDict()

    def hit(self, key: str, now: datetime | None = None) -> int:
        """Take one token for `key` at `now` (by default the clock's): 0 when allowed, else
        whole seconds to wait (>= 1)."""
        if now is None:
            now = self._clock()
        buckets = self._buckets
        bucket = buckets.pop(key, None)
        if bucket is None:
            tokens = self.burst
        else:
            tokens, updated = bucket
            elapsed = (now - updated).total_seconds()
            if elapsed > 0:
                tokens = min(self.burst, tokens + elapsed * self.rate)
        if tokens >= 1.0:
            buckets[key] = (tokens - 1.0, now)
            wait = 0
        else:
            buckets[key] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
        # the least recently seen keys go first; a forgotten key starts with a full bucket
        while len(buckets) > self._max_keys:
            buckets.popitem(last=False)
        return wait


@dataclass(frozen=True)
class PublicLimits:
    """Defaults: a person reading pages never meets them; a scanner does quickly."""

    page_per_minute: float = 120.0
    page_burst: int = 60
    lookup_per_minute: float = 10.0
    lookup_burst: int = 10
    number_per_minute: float = 2.0
    number_burst: int = 5


@dataclass
class Limiters:
    pages: KeyedLimiter
    lookups: KeyedLimiter
    numbers: KeyedLimiter
    limits: PublicLimits = field(default_factory=PublicLimits)

    @classmethod
    def create(cls, limits: PublicLimits, clock: Clock) -> Limiters:
        return cls(
            pages=KeyedLimiter(limits.page_per_minute, limits.page_burst, clock),
            lookups=KeyedLimiter(limits.lookup_per_minute, limits.lookup_burst, clock),
            numbers=KeyedLimiter(limits.number_per_minute, limits.number_burst, clock),
            limits=limits,
        )


def client_ip(request: web.Request, *, trust_forwarded_for: bool) -> str:
    """The caller's address. Behind a trusted proxy, the last X-Forwarded-For hop is the one
    that proxy added (earlier hops are whatever the client claimed)."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return hops[-1]
    return request.remote or "unknown"
