"""DHL Shipment Tracking - Unified API: one number a call, possibly several shipments.

Reference: carrier-apis.md §2. `GET /track/shipments?trackingNumber=` with header
`DHL-API-Key`; "not found" is a 404 problem+json. Event timestamps are local wall-clock
time without offset: the zone comes from the event's place, else from the shipment's
origin (early events) or destination (late events). The status code is coarse
(pre-transit, transit, delivered, failure, unknown), so the description refines it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar

from carriers.base import (
    BadResponse,
    CarrierAdapter,
    CarrierEvent,
    Location,
    RateLimit,
    TimeBasis,
    TrackResult,
    load_json,
)
from carriers.status import Status, SubStatus, unknown_code
from carriers.timezones import resolve_local, shown_time, zone_for

DEFAULT_BASE_URL = "https://api-eu.dhl.com"
TRACK_PATH = "/track/shipments"
CODE = "dhl"

_S, _U = Status, SubStatus

#: statusCode -> (status, sub-status); every value of the spec's enum
STATUS: dict[str, tuple[Status, SubStatus]] = {
    "pre-transit": (_S.INFO_RECEIVED, _U.LABEL_CREATED),
    "transit": (_S.IN_TRANSIT, _U.IN_TRANSIT),
    "delivered": (_S.DELIVERED, _U.OTHER),
    "failure": (_S.EXCEPTION, _U.OTHER),
    "unknown": (_S.PENDING, _U.OTHER),
}

#: codes whose meaning the description refines (DHL Express often sends none at all)
_COARSE = frozenset({"transit", "failure", "unknown", "delivered", ""})


def _rule(
    pattern: str, codes: str, status: Status, sub: SubStatus
) -> tuple[re.Pattern[str], frozenset[str], Status, SubStatus]:
    return re.compile(pattern, re.IGNORECASE), frozenset(codes.split(",")), status, sub


# First match wins. `codes` lists the statusCodes a rule may refine ("" = no code sent).
# English and German wording from DHL Express and DHL Paket event texts.
_RULES = (
    _rule(
        r"returned to (sender|shipper)|zurück an (den )?absender|rücksendung zugestellt",
        "delivered,transit,failure,",
        _S.RETURNED,
        _U.RETURNED_TO_SENDER,
    ),
    _rule(
        r"returning to|return(ed)? to (sender|shipper)|rücksendung|wird zurückgesendet",
        "transit,failure,unknown,",
        _S.EXCEPTION,
        _U.RETURNING,
    ),
    _rule(
        r"customs requires|information required|documents? required"
        r"|awaiting (customs )?(documents|information)",
        "transit,failure,unknown,",
        _S.EXCEPTION,
        _U.CUSTOMS_INFO_REQUIRED,
    ),
    _rule(
        r"held by customs|customs hold|held for (customs|inspection)|zoll.*(einbehalten|angehalten)",
        "transit,failure,unknown,",
        _S.EXCEPTION,
        _U.CUSTOMS_HELD,
    ),
    _rule(
        r"clearance (processing )?complete|customs clearance completed|released by customs"
        r"|cleared (by )?customs|zollabfertigung abgeschlossen|verzollt",
        "transit,unknown,",
        _S.IN_TRANSIT,
        _U.CUSTOMS_RELEASED,
    ),
    _rule(r"customs|clearance|zoll", "transit,failure,unknown,", _S.IN_TRANSIT, _U.CUSTOMS_PROCESSING),
    _rule(r"refused|verweigert", "transit,failure,unknown,", _S.EXCEPTION, _U.REFUSED),
    _rule(r"damaged|beschädigt", "transit,failure,unknown,", _S.EXCEPTION, _U.DAMAGED),
    _rule(r"could not be located|\blost\b|verloren", "transit,failure,unknown,", _S.EXCEPTION, _U.LOST),
    _rule(
        r"address (is )?(incorrect|incomplete|unknown)|bad address|adresse",
        "transit,failure,unknown,",
        _S.FAILED_ATTEMPT,
        _U.ADDRESS_ISSUE,
    ),
    _rule(
        r"delivery attempt|attempted delivery|zustellversuch|not at home|recipient not available"
        r"|nicht angetroffen|could not be delivered",
        "transit,failure,unknown,",
        _S.FAILED_ATTEMPT,
        _U.RECIPIENT_UNAVAILABLE,
    ),
    _rule(
        r"out (with courier )?for delivery|with delivery courier|zustellfahrzeug|in zustellung",
        "transit,unknown,",
        _S.OUT_FOR_DELIVERY,
        _U.OUT_FOR_DELIVERY,
    ),
    _rule(
        r"available for pick-?up|ready for (pick-?up|collection)|zur abholung|abholbereit",
        "transit,failure,unknown,",
        _S.AVAILABLE_FOR_PICKUP,
        _U.PICKUP_POINT,
    ),
    _rule(r"delay|verzöger", "transit,failure,unknown,", _S.IN_TRANSIT, _U.DELAYED),
    _rule(r"picked up by (the )?recipient|collected by|abgeholt", "delivered", _S.DELIVERED, _U.PICKUP_POINT),
    _rule(r"signed|unterschrieben", "delivered", _S.DELIVERED, _U.SIGNED),
    _rule(r"left at|front door|mailbox|briefkasten|ablageort", "delivered", _S.DELIVERED, _U.LEFT_AT_DOOR),
    _rule(r"^delivered|zugestellt", "unknown,", _S.DELIVERED, _U.OTHER),
    _rule(r"handed over|last-mile|übergeben", "transit,unknown,", _S.IN_TRANSIT, _U.HANDED_TO_LAST_MILE),
    _rule(r"picked up|shipment pickup|abgeholt|eingeliefert", "transit,unknown,", _S.IN_TRANSIT, _U.PICKED_UP),
    _rule(r"^arrived|arrived at|angekommen|eingetroffen", "transit,unknown,", _S.IN_TRANSIT, _U.ARRIVED),
    _rule(
        r"^departed|departed from|left .*facility|processed at",
        "transit,unknown,",
        _S.IN_TRANSIT,
        _U.DEPARTED,
    ),
    _rule(
        r"information received|label created|elektronisch angekündigt",
        "unknown,",
        _S.INFO_RECEIVED,
        _U.LABEL_CREATED,
    ),
)


# --- defensive access -------------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _arr(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    if type(value) is str:  # nearly every value: skip the checks below
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _country(value: Any) -> str | None:
    text = _text(value).upper()
    return text if len(text) == 2 and text.isalpha() else None


# --- mapping ----------------------------------------------------------------------------


def map_event(code: str, text: str) -> tuple[Status, SubStatus] | None:
    """The (status, sub-status) for a statusCode and its texts; None when nothing says.

    An unknown code is logged once and read as in transit.
    """
    code = code.lower()
    if code not in STATUS and code:
        return unknown_code(CODE, code, _S.IN_TRANSIT)
    if code in _COARSE:
        refined = _refine(code, text)
        if refined is not None:
            return refined
    if code in ("", "unknown"):
        return None
    return STATUS[code]


# DHL words its events from a small set of templates, so the same (code, text) pairs come
# back on every poll; trying two dozen patterns each time is most of a parse otherwise.
@lru_cache(maxsize=4096)
def _refine(code: str, text: str) -> tuple[Status, SubStatus] | None:
    for pattern, codes, status, sub in _RULES:
        if code in codes and pattern.search(text):
            return status, sub
    return None


def _read_location(city: Any, region: Any, country: Any, postcode: Any) -> Location | None:
    loc = Location(
        city=_text(city) or None,
        region=_text(region) or None,
        country=_country(country),
        postcode=_text(postcode) or None,
    )
    return loc if any((loc.city, loc.region, loc.country, loc.postcode)) else None


#: raw address fields -> Location; the same depots recur across events and shipments
_PLACES: dict[tuple[str | None, ...], Location | None] = {}
_PLACES_MAX = 4096
_PLAIN = (str, type(None))


def _location(raw: Any) -> Location | None:
    address = raw.get("address") if isinstance(raw, dict) else None
    if not isinstance(address, dict):
        return None
    city = address.get("addressLocality")
    region = address.get("addressRegion")
    country = address.get("countryCode")
    postcode = address.get("postalCode")
    # only text is remembered: 1, 1.0 and True are equal as keys but read differently
    if not (type(city) in _PLAIN and type(region) in _PLAIN and type(country) in _PLAIN and type(postcode) in _PLAIN):
        return _read_location(city, region, country, postcode)
    key = (city, region, country, postcode)
    try:
        return _PLACES[key]
    except KeyError:
        pass
    if len(_PLACES) >= _PLACES_MAX:
        _PLACES.clear()
    loc = _PLACES[key] = _read_location(city, region, country, postcode)
    return loc


def _instant(
    text: str, location: Location | None, fallback_zone: str | None
) -> tuple[datetime, TimeBasis, str, int] | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = parsed.utcoffset()
    if offset is not None:
        basis = TimeBasis.UTC_GIVEN if text.endswith(("Z", "z")) else TimeBasis.OFFSET_GIVEN
        return parsed.astimezone(UTC), basis, shown_time(text, parsed), int(offset.total_seconds() // 60)
    if location is None:
        instant, basis, minutes = resolve_local(parsed, country=None, fallback_zone=fallback_zone)
    else:
        instant, basis, minutes = resolve_local(
            parsed,
            country=location.country,
            city=location.city,
            region=location.region,
            fallback_zone=fallback_zone,
        )
    return instant, basis, shown_time(text, parsed), minutes


def _texts(description: str, status: str) -> str:
    if description and status:
        return f"{description} | {status}"
    return description or status


def _signed_by(details: dict[str, Any]) -> str | None:
    signed = _obj(_obj(details.get("proofOfDelivery")).get("signed"))
    given, family, name = _text(signed.get("givenName")), _text(signed.get("familyName")), _text(signed.get("name"))
    if given and family:
        return f"{given} {family}"
    return name or given or family or None


def _when(text: str, zone: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return resolve_local(parsed, country=None, fallback_zone=zone)[0]


def _events(raw_events: list[Any], origin_zone: str | None, dest_zone: str | None) -> list[CarrierEvent]:
    # DHL lists events newest first; read them oldest first so "keep previous" works
    events: list[CarrierEvent] = []
    previous: tuple[Status, SubStatus] = (_S.PENDING, _U.OTHER)
    half = len(raw_events) / 2
    for index, item in enumerate(reversed(raw_events)):
        raw = _obj(item)
        code = _text(raw.get("statusCode")).lower()
        description = _text(raw.get("description"))
        status_text = _text(raw.get("status"))
        mapped = map_event(code, _texts(description, status_text)) or (previous[0], _U.OTHER)
        early = mapped[0] in (_S.PENDING, _S.INFO_RECEIVED) or (mapped[0] == _S.IN_TRANSIT and index < half)
        location = _location(raw.get("location"))
        when = _instant(_text(raw.get("timestamp")), location, origin_zone if early else dest_zone)
        if when is None:
            continue
        instant, basis, shown, minutes = when
        previous = mapped
        events.append(
            CarrierEvent(
                occurred_at=instant,
                time_basis=basis,
                local_time=shown,
                status=mapped[0],
                sub_status=mapped[1],
                raw_code=code,
                description=description or status_text,
                location=location,
                provider=CODE,
                utc_offset_minutes=minutes,
            )
        )
    if len(events) > 1:
        events.sort(key=_occurred_at)
    return events


def _occurred_at(event: CarrierEvent) -> datetime:
    return event.occurred_at


def parse_shipment(raw: Any) -> TrackResult:
    shipment = _obj(raw)
    ref = _text(shipment.get("id"))
    if not ref:
        return TrackResult(tracking_number="", found=False, provider=CODE, error="shipment without an id")
    try:
        return _parse_shipment(ref, shipment)
    except (TypeError, ValueError, AttributeError, OverflowError) as err:
        return TrackResult(tracking_number=ref, found=False, provider=CODE, shipment_ref=ref, error=str(err))


def _parse_shipment(ref: str, shipment: dict[str, Any]) -> TrackResult:
    origin_loc = _location(shipment.get("origin"))
    dest_loc = _location(shipment.get("destination"))
    origin = origin_loc.country if origin_loc else None
    destination = dest_loc.country if dest_loc else None
    origin_zone = zone_for(origin, origin_loc.city if origin_loc else None)
    dest_zone = zone_for(destination, dest_loc.city if dest_loc else None)
    raw_events = shipment.get("events", [])
    if not isinstance(raw_events, list):
        raise ValueError("events is not a list")
    events = _events(raw_events, origin_zone, dest_zone)
    current = _obj(shipment.get("status"))
    code = _text(current.get("statusCode")).lower()
    mapped = (
        map_event(code, _texts(_text(current.get("description")), _text(current.get("status")))) if current else None
    )
    if mapped is None:
        mapped = (events[-1].status, events[-1].sub_status) if events else (_S.PENDING, _U.OTHER)
    if shipment.get("returnFlag") is True:
        done = mapped[0] in (_S.DELIVERED, _S.RETURNED) and mapped[1] != _U.RETURNING
        # still on its way back: not terminal, so polling continues until it arrives
        mapped = (_S.RETURNED, _U.RETURNED_TO_SENDER) if done else (_S.EXCEPTION, _U.RETURNING)
    details = _obj(shipment.get("details"))
    frame = _obj(shipment.get("estimatedDeliveryTimeFrame"))
    eta = _when(_text(shipment.get("estimatedTimeOfDelivery")), dest_zone) or _when(
        _text(frame.get("estimatedFrom")), dest_zone
    )
    return TrackResult(
        tracking_number=ref,
        found=True,
        status=mapped[0],
        sub_status=mapped[1],
        events=events,
        estimated_delivery=eta,
        estimated_delivery_end=_when(_text(frame.get("estimatedThrough")), dest_zone),
        signed_by=_signed_by(details),
        origin_country=origin,
        destination_country=destination,
        provider=CODE,
        raw_status=code,
        shipment_ref=ref,
    )


def parse_body(body: bytes) -> list[TrackResult]:
    try:
        doc = load_json(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadResponse(f"{CODE}: body is not JSON", carrier=CODE, body=body) from err
    if not isinstance(doc, dict) or not isinstance(doc.get("shipments"), list):
        raise BadResponse(f"{CODE}: no shipments list", carrier=CODE, body=body)
    return [parse_shipment(s) for s in doc["shipments"]]


def is_not_found(body: bytes) -> bool:
    """A 404 problem+json body that says the number is unknown."""
    try:
        doc = load_json(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("status") == 404


class DhlAdapter(CarrierAdapter):
    code: ClassVar[str] = CODE
    name: ClassVar[str] = "DHL"
    batch_limit: ClassVar[int] = 1
    rate_limit: ClassVar[RateLimit] = RateLimit(per_second=1.0, burst=1)
    #: DHL sends no Retry-After; its quota is per day, so back off for a while
    default_retry_after: ClassVar[float] = 60.0
    public_url_template: ClassVar[str] = (
        "https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&tracking-id={number}"
    )

    def parse(self, body: bytes) -> list[TrackResult]:
        return parse_body(body)

    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        if len(numbers) > self.batch_limit:
            raise ValueError(f"{CODE}: one number per call, got {len(numbers)}")
        out: list[TrackResult] = []
        for number in numbers:
            resp = await self.request(
                "GET",
                TRACK_PATH,
                headers={"DHL-API-Key": self.settings.api_key, "Accept": "application/json"},
                params={"trackingNumber": number},
                ok=(200, 404),
            )
            if resp.status == 404:
                if not is_not_found(resp.body):
                    raise BadResponse(f"{CODE}: 404 without a problem body", carrier=CODE, body=resp.body)
                out.append(TrackResult(tracking_number=number, found=False, provider=CODE))
                continue
            results = parse_body(resp.body)
            for result in results:
                # the number asked for may be a piece id or reference: keep what was asked
                result.tracking_number = number
            out.extend(results or [TrackResult(tracking_number=number, found=False, provider=CODE)])
        return out
