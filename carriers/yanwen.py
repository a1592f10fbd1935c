"""Yanwen (燕文) tracking: comma-separated numbers, naive local times with an hour offset.

Reference: carrier-apis.md §7. Auth is the customer number sent bare in `Authorization`
(settings.api_key). Each checkpoint has `time_stamp` without offset and `time_zone` such
as "+8" (hours), so the instant is exact (`offset_given`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, ClassVar

from carriers.base import (
    BadResponse,
    CarrierAdapter,
    CarrierEvent,
    InexactNumber,
    Location,
    RateLimit,
    TimeBasis,
    TrackResult,
    load_json_exact,
    load_json_fast,
    number_text,
)
from carriers.status import Status, SubStatus, unknown_code
from carriers.timezones import from_offset, parse_offset, resolve_local, shown_time, split_iso

DEFAULT_BASE_URL = "http://trackapi.yanwentech.com"
TRACK_PATH = "/api/tracking"
#: unverified: `nums` has no documented limit; 40 matches the aggregators' batch size
BATCH_LIMIT = 40
NOT_FOUND = "NOTFOUND"
#: Yanwen collects in mainland China; used only when a checkpoint has no usable time_zone
HOME_ZONE = "Asia/Shanghai"
CODE = "yanwen"

_IT = Status.IN_TRANSIT
#: exact codes seen in Yanwen material
STATUS: dict[str, tuple[Status, SubStatus]] = {
    "PU10": (_IT, SubStatus.PICKED_UP),  # Yanwen acceptance
    "SC20": (_IT, SubStatus.IN_TRANSIT),  # sorting centre
    "LM40": (Status.DELIVERED, SubStatus.OTHER),
    NOT_FOUND: (Status.PENDING, SubStatus.NOT_FOUND),
}
#: code families by prefix (pick-up, sorting centre, line haul, customs, last mile)
FAMILY: dict[str, tuple[Status, SubStatus]] = {
    "PU": (_IT, SubStatus.PICKED_UP),
    "SC": (_IT, SubStatus.IN_TRANSIT),
    "LH": (_IT, SubStatus.DEPARTED),
    "CC": (_IT, SubStatus.CUSTOMS_PROCESSING),
    "LM": (_IT, SubStatus.HANDED_TO_LAST_MILE),
}


# --- pure parsing ----------------------------------------------------------------------


def _text(value: Any) -> str:
    if type(value) is str:  # nearly every value: skip the checks below
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number_text(value)
    return value.strip() if isinstance(value, str) else ""


def status_of(code: str) -> tuple[Status, SubStatus]:
    upper = code.upper()
    if upper in STATUS:
        return STATUS[upper]
    if upper[:2] in FAMILY:
        return FAMILY[upper[:2]]
    return unknown_code(CODE, code or "?", Status.IN_TRANSIT)


# Zones and places repeat on every checkpoint: read each form once.
@lru_cache(maxsize=256)
def _zone(text: str) -> int | None:
    try:
        return parse_offset(text)
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _place(name: str) -> Location | None:
    return Location(city=name) if name else None


def _checkpoint(raw: Any) -> CarrierEvent:
    if not isinstance(raw, dict):
        raise ValueError("checkpoint is not an object")
    place = _text(raw.get("location"))
    stamp = _text(raw.get("time_stamp"))
    wall, given = split_iso(stamp)
    zone_text = _text(raw.get("time_zone"))
    offset = given
    if zone_text:
        zone = _zone(zone_text)
        if zone is not None:
            offset = zone
    if offset is not None:
        at, basis, minutes = from_offset(wall, offset), TimeBasis.OFFSET_GIVEN, offset
    else:
        at, basis, minutes = resolve_local(wall, country=None, city=place or None, fallback_zone=HOME_ZONE)
    code = _text(raw.get("tracking_status"))
    status, sub = status_of(code)
    return CarrierEvent(
        occurred_at=at,
        time_basis=basis,
        local_time=shown_time(stamp, wall),
        status=status,
        sub_status=sub,
        raw_code=code,
        description=_text(raw.get("message")),
        location=_place(place),
        provider=CODE,
        utc_offset_minutes=minutes,
    )


def _result(raw: Any) -> TrackResult:
    item = raw if isinstance(raw, dict) else {}
    number = _text(item.get("tracking_number"))
    code = _text(item.get("tracking_status"))
    try:
        if not isinstance(raw, dict):
            raise TypeError("result entry is not an object")
        if code.upper() == NOT_FOUND:
            return TrackResult(number, found=False, sub_status=SubStatus.NOT_FOUND, provider=CODE, raw_status=code)
        checkpoints = item.get("checkpoints") or []
        if not isinstance(checkpoints, list):
            raise TypeError("checkpoints is not a list")
        events = sorted((_checkpoint(c) for c in checkpoints), key=lambda e: e.occurred_at)
    except InexactNumber:
        raise  # not a broken parcel: `parse_response` reads the whole body again, exactly
    except Exception as err:  # one unreadable parcel must not sink the batch
        return TrackResult(number, found=False, provider=CODE, error=f"malformed item: {err}")
    if code:
        status, sub = status_of(code)
    elif events:
        status, sub, code = events[-1].status, events[-1].sub_status, events[-1].raw_code
    else:
        status, sub = Status.PENDING, SubStatus.OTHER
    return TrackResult(
        tracking_number=number,
        found=True,
        status=status,
        sub_status=sub,
        events=events,
        provider=CODE,
        raw_status=code,
    )


def parse_response(body: bytes) -> list[TrackResult]:
    """A tracking body -> one result per number. Raises only `BadResponse`.

    Read first without `load_json`'s scan for long digit runs (`load_json_fast`): a number
    the parser turns into text is checked there (`number_text`), and only a body holding a
    number orjson may have cut short is read again, exactly.
    """
    try:
        return parse_document(_read(body, load_json_fast), body)
    except InexactNumber:
        return parse_document(_read(body, load_json_exact), body)


def _read(body: bytes, load: Callable[[bytes], Any]) -> Any:
    try:
        return load(body)
    except (ValueError, RecursionError) as err:
        raise BadResponse(f"{CODE}: body is not JSON", carrier=CODE, body=body) from err


def parse_document(doc: Any, body: bytes = b"") -> list[TrackResult]:
    """`parse_response` of a body already read (`body` goes into a `BadResponse`)."""
    if not isinstance(doc, dict):
        raise BadResponse(f"{CODE}: body is not an object", carrier=CODE, body=body)
    if doc.get("code") not in (0, "0"):
        message = f"{CODE}: code {_text(doc.get('code'))}: {_text(doc.get('message'))}"
        raise BadResponse(message, carrier=CODE, body=body)
    items = doc.get("result")
    if not isinstance(items, list):
        raise BadResponse(f"{CODE}: no result list", carrier=CODE, body=body)
    return [_result(item) for item in items]


# --- adapter ---------------------------------------------------------------------------


class YanwenAdapter(CarrierAdapter):
    """Yanwen tracking API keyed by the customer number."""

    code: ClassVar[str] = CODE
    name: ClassVar[str] = "Yanwen"
    batch_limit: ClassVar[int] = BATCH_LIMIT
    rate_limit: ClassVar[RateLimit] = RateLimit(per_second=1.0, burst=2)  # not documented
    default_retry_after: ClassVar[float] = 60.0
    public_url_template: ClassVar[str] = "https://track.yw56.com.cn/en/querydel?nums={number}"

    def parse(self, body: bytes) -> list[TrackResult]:
        return parse_response(body)

    async def _query(self, numbers: Sequence[str]) -> list[TrackResult]:
        resp = await self.request(
            "GET",
            TRACK_PATH,
            headers={"Authorization": self.settings.api_key, "Content-Type": "application/json"},
            params={"nums": ",".join(numbers)},
        )
        results = self.parse(resp.body)
        seen = {r.tracking_number for r in results}
        results.extend(
            TrackResult(n, found=False, sub_status=SubStatus.NOT_FOUND, provider=CODE) for n in numbers if n not in seen
        )
        return results

    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        results: list[TrackResult] = []
        for start in range(0, len(numbers), BATCH_LIMIT):
            results.extend(await self._query(numbers[start : start + BATCH_LIMIT]))
        return results
