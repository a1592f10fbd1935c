"""FedEx Track API v1 (OAuth2): up to 30 numbers a call, several shipments per number.

Reference: carrier-apis.md §4. Scan dates usually carry their own offset; the occasional
naive one (a pick-up "date" at midnight) is read in the zone of its scan location.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import aiohttp

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
    cached_by_values,
    load_json_fast,
    utc_now,
    with_token_refresh,
)
from carriers.status import Status, SubStatus, unknown_code
from carriers.timezones import from_offset, resolve_local, shown_time, split_iso, wall_clock

DEFAULT_BASE_URL = "https://apis.fedex.com"
AUTH_PATH = "/oauth/token"
TRACK_PATH = "/track/v1/trackingnumbers"
BATCH_LIMIT = 30  # "Track up to 30 FedEx packages" per request
NOT_FOUND = "TRACKING.TRACKINGNUMBER.NOTFOUND"
#: FedEx's home zone (Memphis); used only when a naive date has no usable scan location
FALLBACK_ZONE = "America/Chicago"
CODE = "fedex"
_MINUTE = timedelta(minutes=1)

_IT = Status.IN_TRANSIT
#: eventType / derivedStatusCode / latestStatusDetail.code -> (status, sub-status)
STATUS: dict[str, tuple[Status, SubStatus]] = {
    **dict.fromkeys(("OC", "IN", "EP", "MD", "OX"), (Status.INFO_RECEIVED, SubStatus.LABEL_CREATED)),
    **dict.fromkeys(("PU", "PX"), (_IT, SubStatus.PICKED_UP)),
    **dict.fromkeys(("OF", "AR", "AF", "AA", "AC", "AX", "FD", "PL", "SF"), (_IT, SubStatus.ARRIVED)),
    **dict.fromkeys(("DP", "LO"), (_IT, SubStatus.DEPARTED)),
    **dict.fromkeys(("AP", "EA", "EO", "IT", "IX", "PF", "PM", "TR", "AO", "AE"), (_IT, SubStatus.IN_TRANSIT)),
    # delays keep the parcel moving; the sub-status carries the delay flag
    **dict.fromkeys(("DY", "DD", "RL"), (_IT, SubStatus.DELAYED)),
    **dict.fromkeys(("OD", "ED", "AD"), (Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY)),
    "DE": (Status.FAILED_ATTEMPT, SubStatus.OTHER),
    **dict.fromkeys(("HL", "HP"), (Status.AVAILABLE_FOR_PICKUP, SubStatus.PICKUP_POINT)),
    "DL": (Status.DELIVERED, SubStatus.OTHER),
    **dict.fromkeys(("RS", "RT"), (Status.RETURNED, SubStatus.RETURNED_TO_SENDER)),
    "CD": (Status.EXCEPTION, SubStatus.CUSTOMS_HELD),  # clearance delay
    # customs scans named in FedEx's TrackService guide (CP in progress, CC cleared, BR broker)
    **dict.fromkeys(("CP", "CU", "BR"), (_IT, SubStatus.CUSTOMS_PROCESSING)),
    "CC": (_IT, SubStatus.CUSTOMS_RELEASED),
    "CH": (_IT, SubStatus.IN_TRANSIT),  # location changed
    **dict.fromkeys(("SE", "PY", "HA", "CA", "RD"), (Status.EXCEPTION, SubStatus.OTHER)),
}


# --- pure parsing ----------------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _arr(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _location(raw: Any) -> Location | None:
    d = _obj(raw)
    return _place(d.get("city"), d.get("stateOrProvinceCode"), d.get("countryCode"), d.get("postalCode"))


def _read_place(city: Any, region: Any, country: Any, postcode: Any) -> Location | None:
    loc = Location(
        city=_text(city) or None,
        region=_text(region) or None,
        country=_text(country).upper() or None,
        postcode=_text(postcode) or None,
    )
    return loc if any((loc.city, loc.region, loc.country, loc.postcode)) else None


# scans come from a few thousand depots, named the same way on every poll
_place = cached_by_values(_read_place)


def _instant(text: str, place: Location | None) -> tuple[datetime, TimeBasis, str, int]:
    """A FedEx date -> (UTC instant, basis, local wall-clock, offset minutes)."""
    parsed = datetime.fromisoformat(text)
    given = parsed.utcoffset()
    if given is not None and not given.seconds % 60 and not given.microseconds:
        # the usual form ("2026-01-05T08:30:00+08:00"): one conversion, same result as below
        return parsed.astimezone(UTC), TimeBasis.OFFSET_GIVEN, shown_time(text, parsed), given // _MINUTE
    wall, offset = split_iso(text)
    if offset is not None:
        return from_offset(wall, offset), TimeBasis.OFFSET_GIVEN, wall_clock(wall), offset
    at, basis, minutes = resolve_local(
        wall,
        country=place.country if place else None,
        city=place.city if place else None,
        region=place.region if place else None,
        fallback_zone=FALLBACK_ZONE,
    )
    return at, basis, wall_clock(wall), minutes


def _maybe_instant(text: str, place: Location | None) -> datetime | None:
    if not text:
        return None
    try:
        return _instant(text, place)[0]
    except ValueError:
        return None


def status_of(*codes: str) -> tuple[Status, SubStatus]:
    """The first code we know wins; eventType goes first because OD carries derivedStatusCode IT."""
    for code in codes:
        if code in STATUS:
            return STATUS[code]
    raw = next((c for c in codes if c), "?")
    return unknown_code(CODE, raw, Status.IN_TRANSIT)


def _event(raw: Any) -> CarrierEvent:
    if not isinstance(raw, dict):
        raise ValueError("scan event is not an object")
    place = _location(raw.get("scanLocation"))
    at, basis, local, offset = _instant(_text(raw.get("date")), place)
    event_type = _text(raw.get("eventType"))
    status, sub = status_of(event_type, _text(raw.get("derivedStatusCode")))
    description = _text(raw.get("eventDescription"))
    exception = _text(raw.get("exceptionDescription"))
    if exception:
        description = f"{description} ({exception})" if description else exception
    return CarrierEvent(
        occurred_at=at,
        time_basis=basis,
        local_time=local,
        status=status,
        sub_status=sub,
        raw_code=event_type or _text(raw.get("derivedStatusCode")),
        description=description,
        location=place,
        provider=CODE,
        utc_offset_minutes=offset,
    )


def _address(item: dict[str, Any], info_key: str, location_key: str) -> Location | None:
    address = _obj(_obj(item.get(info_key)).get("address"))
    if not address:
        address = _obj(_obj(_obj(item.get(location_key)).get("locationContactAndAddress")).get("address"))
    return _location(address)


def _eta(item: dict[str, Any], place: Location | None) -> tuple[datetime | None, datetime | None]:
    window = _obj(_obj(item.get("estimatedDeliveryTimeWindow")).get("window"))
    begins, ends = _text(window.get("begins")), _text(window.get("ends"))
    if not begins and not ends:
        ends = _text(_obj(_obj(item.get("standardTransitTimeWindow")).get("window")).get("ends"))
    if not begins and not ends:
        for entry in _arr(item.get("dateAndTimes")):
            if _text(_obj(entry).get("type")) == "ESTIMATED_DELIVERY":
                begins = _text(_obj(entry).get("dateTime"))
    start, end = _maybe_instant(begins, place), _maybe_instant(ends, place)
    return (start, end) if start is not None else (end, None)


def _not_found(number: str, raw_status: str = "") -> TrackResult:
    return TrackResult(number, found=False, sub_status=SubStatus.NOT_FOUND, provider=CODE, raw_status=raw_status)


def _result(number: str, item: dict[str, Any]) -> TrackResult:
    info = _obj(item.get("trackingNumberInfo"))
    ref = _text(info.get("trackingNumberUniqueId")) or None
    error = _obj(item.get("error"))
    latest = _obj(item.get("latestStatusDetail"))
    scans = _arr(item.get("scanEvents"))
    if error and not scans and not latest:
        code = _text(error.get("code"))
        if code == NOT_FOUND:
            return TrackResult(number, found=False, sub_status=SubStatus.NOT_FOUND, provider=CODE, raw_status=code)
        message = _text(error.get("message"))
        return TrackResult(number, found=False, provider=CODE, raw_status=code, error=f"{code}: {message}")
    # The documentation example fills `error` next to real data; data present means readable.
    # FedEx lists scans newest first; reversing keeps the carrier's order for equal instants.
    events = sorted((_event(e) for e in reversed(scans)), key=lambda e: e.occurred_at)
    raw = _text(latest.get("code")) or _text(latest.get("derivedCode"))
    if raw:
        status, sub = status_of(raw, _text(latest.get("derivedCode")))
    elif events:
        status, sub, raw = events[-1].status, events[-1].sub_status, events[-1].raw_code
    else:
        status, sub = Status.PENDING, SubStatus.OTHER
    delay = _text(_obj(latest.get("delayDetail")).get("status")) == "DELAYED"
    if status is Status.IN_TRANSIT and (delay or _text(latest.get("derivedCode")) == "RL"):
        sub = SubStatus.DELAYED
    details = _obj(item.get("deliveryDetails"))
    signed_by = _text(details.get("signedByName")) or _text(details.get("receivedByName")) or None
    if status is Status.DELIVERED and signed_by:
        sub = SubStatus.SIGNED
    origin = _address(item, "shipperInformation", "originLocation")
    destination = _address(item, "recipientInformation", "destinationLocation")
    eta, eta_end = _eta(item, destination)
    return TrackResult(
        tracking_number=number,
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
        raw_status=raw,
        shipment_ref=ref,
    )


def _load(body: bytes) -> Any:
    # without `load_json`'s scan for long digit runs: the parser reads no number at all
    # (`_text` takes only strings), so an integer orjson cannot hold changes nothing
    try:
        return load_json_fast(body)
    except (ValueError, RecursionError) as err:
        raise BadResponse(f"{CODE}: body is not JSON", carrier=CODE, body=body) from err


def parse_response(body: bytes) -> list[TrackResult]:
    """A Track API body -> one result per (number, shipment). Raises only `BadResponse`."""
    return parse_document(_load(body), body)


def parse_document(doc: Any, body: bytes = b"") -> list[TrackResult]:
    """`parse_response` of a body already read (`body` goes into a `BadResponse`)."""
    if not isinstance(doc, dict):
        raise BadResponse(f"{CODE}: body is not an object", carrier=CODE, body=body)
    complete = _obj(doc.get("output")).get("completeTrackResults")
    if not isinstance(complete, list):
        codes = ", ".join(_text(_obj(e).get("code")) for e in _arr(doc.get("errors")))
        raise BadResponse(f"{CODE}: no completeTrackResults {codes}".strip(), carrier=CODE, body=body)
    results: list[TrackResult] = []
    for entry in complete:
        entry_d = _obj(entry)
        items = _arr(entry_d.get("trackResults"))
        number = _text(entry_d.get("trackingNumber"))
        if not number and items:
            number = _text(_obj(_obj(items[0]).get("trackingNumberInfo")).get("trackingNumber"))
        if not items:
            results.append(_not_found(number))
        for item in items:
            try:
                if not isinstance(item, dict):
                    raise TypeError("trackResult is not an object")
                results.append(_result(number, item))
            except Exception as err:  # one unreadable shipment must not sink the batch
                results.append(TrackResult(number, found=False, provider=CODE, error=f"malformed item: {err}"))
    return results


def build_track_body(numbers: Sequence[str]) -> dict[str, Any]:
    return {
        "includeDetailedScans": True,
        "trackingInfo": [{"trackingNumberInfo": {"trackingNumber": n}} for n in numbers],
    }


# --- adapter ---------------------------------------------------------------------------


class FedexAdapter(CarrierAdapter):
    """FedEx Track API v1 with a cached client-credentials token."""

    code: ClassVar[str] = CODE
    name: ClassVar[str] = "FedEx"
    batch_limit: ClassVar[int] = BATCH_LIMIT
    # 1400 calls / 10 s per project, but the Track quota is 100k calls/day (~1.2/s)
    rate_limit: ClassVar[RateLimit] = RateLimit(per_second=1.0, burst=10)
    default_retry_after: ClassVar[float] = 10.0  # the per-project window is 10 seconds
    public_url_template: ClassVar[str] = "https://www.fedex.com/fedextrack/?trknbr={number}"

    def __init__(self, *, session: aiohttp.ClientSession, settings: CarrierSettings, clock: Clock = utc_now) -> None:
        super().__init__(session=session, settings=settings, clock=clock)
        self.tokens = TokenCache(self._fetch_token, clock)

    def parse(self, body: bytes) -> list[TrackResult]:
        return parse_response(body)

    async def _fetch_token(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.settings.client_id,
            "client_secret": self.settings.client_secret,
        }
        resp = await self.request("POST", AUTH_PATH, data=form)
        doc = _obj(_load(resp.body))
        token, lifetime = doc.get("access_token"), doc.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(lifetime, int | float | str):
            raise BadResponse(f"{CODE}: token response without access_token", carrier=CODE, body=resp.body)
        try:
            return token, float(lifetime)
        except ValueError as err:
            raise BadResponse(f"{CODE}: bad expires_in", carrier=CODE, body=resp.body) from err

    async def _post(self, token: str, numbers: Sequence[str]) -> bytes:
        headers = {"Authorization": f"Bearer {token}", "X-locale": "en_US"}
        resp = await self.request("POST", TRACK_PATH, headers=headers, json=build_track_body(numbers))
        return resp.body

    async def _track_chunk(self, numbers: Sequence[str]) -> list[TrackResult]:
        async def call(token: str) -> bytes:
            return await self._post(token, numbers)

        body: bytes = await with_token_refresh(self.tokens, call)
        results = self.parse(body)
        seen = {r.tracking_number for r in results}
        results.extend(_not_found(n) for n in numbers if n not in seen)
        return results

    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        results: list[TrackResult] = []
        for start in range(0, len(numbers), BATCH_LIMIT):
            results.extend(await self._track_chunk(numbers[start : start + BATCH_LIMIT]))
        return results
