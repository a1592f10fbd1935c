"""Deterministic parcel journeys derived from the tracking number (interface)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from carriers.status import Status, SubStatus


@lru_cache(maxsize=512)
def zone(key: str) -> ZoneInfo:
    """`ZoneInfo(key)`, kept alive: ZoneInfo only caches a few zones strongly, and the
    simulator renders scans in dozens, so it would otherwise re-read tz files per scan."""
    return ZoneInfo(key)


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime  # UTC instant of the scan
    status: Status
    sub_status: SubStatus
    description: str
    city: str
    country: str  # ISO alpha-2
    tz: str  # IANA zone of the place, so carriers can render local wall-clock time
    region: str = ""
    postcode: str = ""
    provider: str = ""  # carrier code that scanned it: first mile or last mile


@dataclass(frozen=True, slots=True)
class Journey:
    number: str
    carrier: str
    outcome: str  # delivered, lost, customs_held, returned, failed_attempt, stalled, ...
    origin: str  # ISO alpha-2
    destination: str
    steps: tuple[Step, ...] = field(default_factory=tuple)
    eta: datetime | None = None
    signed_by: str | None = None
    last_mile: str = ""  # carrier code that delivers at the destination

    def latest(self, now: datetime) -> Step | None:
        """The most recent step that has happened by `now`."""
        seen = self.visible(now)
        return seen[-1] if seen else None

    def visible(self, now: datetime) -> list[Step]:
        """Steps that have happened by `now`, oldest first."""
        return [s for s in self.steps if s.at <= now]
