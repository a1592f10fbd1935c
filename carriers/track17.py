"""17TRACK API v2.2 (aggregator): register numbers, then read them, up to 40 a call.

Reference: carrier-apis.md §1. Every call is a POST of a JSON array with the `17token`
header. A number must be registered before `gettrackinfo` knows it; registered numbers are
remembered per adapter, and a "not registered" reply (-18019902) registers and retries once.
Events are grouped per provider (first mile, last mile); each keeps its provider's name.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

from carriers.base import (
    AuthError,
    BadResponse,
    CarrierAdapter,
    CarrierEvent,
    InexactNumber,
    Location,
    RateLimit,
    TimeBasis,
    TrackResult,
    cached_by_values,
    load_json_exact,
    load_json_fast,
    number_text,
)
from carriers.status import Status, SubStatus, unknown_code
from carriers.timezones import resolve_local, shown_time, split_iso, wall_clock, zone_for

log = logging.getLogger("carriers.track17")

DEFAULT_BASE_URL = "https://api.17track.net"
API_PATH = "/track/v2.2"
CODE = "17track"
BATCH_LIMIT = 40

ALREADY_REGISTERED = -18019901
NOT_REGISTERED = -18019902
NO_INFO_YET = -18019909
TOO_MANY_NUMBERS = -18010014
#: request-level codes that mean the key (or the caller's IP) is refused
AUTH_CODES = frozenset({-18010001, -18010002})

_S, _U = Status, SubStatus

#: latest_status.status -> top-level status
MAIN: dict[str, Status] = {
    "NotFound": _S.PENDING,
    "InfoReceived": _S.INFO_RECEIVED,
    "InTransit": _S.IN_TRANSIT,
    "Expired": _S.EXPIRED,
    "AvailableForPickup": _S.AVAILABLE_FOR_PICKUP,
    "OutForDelivery": _S.OUT_FOR_DELIVERY,
    "DeliveryFailure": _S.FAILED_ATTEMPT,
    "Delivered": _S.DELIVERED,
    "Exception": _S.EXCEPTION,
}

#: sub_status -> (status, sub-status); every sub-status of reference §1
STATUS: dict[str, tuple[Status, SubStatus]] = {
    "NotFound_Other": (_S.PENDING, _U.OTHER),
    "NotFound_InvalidCode": (_S.PENDING, _U.NOT_FOUND),
    "InfoReceived": (_S.INFO_RECEIVED, _U.LABEL_CREATED),
    "InTransit_PickedUp": (_S.IN_TRANSIT, _U.PICKED_UP),
    "InTransit_Departure": (_S.IN_TRANSIT, _U.DEPARTED),
    "InTransit_Arrival": (_S.IN_TRANSIT, _U.ARRIVED),
    "InTransit_CustomsProcessing": (_S.IN_TRANSIT, _U.CUSTOMS_PROCESSING),
    "InTransit_CustomsReleased": (_S.IN_TRANSIT, _U.CUSTOMS_RELEASED),
    "InTransit_CustomsRequiringInformation": (_S.EXCEPTION, _U.CUSTOMS_INFO_REQUIRED),
    "InTransit_Other": (_S.IN_TRANSIT, _U.OTHER),
    "Expired_Other": (_S.EXPIRED, _U.OTHER),
    "AvailableForPickup_Other": (_S.AVAILABLE_FOR_PICKUP, _U.PICKUP_POINT),
    "OutForDelivery_Other": (_S.OUT_FOR_DELIVERY, _U.OUT_FOR_DELIVERY),
    "DeliveryFailure_Other": (_S.FAILED_ATTEMPT, _U.OTHER),
    "DeliveryFailure_NoBody": (_S.FAILED_ATTEMPT, _U.RECIPIENT_UNAVAILABLE),
    "DeliveryFailure_Security": (_S.FAILED_ATTEMPT, _U.OTHER),
    "DeliveryFailure_Rejected": (_S.FAILED_ATTEMPT, _U.REFUSED),
    "DeliveryFailure_InvalidAddress": (_S.FAILED_ATTEMPT, _U.ADDRESS_ISSUE),
    "Delivered_Other": (_S.DELIVERED, _U.OTHER),
    "Exception_Returning": (_S.EXCEPTION, _U.RETURNING),
    "Exception_Returned": (_S.RETURNED, _U.RETURNED_TO_SENDER),
    "Exception_Other": (_S.EXCEPTION, _U.OTHER),
    "Exception_NoBody": (_S.EXCEPTION, _U.RECIPIENT_UNAVAILABLE),
    "Exception_Security": (_S.EXCEPTION, _U.OTHER),
    "Exception_Damage": (_S.EXCEPTION, _U.DAMAGED),
    "Exception_Rejected": (_S.EXCEPTION, _U.REFUSED),
    "Exception_Delayed": (_S.EXCEPTION, _U.DELAYED),
    "Exception_Lost": (_S.EXCEPTION, _U.LOST),
    "Exception_Destroyed": (_S.EXCEPTION, _U.DAMAGED),
    "Exception_Cancel": (_S.EXCEPTION, _U.OTHER),
}

#: event `stage` (milestone key_stage) -> (status, sub-status)
STAGES: dict[str, tuple[Status, SubStatus]] = {
    "InfoReceived": (_S.INFO_RECEIVED, _U.LABEL_CREATED),
    "PickedUp": (_S.IN_TRANSIT, _U.PICKED_UP),
    "Departure": (_S.IN_TRANSIT, _U.DEPARTED),
    "Arrival": (_S.IN_TRANSIT, _U.ARRIVED),
    "AvailableForPickup": (_S.AVAILABLE_FOR_PICKUP, _U.PICKUP_POINT),
    "OutForDelivery": (_S.OUT_FOR_DELIVERY, _U.OUT_FOR_DELIVERY),
    "Delivered": (_S.DELIVERED, _U.OTHER),
    "Returning": (_S.EXCEPTION, _U.RETURNING),
    "Returned": (_S.RETURNED, _U.RETURNED_TO_SENDER),
    # seen in latest_event.stage although it is no milestone key
    "Exception": (_S.EXCEPTION, _U.OTHER),
    "Expired": (_S.EXPIRED, _U.OTHER),
}


# --- defensive access -------------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _arr(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    if type(value) is str:  # nearly every value
        return value.strip()
    return value.strip() if isinstance(value, str) else ""


def _country(value: Any) -> str | None:
    text = _text(value).upper()
    return text if len(text) == 2 and text.isalpha() else None


T = TypeVar("T")


def _decode(body: bytes, load: Callable[[bytes], Any]) -> Any:
    try:
        return load(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise BadResponse(f"{CODE}: body is not JSON", carrier=CODE, body=body) from err


def _load(body: bytes) -> Any:
    """A reply read by `load_json_fast`, without `load_json`'s scan for long digit runs: the
    few numbers the parser reads (numbers, codes, provider keys) go through `_whole`, and a
    parse that meets one orjson may have cut short starts over from `_exactly`."""
    return _decode(body, load_json_fast)


def _exactly(body: bytes) -> Any:
    return _decode(body, load_json_exact)


def _parsed(doc: Any, body: bytes, parse: Callable[[Any, bytes], T]) -> T:
    """`parse(doc, body)`, over the body read again exactly if the first reading may have
    cut a number short (`InexactNumber`)."""
    try:
        return parse(doc, body)
    except InexactNumber:
        return parse(_exactly(body), body)


def _whole(value: Any) -> int | None:
    """An integer as the body holds it (a boolean counts, as `isinstance` has it); None for
    anything else. Raises `InexactNumber` for a float from `load_json_fast` large enough to
    be an integer orjson could not hold."""
    if isinstance(value, int):
        return value
    if type(value) is float:
        number_text(value)
    return None


def _as_text(value: Any) -> str:
    """Text as given, or an integer written out (tracking numbers, provider keys); "" for
    anything else."""
    if isinstance(value, str):
        return value
    whole = _whole(value)
    return "" if whole is None else str(whole)


# --- status and time --------------------------------------------------------------------


def map_status(status: str, sub_status: str) -> tuple[Status, SubStatus]:
    if sub_status in STATUS:
        return STATUS[sub_status]
    if sub_status:
        parent = MAIN.get(status) or (STATUS.get(f"{status}_Other") or (_S.IN_TRANSIT, _U.OTHER))[0]
        return unknown_code(CODE, sub_status, parent)
    if status in MAIN:
        return STATUS.get(f"{status}_Other", (MAIN[status], _U.OTHER))
    if status in STATUS:
        return STATUS[status]
    return unknown_code(CODE, status or "<none>", _S.IN_TRANSIT)


def _event_status(event: dict[str, Any]) -> tuple[Status, SubStatus, str]:
    return _status_of(_text(event.get("sub_status")), _text(event.get("stage")))


# A few dozen (sub-status, stage) pairs exist; unknown ones are still logged once each.
@lru_cache(maxsize=1024)
def _status_of(sub: str, stage: str) -> tuple[Status, SubStatus, str]:
    if sub:
        main = sub.split("_", 1)[0]
        status, substatus = map_status(main, sub)
        return status, substatus, sub
    if stage in STAGES:
        status, substatus = STAGES[stage]
        return status, substatus, stage
    if stage:
        status, substatus = unknown_code(CODE, stage, _S.IN_TRANSIT)
        return status, substatus, stage
    # an event with neither stage nor sub_status is an ordinary scan on the way
    return _S.IN_TRANSIT, _U.OTHER, ""


def _aware_utc(text: str) -> datetime | None:
    try:
        _, offset = split_iso(text)
    except ValueError:
        return None
    if offset is None:
        return None
    return datetime.fromisoformat(text.strip()).astimezone(UTC)


def _event_time(
    event: dict[str, Any], location: Location | None, fallback_zone: str | None
) -> tuple[datetime, TimeBasis, str, int | None] | None:
    iso = _text(event.get("time_iso"))
    utc_text = _text(event.get("time_utc"))
    local: datetime | None = None
    if iso:
        offset: int | None = None
        try:
            local, offset = split_iso(iso)
        except ValueError:
            local = None
        if local is not None and offset is not None:
            instant = datetime.fromisoformat(iso).astimezone(UTC)
            return instant, TimeBasis.OFFSET_GIVEN, shown_time(iso, local), offset
    given = _aware_utc(utc_text) if utc_text else None
    if given is not None:
        shown = wall_clock(local) if local is not None else wall_clock(given)
        minutes = None
        if local is not None:
            minutes = int((local.replace(tzinfo=UTC) - given).total_seconds() // 60)
        return given, TimeBasis.UTC_GIVEN, shown, minutes
    if local is None:
        return None
    loc = location or Location()
    instant, basis, minutes = resolve_local(
        local, country=loc.country, city=loc.city, region=loc.region, fallback_zone=fallback_zone
    )
    return instant, basis, wall_clock(local), minutes


def _parse_when(text: str, country: str | None) -> datetime | None:
    """An estimated-delivery bound: with offset as given, a bare date/time at the destination."""
    if not text:
        return None
    try:
        local, offset = split_iso(text)
    except ValueError:
        return None
    if offset is not None:
        return datetime.fromisoformat(text).astimezone(UTC)
    return resolve_local(local, country=country)[0]


# --- items ------------------------------------------------------------------------------


def _location(address: Any) -> Location | None:
    a = _obj(address)
    return _place(a.get("city"), a.get("state"), a.get("country"), a.get("postal_code"))


def _read_place(city: Any, state: Any, country: Any, postcode: Any) -> Location | None:
    loc = Location(
        city=_text(city) or None,
        region=_text(state) or None,
        country=_country(country),
        postcode=_text(postcode) or None,
    )
    return loc if any((loc.city, loc.region, loc.country, loc.postcode)) else None


# scans come from a few thousand depots, named the same way on every poll
_place = cached_by_values(_read_place)


def _provider_events(provider_block: dict[str, Any], destination: str | None) -> list[CarrierEvent]:
    provider = _obj(provider_block.get("provider"))
    name = _text(provider.get("name"))
    label = name or _as_text(provider.get("key"))
    fallback_zone = zone_for(_country(provider.get("country"))) or zone_for(destination)
    events: list[CarrierEvent] = []
    # 17TRACK lists each provider's events newest first
    for raw in reversed(_arr(provider_block.get("events"))):
        event = _obj(raw)
        location = _location(event.get("address"))
        when = _event_time(event, location, fallback_zone)
        if when is None:
            log.debug("17track event without a usable time skipped")
            continue
        instant, basis, shown, minutes = when
        status, substatus, raw_code = _event_status(event)
        events.append(
            CarrierEvent(
                occurred_at=instant,
                time_basis=basis,
                local_time=shown,
                status=status,
                sub_status=substatus,
                raw_code=raw_code,
                description=_text(event.get("description")) or _text(event.get("location")),
                location=location,
                provider=label,
                utc_offset_minutes=minutes,
            )
        )
    return events


def parse_item(item: Any) -> TrackResult:
    """One `accepted[]` entry (or one webhook `data`) -> a result; a broken entry -> `error`."""
    entry = _obj(item)
    number = _as_text(entry.get("number")).strip()
    if not number:
        return TrackResult(tracking_number="", found=False, provider=CODE, error="entry without a number")
    info = entry.get("track_info")
    if info is None:
        return TrackResult(tracking_number=number, found=False, provider=CODE)
    if not isinstance(info, dict):
        return TrackResult(tracking_number=number, found=False, provider=CODE, error="track_info is not an object")
    try:
        return _parse_track_info(number, info)
    except (TypeError, ValueError, AttributeError, OverflowError) as err:
        return TrackResult(tracking_number=number, found=False, provider=CODE, error=f"unreadable entry: {err}")


def _parse_track_info(number: str, info: dict[str, Any]) -> TrackResult:
    shipping = _obj(info.get("shipping_info"))
    origin = _country(_obj(shipping.get("shipper_address")).get("country"))
    destination = _country(_obj(shipping.get("recipient_address")).get("country"))
    latest = _obj(info.get("latest_status"))
    main, sub = _text(latest.get("status")), _text(latest.get("sub_status"))
    events: list[CarrierEvent] = []
    for block in _arr(_obj(info.get("tracking")).get("providers")):
        events.extend(_provider_events(_obj(block), destination))
    events.sort(key=lambda e: e.occurred_at)
    if main or sub:
        status, substatus = map_status(main, sub)
    elif events:
        status, substatus = events[-1].status, events[-1].sub_status
    else:
        status, substatus = _S.PENDING, _U.OTHER
    eta = _obj(_obj(info.get("time_metrics")).get("estimated_delivery_date"))
    found = not (main == "NotFound" and not events)
    return TrackResult(
        tracking_number=number,
        found=found,
        status=status,
        sub_status=substatus,
        events=events,
        estimated_delivery=_parse_when(_text(eta.get("from")), destination),
        estimated_delivery_end=_parse_when(_text(eta.get("to")), destination),
        origin_country=origin,
        destination_country=destination,
        provider=CODE,
        raw_status=sub or main,
    )


def _rejected(item: Any) -> tuple[str, int | None, TrackResult]:
    entry = _obj(item)
    number = _as_text(entry.get("number")).strip()
    error = _obj(entry.get("error"))
    code = _whole(error.get("code"))
    message = _text(error.get("message")) or "rejected"
    if code == NO_INFO_YET:
        result = TrackResult(tracking_number=number, found=False, provider=CODE, raw_status=str(code))
    else:
        result = TrackResult(
            tracking_number=number,
            found=False,
            provider=CODE,
            error=f"{code}: {message}",
            raw_status=str(code),
        )
    return number, code, result


def read_envelope(body: bytes) -> tuple[int, dict[str, Any]]:
    """The request-level `code` and `data` of a 17TRACK reply."""
    return _parsed(_load(body), body, envelope_of)


def envelope_of(doc: Any, body: bytes = b"") -> tuple[int, dict[str, Any]]:
    """`read_envelope` of a reply already read (`body` goes into a `BadResponse`)."""
    code = _whole(doc.get("code")) if isinstance(doc, dict) else None
    if code is None:
        raise BadResponse(f"{CODE}: no envelope code", carrier=CODE, body=body)
    return code, _obj(doc.get("data"))


def parse_split(body: bytes) -> tuple[list[TrackResult], dict[str, int]]:
    """A `gettrackinfo` body -> (results, rejection code per number)."""
    return _parsed(_load(body), body, split_reply)


def split_reply(doc: Any, body: bytes = b"") -> tuple[list[TrackResult], dict[str, int]]:
    """`parse_split` of a reply already read (`body` goes into a `BadResponse`)."""
    code, data = envelope_of(doc, body)
    if code != 0:
        raise BadResponse(f"{CODE}: request refused with code {code}", carrier=CODE, body=body)
    accepted, rejected = data.get("accepted"), data.get("rejected", [])
    if not isinstance(accepted, list) or not isinstance(rejected, list):
        raise BadResponse(f"{CODE}: data without accepted/rejected lists", carrier=CODE, body=body)
    results = [parse_item(item) for item in accepted]
    codes: dict[str, int] = {}
    for item in rejected:
        number, err_code, result = _rejected(item)
        results.append(result)
        if number and err_code is not None:
            codes[number] = err_code
    return results, codes


def parse_push(body: bytes) -> list[TrackResult]:
    """A TRACKING_UPDATED / TRACKING_STOPPED webhook body -> results.

    `data` is one accepted-style entry (v2.2); a list or an `accepted` list is also read.
    A TRACKING_STOPPED push without `track_info` carries no news and yields nothing.
    """
    return _parsed(_load(body), body, _push_results)


def _push_results(doc: Any, body: bytes) -> list[TrackResult]:
    if not isinstance(doc, dict):
        raise BadResponse(f"{CODE}: push is not an object", carrier=CODE, body=body)
    event = _text(doc.get("event"))
    if event not in ("TRACKING_UPDATED", "TRACKING_STOPPED"):
        raise BadResponse(f"{CODE}: unknown push event {event!r}", carrier=CODE, body=body)
    data = doc.get("data")
    if isinstance(data, dict) and isinstance(data.get("accepted"), list):
        entries: list[Any] = data["accepted"]
    elif isinstance(data, list):
        entries = data
    elif isinstance(data, dict):
        entries = [data]
    else:
        raise BadResponse(f"{CODE}: push without data", carrier=CODE, body=body)
    if event == "TRACKING_STOPPED":
        entries = [e for e in entries if isinstance(e, dict) and e.get("track_info") is not None]
    return [parse_item(e) for e in entries]


def _registration(doc: Any, body: bytes) -> tuple[list[str], list[tuple[str, int | None, TrackResult]]]:
    """A `register` reply -> (numbers taken, (number, code, result) of each one refused)."""
    _, data = envelope_of(doc, body)
    accepted = [n for item in _arr(data.get("accepted")) if (n := _text(_obj(item).get("number")))]
    return accepted, [_rejected(item) for item in _arr(data.get("rejected"))]


def sign_push(body: bytes, secret: str) -> str:
    return hashlib.sha256(body + b"/" + secret.encode("utf-8")).hexdigest()


def verify_push_signature(body: bytes, signature_header: str, secret: str) -> bool:
    """17TRACK signs a push with hex SHA-256 of "<raw body>/<secret>" in header `sign`."""
    if not secret or not signature_header:
        return False
    return hmac.compare_digest(sign_push(body, secret), signature_header.strip().lower())


# --- the adapter ------------------------------------------------------------------------


class Track17Adapter(CarrierAdapter):
    code: ClassVar[str] = CODE
    name: ClassVar[str] = "17TRACK"
    batch_limit: ClassVar[int] = BATCH_LIMIT
    rate_limit: ClassVar[RateLimit] = RateLimit(per_second=3.0, burst=3)
    default_retry_after: ClassVar[float] = 2.0
    public_url_template: ClassVar[str] = "https://t.17track.net/en#nums={number}"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registered: set[str] = set()

    def parse(self, body: bytes) -> list[TrackResult]:
        return parse_split(body)[0]

    def parse_push(self, body: bytes) -> list[TrackResult]:
        return parse_push(body)

    def verify_push_signature(self, body: bytes, signature_header: str) -> bool:
        return verify_push_signature(body, signature_header, self.settings.webhook_secret or self.settings.api_key)

    async def _post(self, call: str, numbers: Sequence[str]) -> tuple[Any, bytes]:
        """The reply to a call, read once (`split_reply` and `_register` take it as read), and
        its body."""
        resp = await self.request(
            "POST",
            f"{API_PATH}/{call}",
            headers={"17token": self.settings.api_key, "Content-Type": "application/json"},
            json=[{"number": n} for n in numbers],
        )
        doc = _load(resp.body)
        code, _ = _parsed(doc, resp.body, envelope_of)
        if code in AUTH_CODES:
            raise AuthError(f"{CODE}: key refused ({code})", carrier=CODE)
        if code != 0:
            raise BadResponse(f"{CODE}: {call} refused with code {code}", carrier=CODE, body=resp.body)
        return doc, resp.body

    async def _register(self, numbers: Sequence[str]) -> dict[str, TrackResult]:
        """Register `numbers`; returns a result for each one 17TRACK would not take."""
        failures: dict[str, TrackResult] = {}
        if not numbers:
            return failures
        accepted, rejected = _parsed(*await self._post("register", numbers), _registration)
        self.registered.update(accepted)
        for number, code, result in rejected:
            if code == ALREADY_REGISTERED:
                self.registered.add(number)
            elif number:
                failures[number] = result
        return failures

    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        if len(numbers) > self.batch_limit:
            raise ValueError(f"{CODE}: at most {self.batch_limit} numbers per call, got {len(numbers)}")
        wanted = list(dict.fromkeys(numbers))
        failures = await self._register([n for n in wanted if n not in self.registered])
        ready = [n for n in wanted if n not in failures]
        by_number: dict[str, list[TrackResult]] = {}
        if ready:
            results, codes = _parsed(*await self._post("gettrackinfo", ready), split_reply)
            retry = [n for n, c in codes.items() if c == NOT_REGISTERED and n in ready]
            if retry:
                self.registered.difference_update(retry)
                failures.update(await self._register(retry))
                again = [n for n in retry if n not in failures]
                results = [r for r in results if r.tracking_number not in retry]
                if again:
                    results.extend(_parsed(*await self._post("gettrackinfo", again), split_reply)[0])
            for result in results:
                by_number.setdefault(result.tracking_number, []).append(result)
        out: list[TrackResult] = []
        for number in wanted:
            if number in failures:
                out.append(failures[number])
            else:
                out.extend(
                    by_number.pop(number, [])
                    or [TrackResult(tracking_number=number, found=False, provider=CODE, error="missing from reply")]
                )
        for rest in by_number.values():
            out.extend(rest)
        return out
