"""USPS Tracking API v3 (OAuth2): one number per GET, local times with a misleading `Z`.

Reference: carrier-apis.md §5. `eventTimestamp` is the wall-clock time at the place of
the scan even when it ends in `Z`, and `GMTTimestamp` can be a day early, so the instant
is `eventTimestamp - GMTOffset`; `GMTTimestamp` only lends its seconds when it agrees.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
import pycountry

from carriers.base import (
    BadResponse,
    CarrierAdapter,
    CarrierEvent,
    CarrierSettings,
    Clock,
    Location,
    RateLimit,
    TimeBasis,
    TokenCache,
    TrackResult,
    load_json,
    utc_now,
    with_token_refresh,
)
from carriers.status import Status, SubStatus, unknown_code
from carriers.timezones import from_offset, parse_offset, resolve_local, split_iso, wall_clock

DEFAULT_BASE_URL = "https://apis.usps.com"
AUTH_PATH = "/oauth2/v3/token"
TRACK_PATH = "/tracking/v3/tracking/{number}"
#: "A status update is not yet available": the number is valid but has no scans yet
NOT_YET_AVAILABLE = "150001"
#: most USPS scans are in the east; used only when neither the event nor the shipment has a place
FALLBACK_ZONE = "America/New_York"
CODE = "usps"

_IT = Status.IN_TRANSIT
_FAILED = (Status.FAILED_ATTEMPT, SubStatus.RECIPIENT_UNAVAILABLE)
_RETURNED = (Status.RETURNED, SubStatus.RETURNED_TO_SENDER)
#: eventCode -> (status, sub-status), after USPS Publication 199
STATUS: dict[str, tuple[Status, SubStatus]] = {
    **dict.fromkeys(("GX", "MA"), (Status.INFO_RECEIVED, SubStatus.LABEL_CREATED)),
    # shipping-partner scans before USPS has the item
    "80": (Status.INFO_RECEIVED, SubStatus.PICKED_UP),
    "81": (Status.INFO_RECEIVED, SubStatus.ARRIVED),
    "82": (Status.INFO_RECEIVED, SubStatus.DEPARTED),
    **dict.fromkeys(("03", "TM"), (_IT, SubStatus.PICKED_UP)),
    **dict.fromkeys(("10", "A1", "07", "AD"), (_IT, SubStatus.ARRIVED)),
    **dict.fromkeys(("T1", "SF"), (_IT, SubStatus.DEPARTED)),
    **dict.fromkeys(("PA", "EF", "TL", "PC", "06", "08", "15", "42"), (_IT, SubStatus.IN_TRANSIT)),
    "OF": (Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY),
    **dict.fromkeys(("02", "52", "53", "54", "55", "56", "30", "51", "71"), _FAILED),
    **dict.fromkeys(("14", "16"), (Status.AVAILABLE_FOR_PICKUP, SubStatus.PICKUP_POINT)),
    "01": (Status.DELIVERED, SubStatus.OTHER),
    **dict.fromkeys(("17", "43"), (Status.DELIVERED, SubStatus.PICKUP_POINT)),
    **dict.fromkeys(("09", "24", "27", "28", "29", "31"), _RETURNED),
    "04": (Status.RETURNED, SubStatus.REFUSED),
    **dict.fromkeys(("05", "21", "22", "23", "25", "26"), (Status.RETURNED, SubStatus.ADDRESS_ISSUE)),
    "11": (Status.EXCEPTION, SubStatus.LOST),  # dead letter
    "44": (Status.EXCEPTION, SubStatus.RETURNING),  # customer recall
    "DX": (Status.EXCEPTION, SubStatus.DELAYED),  # status not updated
}

#: statusCategory -> (status, sub-status), for a shipment without usable events
CATEGORY: dict[str, tuple[Status, SubStatus]] = {
    "pre-shipment": (Status.INFO_RECEIVED, SubStatus.LABEL_CREATED),
    "accepted": (_IT, SubStatus.PICKED_UP),
    "moving through network": (_IT, SubStatus.IN_TRANSIT),
    "in transit": (_IT, SubStatus.IN_TRANSIT),
    "out for delivery": (Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY),
    "available for pickup": (Status.AVAILABLE_FOR_PICKUP, SubStatus.PICKUP_POINT),
    "alert": (Status.EXCEPTION, SubStatus.OTHER),
    "return to sender": _RETURNED,
    "delivered": (Status.DELIVERED, SubStatus.OTHER),
    "delivered to agent": (Status.DELIVERED, SubStatus.PICKUP_POINT),
}

#: international scans share codes with domestic ones; the text tells customs apart
_CUSTOMS_TEXT: tuple[tuple[str, tuple[Status, SubStatus]], ...] = (
    ("held in customs", (Status.EXCEPTION, SubStatus.CUSTOMS_HELD)),
    ("customs clearance processing complete", (_IT, SubStatus.CUSTOMS_RELEASED)),
    ("released from customs", (_IT, SubStatus.CUSTOMS_RELEASED)),
    ("customs", (_IT, SubStatus.CUSTOMS_PROCESSING)),
)

#: delivered sub-status from the words USPS puts in the event text
_DELIVERY_TEXT: tuple[tuple[str, SubStatus], ...] = (
    ("parcel locker", SubStatus.PICKUP_POINT),
    ("post office", SubStatus.PICKUP_POINT),
    ("agent", SubStatus.PICKUP_POINT),
    ("front door", SubStatus.LEFT_AT_DOOR),
    ("porch", SubStatus.LEFT_AT_DOOR),
    ("mailbox", SubStatus.LEFT_AT_DOOR),
    ("left with individual", SubStatus.SIGNED),
)


# --- pure parsing ----------------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _country(value: Any) -> str | None:
    """USPS sends names ("CHINA") or codes; domestic events send nothing."""
    text = _text(value)
    if not text:
        return None
    if len(text) == 2 and text.isalpha():
        return text.upper()
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return None


def status_of(code: str, text: str) -> tuple[Status, SubStatus]:
    lowered = text.lower()
    for needle, mapped in _CUSTOMS_TEXT:
        if needle in lowered:
            return mapped
    if code in STATUS:
        status, sub = STATUS[code]
        if status is Status.DELIVERED and sub is SubStatus.OTHER:
            sub = next((s for needle, s in _DELIVERY_TEXT if needle in lowered), sub)
        return status, sub
    return unknown_code(CODE, code or text or "?", Status.IN_TRANSIT)


def event_instant(
    raw: dict[str, Any], place: Location | None, origin: Location | None
) -> tuple[datetime, TimeBasis, str, int]:
    """(UTC instant, basis, local wall-clock, offset minutes) of one tracking event."""
    stamp = _text(raw.get("eventTimestamp"))
    # the trailing Z is not UTC: USPS prints the local time and appends it anyway
    wall, _ = split_iso(stamp[:-1] if stamp.upper().endswith("Z") else stamp)
    local = wall_clock(wall)
    offset_text = _text(raw.get("GMTOffset"))
    if offset_text:
        offset = parse_offset(offset_text)
        at = from_offset(wall, offset)
        gmt = _text(raw.get("GMTTimestamp"))
        if gmt:
            try:
                gmt_wall, _ = split_iso(gmt[:-1] if gmt.upper().endswith("Z") else gmt)
            except ValueError:
                gmt_wall = None
            if gmt_wall is not None and (gmt_wall.hour, gmt_wall.minute) == (at.hour, at.minute):
                at = at.replace(second=gmt_wall.second, microsecond=gmt_wall.microsecond)
        return at, TimeBasis.OFFSET_GIVEN, local, offset
    if place is not None and (place.city or place.region):
        at, basis, minutes = resolve_local(
            wall, country=place.country or "US", city=place.city, region=place.region, fallback_zone=None
        )
        if basis is TimeBasis.ZONE_FROM_LOCATION:
            return at, basis, local, minutes
    # no place of its own: pre-shipment scans happen where the shipper is
    at, _, minutes = resolve_local(
        wall,
        country=origin.country if origin else None,
        city=origin.city if origin else None,
        region=origin.region if origin else None,
        fallback_zone=FALLBACK_ZONE,
    )
    return at, TimeBasis.ZONE_ASSUMED, local, minutes


def _event(raw: Any, origin: Location | None) -> CarrierEvent:
    if not isinstance(raw, dict):
        raise ValueError("tracking event is not an object")
    place = Location(
        city=_text(raw.get("eventCity")) or None,
        region=_text(raw.get("eventState")) or None,
        country=_country(raw.get("eventCountry")),
        postcode=_text(raw.get("eventZIP")) or None,
    )
    if place.country is None and (place.region or place.city):
        place = Location(place.city, place.region, "US", place.postcode)
    has_place = any((place.city, place.region, place.country, place.postcode))
    at, basis, local, offset = event_instant(raw, place if has_place else None, origin)
    code = _text(raw.get("eventCode"))
    description = _text(raw.get("eventType"))
    status, sub = status_of(code, description)
    return CarrierEvent(
        occurred_at=at,
        time_basis=basis,
        local_time=local,
        status=status,
        sub_status=sub,
        raw_code=code,
        description=description,
        location=place if has_place else None,
        provider=CODE,
        utc_offset_minutes=offset,
    )


def _place(doc: dict[str, Any], prefix: str) -> Location | None:
    country = _country(doc.get(f"{prefix}Country")) or _country(doc.get(f"{prefix}CountryCode"))
    city, state = _text(doc.get(f"{prefix}City")) or None, _text(doc.get(f"{prefix}State")) or None
    if country is None and (city or state):
        country = "US"
    loc = Location(city, state, country, _text(doc.get(f"{prefix}ZIP")) or None)
    return loc if any((loc.city, loc.region, loc.country, loc.postcode)) else None


def _eta(doc: dict[str, Any], destination: Location | None) -> datetime | None:
    text = _text(doc.get("expectedDeliveryTimeStamp")) or _text(doc.get("predictedDeliveryDate"))
    if not text:
        return None
    try:
        wall, offset = split_iso(text[:-1] if text.upper().endswith("Z") else text)
    except ValueError:
        return None
    if offset is not None:
        return from_offset(wall, offset)
    return resolve_local(
        wall,
        country=destination.country if destination else "US",
        city=destination.city if destination else None,
        region=destination.region if destination else None,
        fallback_zone=FALLBACK_ZONE,
    )[0]


def _result(doc: dict[str, Any], number: str) -> TrackResult:
    number = _text(doc.get("trackingNumber")) or number
    origin, destination = _place(doc, "origin"), _place(doc, "destination")
    raw_events = doc.get("trackingEvents") or []
    if not isinstance(raw_events, list):
        raise ValueError("trackingEvents is not a list")
    # USPS lists events newest first; reversing keeps its order for equal instants
    events = sorted((_event(e, origin) for e in reversed(raw_events)), key=lambda e: e.occurred_at)
    category = _text(doc.get("statusCategory"))
    if events:
        status, sub, raw = events[-1].status, events[-1].sub_status, events[-1].raw_code
    elif category.lower() in CATEGORY:
        (status, sub), raw = CATEGORY[category.lower()], category
    else:
        status, sub, raw = Status.PENDING, SubStatus.OTHER, category
    signed_by = next((_text(e.get("name")) for e in raw_events if isinstance(e, dict) and _text(e.get("name"))), None)
    return TrackResult(
        tracking_number=number,
        found=True,
        status=status,
        sub_status=sub,
        events=events,
        estimated_delivery=_eta(doc, destination),
        signed_by=signed_by,
        origin_country=origin.country if origin else None,
        destination_country=destination.country if destination else None,
        provider=CODE,
        raw_status=raw,
    )


def parse_body(body: bytes, number: str = "") -> list[TrackResult]:
    """A tracking body (200, or the 400 "no update yet" body) -> one result."""
    try:
        doc = load_json(body)
    except (ValueError, RecursionError) as err:
        raise BadResponse(f"{CODE}: body is not JSON", carrier=CODE, body=body) from err
    if not isinstance(doc, dict):
        raise BadResponse(f"{CODE}: body is not an object", carrier=CODE, body=body)
    error = doc.get("error")
    if error is not None:
        error = _obj(error)
        subs = error.get("errors")
        codes = {_text(_obj(e).get("code")) for e in subs} if isinstance(subs, list) else set()
        if NOT_YET_AVAILABLE in codes:
            return [TrackResult(number, found=False, sub_status=SubStatus.NOT_FOUND, provider=CODE)]
        message = _text(error.get("message")) or _text(error.get("code"))
        raise BadResponse(f"{CODE}: {message}", carrier=CODE, body=body)
    if "trackingNumber" not in doc and "trackingEvents" not in doc:
        raise BadResponse(f"{CODE}: not a tracking body", carrier=CODE, body=body)
    try:
        return [_result(doc, number)]
    except Exception as err:
        raise BadResponse(f"{CODE}: unreadable tracking body: {err}", carrier=CODE, body=body) from err


# --- adapter ---------------------------------------------------------------------------


class UspsAdapter(CarrierAdapter):
    """USPS Tracking v3 with a cached client-credentials token."""

    code: ClassVar[str] = CODE
    name: ClassVar[str] = "USPS"
    batch_limit: ClassVar[int] = 1  # v3 GET takes one number
    # the default quota is about 60 calls an hour, token calls included
    rate_limit: ClassVar[RateLimit] = RateLimit(per_second=60 / 3600, burst=5)
    default_retry_after: ClassVar[float] = 300.0
    public_url_template: ClassVar[str] = "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"

    def __init__(self, *, session: aiohttp.ClientSession, settings: CarrierSettings, clock: Clock = utc_now) -> None:
        super().__init__(session=session, settings=settings, clock=clock)
        self.tokens = TokenCache(self._fetch_token, clock)

    def parse(self, body: bytes) -> list[TrackResult]:
        return parse_body(body)

    async def _fetch_token(self) -> tuple[str, float]:
        payload = {
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
            "grant_type": "client_credentials",
        }
        resp = await self.request("POST", AUTH_PATH, json=payload)
        try:
            doc = _obj(load_json(resp.body))
            token, lifetime = doc.get("access_token"), doc.get("expires_in")
            if not isinstance(token, str) or not token or not isinstance(lifetime, int | float | str):
                raise ValueError("no access_token")
            # expires_in arrives as a string
            return token, float(lifetime)
        except (ValueError, RecursionError) as err:
            raise BadResponse(f"{CODE}: bad token response", carrier=CODE, body=resp.body) from err

    async def _get(self, token: str, number: str) -> bytes:
        resp = await self.request(
            "GET",
            TRACK_PATH.format(number=quote(number, safe="")),
            headers={"Authorization": f"Bearer {token}"},
            params={"expand": "DETAIL"},
            ok=(200, 400),
        )
        return resp.body

    async def _track_one(self, number: str) -> TrackResult:
        async def call(token: str) -> bytes:
            return await self._get(token, number)

        body: bytes = await with_token_refresh(self.tokens, call)
        try:
            result = parse_body(body, number)[0]
        except BadResponse as err:
            return TrackResult(number, found=False, provider=CODE, error=str(err))
        result.tracking_number = result.tracking_number or number
        return result

    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        return [await self._track_one(n) for n in numbers]
