"""Shared state of the carrier simulator: clock, credentials, fault knobs, counters."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from carriers.base import Clock, utc_now


@dataclass
class Faults:
    latency_ms: float = 0.0  # added to every response
    rate_429: float = 0.0  # share of requests answered 429
    rate_5xx: float = 0.0  # share answered 500/503
    rate_malformed: float = 0.0  # share whose JSON body is cut short
    token_ttl: int = 3600  # seconds an OAuth2 token lives
    retry_after: str | None = "2"  # Retry-After sent with injected 429s (None: no header)


@dataclass
class Credentials:
    api_key: str = "sim-key"  # DHL-API-Key, 17token, Yanwen Authorization
    client_id: str = "sim-client"
    client_secret: str = "sim-secret"  # noqa: S105  (the simulator's public test credential)
    partner_id: str = "SIMPARTNER"  # SF Express partnerID
    check_word: str = "sim-check-word"  # SF Express checkWord


@dataclass
class SimState:
    clock: Clock = utc_now
    #: journeys are laid out relative to this instant (deterministic per number)
    epoch: datetime = field(default_factory=lambda: datetime(2026, 1, 5, tzinfo=UTC))
    faults: Faults = field(default_factory=Faults)
    creds: Credentials = field(default_factory=Credentials)
    seed: int = 0
    #: requests per carrier code, and tracking-number lookups per (carrier, number)
    requests: Counter[str] = field(default_factory=Counter)
    lookups: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: OAuth2 tokens issued: token -> expiry instant
    tokens: dict[str, datetime] = field(default_factory=dict)
    #: 17TRACK numbers registered with `register`
    registered_17track: set[str] = field(default_factory=set)
