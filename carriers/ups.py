"""UPS Track API v1 (OAuth2 client credentials): one number a call.

Reference: carrier-apis.md §3. The token comes from `POST /security/v1/oauth/token`
(HTTP Basic, `expires_in` as a string), is cached and refreshed once on 401. Each
`GET /api/track/v1/details/{number}` needs a fresh `transId` and a `transactionSrc`.
Activities carry local `date`/`time` plus `gmtDate`/`gmtTime`/`gmtOffset`; `gmtTime` is
"HH:MM:SS" in real data but unpadded digits ("74700") in the spec example.
Not found is a 200 with warning TW0001 (or a 404 with the same code in `response.errors`).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from carriers.base import (
    BadResponse,
    CarrierAdapter,
    CarrierEvent,
    Location,
    RateLimit,
    TimeBasis,
    TokenCache,
    TrackResult,
    load_json,
    with_token_refresh,
)
from carriers.status import Status, SubStatus, unknown_code
from carriers.timezones import parse_offset, resolve_local, wall_clock, zone_for

DEFAULT_BASE_URL = "https://onlinetools.ups.com"
AUTH_PATH = "/security/v1/oauth/token"
TRACK_PATH = "/api/track/v1/details/"
CODE = "ups"
NOT_FOUND = "TW0001"
INVALID_NUMBER = "TV1002"

_S, _U = Status, SubStatus


def _codes(spec: str, value: tuple[Status, SubStatus]) -> dict[str, tuple[Status, SubStatus]]:
    """ "003 080 160-162" -> {"003": value, "080": value, "160": value, ...}."""
    out: dict[str, tuple[Status, SubStatus]] = {}
    for part in spec.split():
        lo, _, hi = part.partition("-")
        for n in range(int(lo), int(hi or lo) + 1):
            out[f"{n:03d}"] = value
    return out


#: status.statusCode (3-digit status description code) -> (status, sub-status), reference §3
STATUS: dict[str, tuple[Status, SubStatus]] = {
    **_codes("003 080 157", (_S.INFO_RECEIVED, _U.LABEL_CREATED)),
    **_codes("007 043", (_S.EXCEPTION, _U.OTHER)),  # voided: the shipment was cancelled
    **_codes("038 160 167-169", (_S.IN_TRANSIT, _U.PICKED_UP)),
    **_codes("005 010 025 039 047 087 158 159 164 165", (_S.IN_TRANSIT, _U.IN_TRANSIT)),
    **_codes("012 084 092", (_S.IN_TRANSIT, _U.CUSTOMS_PROCESSING)),
    **_codes("014 134", (_S.IN_TRANSIT, _U.CUSTOMS_RELEASED)),
    **_codes("058", (_S.EXCEPTION, _U.CUSTOMS_INFO_REQUIRED)),
    **_codes("123-126", (_S.EXCEPTION, _U.CUSTOMS_HELD)),
    **_codes("006 021 037 089 091 146 162 072 078", (_S.OUT_FOR_DELIVERY, _U.OUT_FOR_DELIVERY)),
    **_codes("022-024 060-062 066 145", (_S.FAILED_ATTEMPT, _U.OTHER)),
    **_codes("017 040 100 106 108 144 161", (_S.AVAILABLE_FOR_PICKUP, _U.PICKUP_POINT)),
    **_codes("011 026 143", (_S.DELIVERED, _U.OTHER)),
    **_codes("033-035 067 081 118", (_S.EXCEPTION, _U.RETURNING)),
    **_codes("036 119", (_S.RETURNED, _U.RETURNED_TO_SENDER)),
    **_codes("013 029 030 046 048-053 059 064 068 069 086 090 147 149", (_S.EXCEPTION, _U.OTHER)),
}

#: status.type (package activity type) -> (status, sub-status), used when no statusCode maps
TYPES: dict[str, tuple[Status, SubStatus]] = {
    "M": (_S.INFO_RECEIVED, _U.LABEL_CREATED),
    "MV": (_S.EXCEPTION, _U.OTHER),
    "P": (_S.IN_TRANSIT, _U.PICKED_UP),
    "I": (_S.IN_TRANSIT, _U.IN_TRANSIT),
    "O": (_S.OUT_FOR_DELIVERY, _U.OUT_FOR_DELIVERY),
    "X": (_S.EXCEPTION, _U.OTHER),
    "D": (_S.DELIVERED, _U.OTHER),
    "RS": (_S.RETURNED, _U.RETURNED_TO_SENDER),
    "DO": (_S.IN_TRANSIT, _U.IN_TRANSIT),
    "DD": (_S.IN_TRANSIT, _U.IN_TRANSIT),
    "W": (_S.IN_TRANSIT, _U.IN_TRANSIT),
    "U": (_S.IN_TRANSIT, _U.OTHER),
    "NA": (_S.PENDING, _U.OTHER),
}


# --- defensive access -------------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _arr(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _country(value: Any) -> str | None:
    text = _text(value).upper()
    return text if len(text) == 2 and text.isalpha() else None


# --- mapping ----------------------------------------------------------------------------


def map_status(raw: Any) -> tuple[Status, SubStatus, str]:
    status = _obj(raw)
    code, kind = _text(status.get("statusCode")), _text(status.get("type")).upper()
    if code in STATUS:
        return *STATUS[code], code
    by_type = TYPES.get(kind)
    if code:
        parent = by_type[0] if by_type else _S.IN_TRANSIT
        return *unknown_code(CODE, code, parent), code
    if by_type:
        return *by_type, kind
    return *unknown_code(CODE, kind or "<none>", _S.IN_TRANSIT), kind


def _digits_time(text: str) -> str | None:
    """ "07:47:00", "074700" or "74700" -> "074700"."""
    digits = text.replace(":", "")
    if not digits.isdigit() or len(digits) > 6:
        return None
    return digits.zfill(6)


def _wall(date: str, time: str) -> datetime | None:
    hhmmss = _digits_time(time or "000000")
    if not (len(date) == 8 and date.isdigit()) or hhmmss is None:
        return None
    try:
        return datetime.fromisoformat(f"{date[:4]}-{date[4:6]}-{date[6:]}T{hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}")
    except ValueError:
        return None


def _location(raw: Any) -> Location | None:
    address = _obj(_obj(raw).get("address"))
    loc = Location(
        city=_text(address.get("city")) or None,
        region=_text(address.get("stateProvince")) or None,
        country=_country(address.get("countryCode")) or _country(address.get("country")),
        postcode=_text(address.get("postalCode")) or None,
    )
    return loc if any((loc.city, loc.region, loc.country, loc.postcode)) else None


def _activity_time(
    activity: dict[str, Any], location: Location | None, fallback_zone: str | None
) -> tuple[datetime, TimeBasis, str, int | None] | None:
    local = _wall(_text(activity.get("date")), _text(activity.get("time")))
    gmt = _wall(_text(activity.get("gmtDate")), _text(activity.get("gmtTime")))
    offset: int | None = None
    try:
        offset = parse_offset(_text(activity.get("gmtOffset"))) if activity.get("gmtOffset") else None
    except ValueError:
        offset = None
    if gmt is not None:
        instant = gmt.replace(tzinfo=UTC)
        if local is None:
            shown = wall_clock(instant + timedelta(minutes=offset or 0))
        else:
            shown = wall_clock(local)
            offset = int((local.replace(tzinfo=UTC) - instant).total_seconds() // 60)
        return instant, TimeBasis.UTC_GIVEN, shown, offset
    if local is None:
        return None
    if offset is not None:
        instant = (local - timedelta(minutes=offset)).replace(tzinfo=UTC)
        return instant, TimeBasis.OFFSET_GIVEN, wall_clock(local), offset
    loc = location or Location()
    instant, basis, minutes = resolve_local(
        local, country=loc.country, city=loc.city, region=loc.region, fallback_zone=fallback_zone
    )
    return instant, basis, wall_clock(local), minutes


def _addresses(package: dict[str, Any]) -> dict[str, Location]:
    out: dict[str, Location] = {}
    for entry in _arr(package.get("packageAddress")):
        kind = _text(_obj(entry).get("type")).upper()
        loc = _location(entry)
        if kind in ("ORIGIN", "DESTINATION") and loc is not None:
            out[kind] = loc
    return out


def _zone_of(loc: Location | None) -> str | None:
    return zone_for(loc.country, loc.city, loc.region) if loc else None


def _eta(package: dict[str, Any], dest_zone: str | None) -> tuple[datetime | None, datetime | None]:
    day = ""
    for entry in _arr(package.get("deliveryDate")):
        if _text(_obj(entry).get("type")).upper() in ("SDD", "RDD"):
            day = _text(_obj(entry).get("date"))
            break
    window = _obj(package.get("deliveryTime"))
    start = _wall(day, _text(window.get("startTime")) or "000000")
    if start is None:
        return None, None
    end = _wall(day, _text(window.get("endTime"))) if window.get("endTime") else None
    first = resolve_local(start, country=None, fallback_zone=dest_zone)[0]
    last = resolve_local(end, country=None, fallback_zone=dest_zone)[0] if end else None
    return first, last


def _parse_package(inquiry: str, package: dict[str, Any]) -> TrackResult:
    places = _addresses(package)
    origin, destination = places.get("ORIGIN"), places.get("DESTINATION")
    origin_zone, dest_zone = _zone_of(origin), _zone_of(destination)
    raw_activities = package.get("activity", [])
    if not isinstance(raw_activities, list):
        raise ValueError("activity is not a list")
    events: list[CarrierEvent] = []
    ordered = [_obj(a) for a in reversed(raw_activities)]  # UPS lists newest first
    for index, activity in enumerate(ordered):
        status, sub, raw_code = map_status(activity.get("status"))
        location = _location(activity.get("location"))
        early = status == _S.INFO_RECEIVED or index < len(ordered) / 2
        when = _activity_time(activity, location, origin_zone if early else dest_zone)
        if when is None:
            continue
        instant, basis, shown, minutes = when
        text = _obj(activity.get("status"))
        events.append(
            CarrierEvent(
                occurred_at=instant,
                time_basis=basis,
                local_time=shown,
                status=status,
                sub_status=sub,
                raw_code=raw_code,
                description=_text(text.get("description")) or _text(text.get("simplifiedTextDescription")),
                location=location,
                provider=CODE,
                utc_offset_minutes=minutes,
            )
        )
    events.sort(key=lambda e: e.occurred_at)
    if package.get("currentStatus"):
        status, sub, raw_status = map_status(package.get("currentStatus"))
    elif events:
        status, sub, raw_status = events[-1].status, events[-1].sub_status, events[-1].raw_code
    else:
        status, sub, raw_status = _S.PENDING, _U.OTHER, ""
    signed_by = _text(_obj(package.get("deliveryInformation")).get("receivedBy")) or None
    if status == _S.DELIVERED and sub == _U.OTHER and signed_by:
        sub = _U.SIGNED
    eta, eta_end = _eta(package, dest_zone)
    number = _text(package.get("trackingNumber"))
    return TrackResult(
        tracking_number=inquiry or number,
        found=True,
        status=status,
        sub_status=sub,
        events=events,
        estimated_delivery=eta,
        estimated_delivery_end=eta_end,
        signed_by=signed_by,
        origin_country=origin.country if origin else None,
        destination_country=destination.country if destination else None,
        provider=CODE,
        raw_status=raw_status,
        shipment_ref=number or None,
    )


def _warning_codes(shipment: dict[str, Any]) -> set[str]:
    return {_text(_obj(w).get("code")) for w in _arr(shipment.get("warnings"))}


def _parse_shipment(raw: Any) -> list[TrackResult]:
    shipment = _obj(raw)
    inquiry = _text(shipment.get("inquiryNumber"))
    packages = shipment.get("package")
    if not packages:
        if NOT_FOUND in _warning_codes(shipment):
            return [TrackResult(tracking_number=inquiry, found=False, provider=CODE, raw_status=NOT_FOUND)]
        return [TrackResult(tracking_number=inquiry, found=False, provider=CODE, error="shipment without packages")]
    if not isinstance(packages, list):
        return [TrackResult(tracking_number=inquiry, found=False, provider=CODE, error="package is not a list")]
    out: list[TrackResult] = []
    for package in packages:
        if not isinstance(package, dict):
            out.append(
                TrackResult(tracking_number=inquiry, found=False, provider=CODE, error="package is not an object")
            )
            continue
        try:
            out.append(_parse_package(inquiry, package))
        except (TypeError, ValueError, AttributeError, OverflowError) as err:
            out.append(TrackResult(tracking_number=inquiry, found=False, provider=CODE, error=str(err)))
    return out


def parse_body(body: bytes) -> list[TrackResult]:
    """A details body (200, or a 400/404 error envelope) -> results.

    An error envelope about the number itself (TW0001, TV1002) yields one result with an
    empty tracking number; `track` fills it in.
    """
    try:
        doc = load_json(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise BadResponse(f"{CODE}: body is not JSON", carrier=CODE, body=body) from err
    if not isinstance(doc, dict):
        raise BadResponse(f"{CODE}: body is not an object", carrier=CODE, body=body)
    errors = _arr(_obj(doc.get("response")).get("errors"))
    if errors:
        first = _obj(errors[0])
        code, message = _text(first.get("code")), _text(first.get("message"))
        if code == NOT_FOUND:
            return [TrackResult(tracking_number="", found=False, provider=CODE, raw_status=code)]
        if code == INVALID_NUMBER:
            return [
                TrackResult(
                    tracking_number="",
                    found=False,
                    provider=CODE,
                    raw_status=code,
                    error=f"{code}: {message}",
                )
            ]
        raise BadResponse(f"{CODE}: error {code} {message}", carrier=CODE, body=body)
    shipments = _obj(doc.get("trackResponse")).get("shipment")
    if not isinstance(shipments, list):
        raise BadResponse(f"{CODE}: no trackResponse.shipment list", carrier=CODE, body=body)
    return [result for shipment in shipments for result in _parse_shipment(shipment)]


class UpsAdapter(CarrierAdapter):
    code: ClassVar[str] = CODE
    name: ClassVar[str] = "UPS"
    batch_limit: ClassVar[int] = 1
    # UPS publishes no limit; stay gentle, a token per call is known to trigger 429s
    rate_limit: ClassVar[RateLimit] = RateLimit(per_second=2.0, burst=2)
    default_retry_after: ClassVar[float] = 30.0
    public_url_template: ClassVar[str] = "https://www.ups.com/track?tracknum={number}"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens = TokenCache(self._fetch_token, self.clock)

    def parse(self, body: bytes) -> list[TrackResult]:
        return parse_body(body)

    async def _fetch_token(self) -> tuple[str, float]:
        pair = f"{self.settings.client_id}:{self.settings.client_secret}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if self.settings.account:
            headers["x-merchant-id"] = self.settings.account
        resp = await self.request("POST", AUTH_PATH, headers=headers, data={"grant_type": "client_credentials"})
        try:
            doc = load_json(resp.body)
            token = doc["access_token"]
            lifetime = float(doc["expires_in"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as err:
            raise BadResponse(f"{CODE}: unreadable token reply", carrier=CODE, body=resp.body) from err
        if not isinstance(token, str) or not token:
            raise BadResponse(f"{CODE}: token reply without access_token", carrier=CODE, body=resp.body)
        return token, lifetime

    async def _details(self, number: str, token: str) -> bytes:
        resp = await self.request(
            "GET",
            TRACK_PATH + quote(number, safe=""),
            headers={
                "Authorization": f"Bearer {token}",
                "transId": uuid.uuid4().hex,
                "transactionSrc": self.settings.extra.get("transaction_src", "cbec-tracker"),
                "Accept": "application/json",
            },
            params={
                "locale": "en_US",
                "returnSignature": "false",
                "returnMilestones": "false",
                "returnPOD": "false",
            },
            ok=(200, 400, 404),
        )
        return resp.body

    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        if len(numbers) > self.batch_limit:
            raise ValueError(f"{CODE}: one number per call, got {len(numbers)}")
        out: list[TrackResult] = []
        for number in numbers:

            async def call(token: str, number: str = number) -> bytes:
                return await self._details(number, token)

            body: bytes = await with_token_refresh(self.tokens, call)
            results = parse_body(body)
            for result in results:
                result.tracking_number = number
            out.extend(results or [TrackResult(tracking_number=number, found=False, provider=CODE)])
        return out
