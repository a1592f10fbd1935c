"""Merge carrier events into one deduplicated, ordered timeline and derive a status (DESIGN §4).

Everything here is pure. The timeline is a function of the *set* of events, never of the
order or number of times they arrived, so re-polls, pushes and several providers (first
mile, last mile) can be merged in any order with the same outcome.

Ordering is by UTC instant, then by a journey rank of the status, then by fingerprint.
The carrier's list position is deliberately not used: carriers disagree on direction
(DHL lists newest first, most others oldest first), and a position-based tiebreak would
make the result depend on the order responses arrived in. The journey rank puts the
more advanced milestone last when a carrier stamps two scans with the same instant
(common with minute- or day-granular clocks: "out for delivery" and "delivered" at
18:00), which is what the carrier's own order expresses in practice.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from carriers.base import NOWHERE, CarrierEvent, Location
from carriers.status import TERMINAL, Status, SubStatus
from tracker.models.types import utc_text

#: Position of a status in a typical journey, used only to order scans sharing an instant.
#: Terminal statuses rank above all others: `derive_status` relies on it.
JOURNEY_ORDER: dict[Status, int] = {
    Status.PENDING: 0,
    Status.INFO_RECEIVED: 1,
    Status.IN_TRANSIT: 2,
    Status.EXCEPTION: 3,
    Status.OUT_FOR_DELIVERY: 4,
    Status.FAILED_ATTEMPT: 5,
    Status.AVAILABLE_FOR_PICKUP: 6,
    Status.DELIVERED: 7,
    Status.RETURNED: 8,
    Status.EXPIRED: 9,
}

_WHITESPACE = re.compile(r"\s+")
#: ASCII punctuation (Unicode category P*) -> space: most carrier text is ASCII, and
#: `str.translate` folds it without a Python-level loop over every character
_ASCII_PUNCTUATION = {i: " " for i in range(128) if unicodedata.category(chr(i)).startswith("P")}
#: descriptions and place names repeat across scans, shipments and polls
NORMALIZE_CACHE_SIZE = 65536


@lru_cache(maxsize=NORMALIZE_CACHE_SIZE)
def normalize_text(text: str) -> str:
    """Fold cosmetic differences away: width/compatibility forms, case, punctuation, spacing.

    Punctuation becomes a space (not nothing) so "Arrived,Shenzhen" and "Arrived Shenzhen"
    agree; NFKC first so full-width forms from Chinese carriers match their ASCII twins.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    if folded.isascii():
        stripped = folded.translate(_ASCII_PUNCTUATION)
    else:
        stripped = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in folded)
    return _WHITESPACE.sub(" ", stripped).strip()


#: how `json.dumps(..., ensure_ascii=False)` writes one string; a list of strings with
#: separators (",", ":") is these joined by "," inside brackets
_json_string = json.encoder.encode_basestring


def fingerprint(event: CarrierEvent) -> str:
    """A stable sha256 hex identity of a scan, used to collapse duplicates.

    Hashes the JSON array `[provider, raw_code, instant, location, description]`: the
    instant in UTC as `isoformat(timespec="microseconds")` writes it ("+00:00" included),
    location label and description passed through `normalize_text`. Stored in the
    database, so the canonical form must never change.
    """
    # == json.dumps([...], ensure_ascii=False, separators=(",", ":")): the instant needs no
    # escaping, and the parts around it repeat from scan to scan, so they are cached
    place = event.location or NOWHERE
    canonical = (
        _canonical_head(event.provider, event.raw_code)
        + utc_text(event.occurred_at)
        # keyed on the label's parts: a `Location` hashes and compares in Python
        + _canonical_tail(place.city, place.region, place.country, event.description)
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


#: (provider, code) and (place, description) pairs a worker keeps written out
CANONICAL_CACHE_SIZE = 16384


@lru_cache(maxsize=CANONICAL_CACHE_SIZE)
def _canonical_head(provider: str, raw_code: str) -> str:
    return "[" + _json_string(provider) + "," + _json_string(raw_code) + ',"'


@lru_cache(maxsize=CANONICAL_CACHE_SIZE)
def _canonical_tail(city: str | None, region: str | None, country: str | None, description: str) -> str:
    # from the instant's offset and closing quote to the end: one concatenation fewer
    label = Location(city, region, country).label()
    return '+00:00",' + _json_string(normalize_text(label)) + "," + _json_string(normalize_text(description)) + "]"


def sort_key(event: CarrierEvent) -> tuple[datetime, int, str]:
    """Total order of the timeline: (instant, journey rank, fingerprint)."""
    return (event.occurred_at, JOURNEY_ORDER[event.status], fingerprint(event))


def _representative_key(event: CarrierEvent) -> tuple[str, ...]:
    # Events sharing a fingerprint can still differ (description casing, mapped status,
    # time basis); any total order over every field makes the chosen copy input-independent.
    loc = event.location
    return (
        event.description,
        event.status.value,
        event.sub_status.value,
        event.time_basis.value,
        event.local_time,
        repr((loc.city, loc.region, loc.country, loc.postcode) if loc is not None else None),
        repr(event.utc_offset_minutes),
        repr(event.occurred_at.utcoffset()),
    )


def _canonical(events: Iterable[CarrierEvent]) -> dict[str, CarrierEvent]:
    chosen: dict[str, CarrierEvent] = {}
    for event in events:
        fp = fingerprint(event)
        current = chosen.get(fp)
        if current is None or (current is not event and _representative_key(event) < _representative_key(current)):
            chosen[fp] = event
    return chosen


def _timeline_key(item: tuple[str, CarrierEvent]) -> tuple[datetime, int, str]:
    # `sort_key` with the fingerprint already at hand
    fp, event = item
    return (event.occurred_at, JOURNEY_ORDER[event.status], fp)


@dataclass(frozen=True, slots=True)
class MergeResult:
    """The merged timeline and the events it gained."""

    #: deduplicated, in timeline order (`sort_key`)
    events: tuple[CarrierEvent, ...]
    #: events of `events` whose fingerprint was not in `existing`, in timeline order
    new_events: tuple[CarrierEvent, ...]


@dataclass(frozen=True, slots=True)
class KeyedMerge:
    """`MergeResult` with the fingerprint of each new event, for callers that store them."""

    events: tuple[CarrierEvent, ...]
    #: (fingerprint, event) of the events `known` lacked, in timeline order
    new: tuple[tuple[str, CarrierEvent], ...]


def merge_keyed(known: Mapping[str, CarrierEvent], incoming: Sequence[CarrierEvent]) -> KeyedMerge:
    """`merge` for an existing timeline already keyed by fingerprint (one event each).

    Each event is fingerprinted once; stored timelines carry their fingerprints, so they
    are not hashed again at all.
    """
    fresh = {fp: ev for fp, ev in _canonical(incoming).items() if fp not in known}
    ordered = sorted([*known.items(), *fresh.items()], key=_timeline_key)
    # sort keys end with the fingerprint, so they are unique and filtering keeps the order
    return KeyedMerge(
        events=tuple(ev for _, ev in ordered),
        new=tuple(item for item in ordered if item[0] in fresh),
    )


def merge(existing: Sequence[CarrierEvent], incoming: Sequence[CarrierEvent]) -> MergeResult:
    """Merge `incoming` scans into the `existing` timeline.

    For a fingerprint already in `existing`, the existing copy is kept (it is the one
    stored), so merging batch after batch is associative. Among copies within one side,
    a deterministic choice is made, so shuffles and repeats change nothing.
    """
    keyed = merge_keyed(_canonical(existing), incoming)
    return MergeResult(events=keyed.events, new_events=tuple(ev for _, ev in keyed.new))


StatusPair = tuple[Status, SubStatus]


def derive_status(
    events: Sequence[CarrierEvent],
    previous: StatusPair | None,
    carrier_status: StatusPair | None,
    *,
    previous_since: datetime | None = None,
) -> StatusPair:
    """The shipment's status from its whole timeline (any order).

    - The latest event's status wins, except that a terminal event (`TERMINAL`) is only
      left for an event strictly newer than it: a late-arriving older scan, or one with
      the same instant, never moves a delivered or returned shipment back.
    - A terminal `previous` that no event backs (expired by the scheduler, or delivered
      from the carrier's top-level status) is only left for an event newer than
      `previous_since`; without that instant it is kept.
    - With no events: a terminal `previous` is kept, else the carrier's top-level status,
      else `previous`, else pending.
    """
    prev_terminal = previous is not None and previous[0] in TERMINAL
    if not events:
        if previous is not None and prev_terminal:
            return previous
        return carrier_status or previous or (Status.PENDING, SubStatus.OTHER)

    # Deduplicate first: copies sharing a fingerprint tie on sort_key, and input order
    # must not pick between them. A single event is its own timeline.
    ordered = events if len(events) == 1 else merge((), events).events
    # The last event is the answer: an older scan sorts before the terminal event by
    # instant, and one with the same instant sorts before it because JOURNEY_ORDER ranks
    # every terminal status above every other.
    chosen = ordered[-1]
    result: StatusPair = (chosen.status, chosen.sub_status)

    if previous is None or not prev_terminal or chosen.status in TERMINAL:
        return result
    backing = next((e for e in reversed(ordered) if e.status == previous[0]), None)
    since = backing.occurred_at if backing is not None else previous_since
    if since is None or chosen.occurred_at <= since:
        return previous
    return result
