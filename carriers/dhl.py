"""DHL Shipment Tracking - Unified API: one number a call, possibly several shipments.

Reference: carrier-apis.md §2. `GET /track/shipments?trackingNumber=` with header
`DHL-API-Key`; "not found" is a 404 problem+json. Event timestamps are local wall-clock
time without offset: the zone comes from the event's place, else from the shipment's
origin (early events) or destination (late events). The status code is coarse
(pre-transit, transit, delivered, failure, unknown), so the description refines it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple
from zoneinfo import ZoneInfo

from carriers.base import (
    BadResponse,
    CarrierAdapter,
    CarrierEvent,
    InexactNumber,
    Location,
    RateLimit,
    TimeBasis,
    TrackResult,
    load_json,
    load_json_exact,
    load_json_fast,
    number_text,
)
from carriers.status import Status, SubStatus, unknown_code
from carriers.timezones import resolve_in, shown_time, zone_for, zone_info

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
    if type(value) is int:  # a numeric id
        return str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number_text(value)
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


#: what an event (or a shipment's status) says: lower-case statusCode, description, status
#: text, and the (status, sub-status) they map to, None when nothing says
_Reading = tuple[str, str, str, tuple[Status, SubStatus] | None]

#: raw (statusCode, description, status) -> reading; DHL's wording recurs on every poll
_READINGS: dict[tuple[Any, Any, Any], _Reading] = {}
_READINGS_MAX = 4096


def _reading(raw: dict[str, Any]) -> _Reading:
    key = (raw.get("statusCode"), raw.get("description"), raw.get("status"))
    try:
        # only text is stored (below), and no number, list or object equals a text, so any
        # hit is for the same texts
        return _READINGS[key]
    except (KeyError, TypeError):  # TypeError: a list or object where a text belongs
        pass
    code, description, status = _text(key[0]).lower(), _text(key[1]), _text(key[2])
    reading = (code, description, status, map_event(code, _texts(description, status)))
    if type(key[0]) in _PLAIN and type(key[1]) in _PLAIN and type(key[2]) in _PLAIN:
        if len(_READINGS) >= _READINGS_MAX:
            _READINGS.clear()
        _READINGS[key] = reading
    return reading


class _Place(NamedTuple):
    location: Location | None
    country: str | None
    #: zone of the place itself, for events scanned there
    zone: ZoneInfo | None
    #: zone from country and city alone, for a shipment's origin or destination
    city_zone: ZoneInfo | None


_NOWHERE = _Place(None, None, None, None)


def _read_place(city: Any, region: Any, country: Any, postcode: Any) -> _Place:
    loc = Location(
        city=_text(city) or None,
        region=_text(region) or None,
        country=_country(country),
        postcode=_text(postcode) or None,
    )
    if not any((loc.city, loc.region, loc.country, loc.postcode)):
        return _NOWHERE
    return _Place(
        loc,
        loc.country,
        zone_info(zone_for(loc.country, loc.city, loc.region)),
        zone_info(zone_for(loc.country, loc.city)),
    )


#: raw address fields -> place; the same depots recur across events and shipments
_PLACES: dict[tuple[str | None, ...], _Place] = {}
_PLACES_MAX = 4096
_PLAIN = (str, type(None))


def _place(raw: Any) -> _Place:
    address = raw.get("address") if isinstance(raw, dict) else None
    if not isinstance(address, dict):
        return _NOWHERE
    key = (
        address.get("addressLocality"),
        address.get("addressRegion"),
        address.get("countryCode"),
        address.get("postalCode"),
    )
    try:
        # only text is stored (below): 1, 1.0 and True are equal as keys but read
        # differently, and none of them equals a text, so any hit is for the same texts
        return _PLACES[key]
    except (KeyError, TypeError):  # TypeError: a list or object where a text belongs
        pass
    place = _read_place(*key)
    if all(type(part) in _PLAIN for part in key):
        if len(_PLACES) >= _PLACES_MAX:
            _PLACES.clear()
        _PLACES[key] = place
    return place


def _location(raw: Any) -> Location | None:
    return _place(raw).location


# enum members cost a descriptor call on every read, so the hot paths use these
_UTC_GIVEN, _OFFSET_GIVEN = TimeBasis.UTC_GIVEN, TimeBasis.OFFSET_GIVEN
_NOTHING_YET = (_S.PENDING, _U.OTHER)
_NO_READING: _Reading = ("", "", "", None)
_OTHER = _U.OTHER
_EARLY = frozenset({_S.PENDING, _S.INFO_RECEIVED})
_IN_TRANSIT = _S.IN_TRANSIT


def _instant(
    value: Any, zone: ZoneInfo | None, fallback: ZoneInfo | None
) -> tuple[datetime, TimeBasis, str, int] | None:
    """An event timestamp as sent, read at a place whose zone is `zone` (None: unknown), else in `fallback`."""
    text = value.strip() if type(value) is str else _text(value)  # nearly always text: no call
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        offset = parsed.utcoffset()
        assert offset is not None  # fromisoformat only gives fixed offsets
        basis = _UTC_GIVEN if text.endswith(("Z", "z")) else _OFFSET_GIVEN
        return parsed.astimezone(UTC), basis, shown_time(text, parsed), int(offset.total_seconds() // 60)
    instant, basis, minutes = resolve_in(parsed, zone, fallback)
    return instant, basis, shown_time(text, parsed), minutes


def _texts(description: str, status: str) -> str:
    if description and status:
        return f"{description} | {status}"
    return description or status


def _signed_by(details: dict[str, Any]) -> str | None:
    proof = details.get("proofOfDelivery")
    signed = proof.get("signed") if isinstance(proof, dict) else None
    if not isinstance(signed, dict):
        return None
    given, family, name = _text(signed.get("givenName")), _text(signed.get("familyName")), _text(signed.get("name"))
    if given and family:
        return f"{given} {family}"
    return name or given or family or None


def _when(value: Any, zone: ZoneInfo | None) -> datetime | None:
    """An estimated-delivery bound as sent; one without offset is read in `zone`."""
    text = value.strip() if type(value) is str else _text(value)  # nearly always text: no call
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is UTC:  # the usual "Z": already what astimezone would return
        return parsed
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    return resolve_in(parsed, None, zone)[0]


def _events(raw_events: list[Any], origin_zone: ZoneInfo | None, dest_zone: ZoneInfo | None) -> list[CarrierEvent]:
    # DHL lists events newest first; read them oldest first so "keep previous" works
    events: list[CarrierEvent] = []
    previous = _NOTHING_YET
    half = len(raw_events) / 2
    for index, item in enumerate(reversed(raw_events)):
        raw = _obj(item)
        code, description, status_text, mapped = _reading(raw)
        if mapped is None:
            mapped = (previous[0], _OTHER)
        early = mapped[0] in _EARLY or (mapped[0] == _IN_TRANSIT and index < half)
        place = _place(raw.get("location"))
        when = _instant(raw.get("timestamp"), place.zone, origin_zone if early else dest_zone)
        if when is None:
            continue
        instant, basis, shown, minutes = when
        previous = mapped
        events.append(
            # by position, in field order: keywords to a class call are packed into a dict
            CarrierEvent(
                instant,  # occurred_at
                basis,  # time_basis
                shown,  # local_time
                mapped[0],  # status
                mapped[1],  # sub_status
                code,  # raw_code
                description or status_text,  # description
                place.location,  # location
                CODE,  # provider
                minutes,  # utc_offset_minutes
            )
        )
    if len(events) > 1:
        events.sort(key=_occurred_at)
    return events


def _occurred_at(event: CarrierEvent) -> datetime:
    return event.occurred_at


def parse_shipment(raw: Any) -> TrackResult:
    """One `shipments[]` item, as `load_json_fast` or `load_json_exact` read it.

    Raises `InexactNumber` when a number read may have lost digits to the fast reading.
    """
    shipment = _obj(raw)
    ref = _text(shipment.get("id"))
    if not ref:
        return TrackResult(tracking_number="", found=False, provider=CODE, error="shipment without an id")
    try:
        return _parse_shipment(ref, shipment)
    except (TypeError, ValueError, AttributeError, OverflowError) as err:
        return TrackResult(tracking_number=ref, found=False, provider=CODE, shipment_ref=ref, error=str(err))


def _parse_shipment(ref: str, shipment: dict[str, Any]) -> TrackResult:
    origin = _place(shipment.get("origin"))
    dest = _place(shipment.get("destination"))
    raw_events = shipment.get("events", [])
    if not isinstance(raw_events, list):
        raise ValueError("events is not a list")
    events = _events(raw_events, origin.city_zone, dest.city_zone)
    current = _obj(shipment.get("status"))
    code, _, _, mapped = _reading(current) if current else _NO_READING
    if mapped is None:
        mapped = (events[-1].status, events[-1].sub_status) if events else _NOTHING_YET
    if shipment.get("returnFlag") is True:
        done = mapped[0] in (_S.DELIVERED, _S.RETURNED) and mapped[1] != _U.RETURNING
        # still on its way back: not terminal, so polling continues until it arrives
        mapped = (_S.RETURNED, _U.RETURNED_TO_SENDER) if done else (_S.EXCEPTION, _U.RETURNING)
    details = _obj(shipment.get("details"))
    frame = _obj(shipment.get("estimatedDeliveryTimeFrame"))
    dest_zone = dest.city_zone
    eta = _when(shipment.get("estimatedTimeOfDelivery"), dest_zone) or _when(frame.get("estimatedFrom"), dest_zone)
    # by position, in field order: keywords to a class call are packed into a dict
    return TrackResult(
        ref,  # tracking_number
        True,  # found
        mapped[0],  # status
        mapped[1],  # sub_status
        events,
        eta,  # estimated_delivery
        _when(frame.get("estimatedThrough"), dest_zone),  # estimated_delivery_end
        _signed_by(details),
        origin.country,  # origin_country
        dest.country,  # destination_country
        CODE,  # provider
        code,  # raw_status
        ref,  # shipment_ref
    )


def _read(body: bytes, load: Callable[[bytes], Any]) -> list[Any]:
    try:
        doc = load(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # RecursionError: nested too deep
        raise BadResponse(f"{CODE}: body is not JSON", carrier=CODE, body=body) from err
    if not isinstance(doc, dict) or not isinstance(doc.get("shipments"), list):
        raise BadResponse(f"{CODE}: no shipments list", carrier=CODE, body=body)
    shipments: list[Any] = doc["shipments"]
    return shipments


def parse_body(body: bytes) -> list[TrackResult]:
    try:
        return [parse_shipment(s) for s in _read(body, load_json_fast)]
    except InexactNumber:
        # a number the fast reading may have cut short was read: read it all again, exactly
        return [parse_shipment(s) for s in _read(body, load_json_exact)]


def is_not_found(body: bytes) -> bool:
    """A 404 problem+json body that says the number is unknown."""
    try:
        doc = load_json(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
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
