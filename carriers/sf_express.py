"""SF Express (顺丰) open platform route query: a signed form gateway, China-time routes.

Reference: carrier-apis.md §6. The gateway envelope carries the business payload as a JSON
*string* (`apiResultData`), decoded a second time. Settings: `client_id` is the partnerID,
`client_secret` the checkWord; `extra["check_phone_no"]` is sent as `checkPhoneNo`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import quote_plus

from carriers.base import (
    AuthError,
    BadResponse,
    CarrierAdapter,
    CarrierEvent,
    CarrierUnavailable,
    Location,
    RateLimit,
    RateLimited,
    TrackResult,
    load_json,
)
from carriers.status import Status, SubStatus, unknown_code
from carriers.timezones import resolve_local, split_iso, wall_clock

DEFAULT_BASE_URL = "https://sfapi.sf-express.com"
SERVICE_PATH = "/std/service"
SERVICE_CODE = "EXP_RECE_SEARCH_ROUTES"
#: unverified: the API takes an array and no limit is documented; kept small on purpose
BATCH_LIMIT = 10
#: SF prints every route time in China time
HOME_ZONE = "Asia/Shanghai"
CODE = "sf_express"
OK = "A1000"
AUTH_CODES = frozenset({"A1001", "A1004", "A1006"})  # credential / permission problems
#: gateway codes outside the reference, read as throttling and outages (unverified)
THROTTLED_CODES = frozenset({"A1005"})
UNAVAILABLE_CODES = frozenset({"A1009", "A1099"})

_IT = Status.IN_TRANSIT
#: secondaryStatusCode -> (status, sub-status); preferred when present
SECONDARY: dict[str, tuple[Status, SubStatus]] = {
    "101": (_IT, SubStatus.PICKED_UP),
    "201": (_IT, SubStatus.IN_TRANSIT),
    "204": (_IT, SubStatus.CUSTOMS_PROCESSING),  # 清关中
    "205": (_IT, SubStatus.CUSTOMS_RELEASED),  # 已清关
    "301": (Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY),  # 派送中
    "1301": (_IT, SubStatus.ARRIVED),
    "401": (Status.DELIVERED, SubStatus.SIGNED),
}
#: opCode -> (status, sub-status); 50 is read as pick-up, 80 as delivered (已签收)
OPCODE: dict[str, tuple[Status, SubStatus]] = {
    **dict.fromkeys(("50", "54"), (_IT, SubStatus.PICKED_UP)),
    **dict.fromkeys(("30", "31", "36", "105", "106", "310"), (_IT, SubStatus.IN_TRANSIT)),
    "70": (_IT, SubStatus.ARRIVED),
    "80": (Status.DELIVERED, SubStatus.SIGNED),
}
#: places outside mainland China that SF names in acceptAddress (all UTC+8 today)
_REGION_NAMES: tuple[tuple[str, str], ...] = (
    ("香港", "HK"),
    ("hong kong", "HK"),
    ("澳门", "MO"),
    ("macau", "MO"),
    ("台湾", "TW"),
    ("台北", "TW"),
    ("taiwan", "TW"),
)


class BusinessError(BadResponse):
    """The gateway accepted the call but the route service refused it (errorCode/errorMsg)."""


# --- signing ---------------------------------------------------------------------------


def java_urlencode(text: str) -> str:
    """URL-encode like Java's URLEncoder (UTF-8), which SF's reference code uses."""
    return quote_plus(text, safe="*").replace("~", "%7E")


def msg_digest(msg_data: str, timestamp: str, check_word: str) -> str:
    """base64(md5(urlencode(msgData + timestamp + checkWord)))."""
    encoded = java_urlencode(msg_data + timestamp + check_word).encode("utf-8")
    return base64.b64encode(hashlib.md5(encoded, usedforsecurity=False).digest()).decode("ascii")


def build_form(
    numbers: Sequence[str],
    *,
    partner_id: str,
    check_word: str,
    timestamp_ms: int,
    request_id: str,
    phone: str,
) -> dict[str, str]:
    payload: dict[str, Any] = {
        "language": "0",
        "trackingType": "1",
        "trackingNumber": list(numbers),
        "methodType": "1",
    }
    if phone:
        payload["checkPhoneNo"] = ",".join([phone] * len(numbers))
    msg_data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    timestamp = str(timestamp_ms)
    return {
        "partnerID": partner_id,
        "requestID": request_id,
        "serviceCode": SERVICE_CODE,
        "timestamp": timestamp,
        "msgDigest": msg_digest(msg_data, timestamp, check_word),
        "msgData": msg_data,
    }


# --- pure parsing ----------------------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _loads(text: str | bytes) -> Any:
    try:
        return load_json(text)
    except (ValueError, RecursionError) as err:
        raise BadResponse(f"{CODE}: not JSON", carrier=CODE, body=text) from err


def status_of(secondary: str, op_code: str) -> tuple[Status, SubStatus]:
    if secondary in SECONDARY:
        return SECONDARY[secondary]
    if op_code in OPCODE:
        return OPCODE[op_code]
    return unknown_code(CODE, f"{secondary}/{op_code}" if secondary else op_code or "?", Status.IN_TRANSIT)


def _route(raw: Any) -> CarrierEvent:
    if not isinstance(raw, dict):
        raise ValueError("route is not an object")
    address = _text(raw.get("acceptAddress"))
    lowered = address.lower()
    country = next((cc for name, cc in _REGION_NAMES if name in lowered), None)
    wall, offset = split_iso(_text(raw.get("acceptTime")))
    if offset is not None:
        raise ValueError("acceptTime unexpectedly carries an offset")
    at, basis, minutes = resolve_local(wall, country=country, city=address or None, fallback_zone=HOME_ZONE)
    op_code, secondary = _text(raw.get("opCode")), _text(raw.get("secondaryStatusCode"))
    status, sub = status_of(secondary, op_code)
    return CarrierEvent(
        occurred_at=at,
        time_basis=basis,
        local_time=wall_clock(wall),
        status=status,
        sub_status=sub,
        raw_code=f"{secondary}/{op_code}" if secondary else op_code,
        description=_text(raw.get("remark")) or _text(raw.get("secondaryStatusName")),
        location=Location(city=address, country=country) if address else None,
        provider=CODE,
        utc_offset_minutes=minutes,
    )


def _result(raw: Any) -> TrackResult:
    resp = _obj(raw)
    number = _text(resp.get("mailNo"))
    try:
        if not isinstance(raw, dict):
            raise TypeError("routeResp is not an object")
        routes = resp.get("routes") or []
        if not isinstance(routes, list):
            raise TypeError("routes is not a list")
        # SF lists routes oldest first; a stable sort keeps that order for equal instants
        events = sorted((_route(r) for r in routes), key=lambda e: e.occurred_at)
    except Exception as err:  # one unreadable waybill must not sink the batch
        return TrackResult(number, found=False, provider=CODE, error=f"malformed item: {err}")
    if not events:
        return TrackResult(number, found=False, sub_status=SubStatus.NOT_FOUND, provider=CODE)
    last = events[-1]
    return TrackResult(
        tracking_number=number,
        found=True,
        status=last.status,
        sub_status=last.sub_status,
        events=events,
        provider=CODE,
        raw_status=last.raw_code,
    )


def business_payload(body: bytes) -> dict[str, Any]:
    """The decoded `apiResultData` of a gateway envelope (or a bare business payload)."""
    doc = _loads(body)
    if not isinstance(doc, dict):
        raise BadResponse(f"{CODE}: body is not an object", carrier=CODE, body=body)
    if "apiResultCode" in doc:
        code = _text(doc.get("apiResultCode"))
        if code != OK:
            message = f"{CODE}: gateway {code}: {_text(doc.get('apiErrorMsg'))}"
            raise BadResponse(message, carrier=CODE, body=body)
        data = doc.get("apiResultData")
        doc = _loads(data) if isinstance(data, str) else data
        if not isinstance(doc, dict):
            raise BadResponse(f"{CODE}: apiResultData is not an object", carrier=CODE, body=body)
    return doc


def parse_response(body: bytes) -> list[TrackResult]:
    """A route-query body -> one result per waybill. Raises only `BadResponse`."""
    try:
        doc = business_payload(body)
        if doc.get("success") is False or _text(doc.get("errorCode")) not in ("", "S0000"):
            code, message = _text(doc.get("errorCode")), _text(doc.get("errorMsg"))
            raise BusinessError(f"{CODE}: {code} {message}".strip(), carrier=CODE, body=body)
        resps = _obj(doc.get("msgData")).get("routeResps")
        if not isinstance(resps, list):
            raise BadResponse(f"{CODE}: no routeResps", carrier=CODE, body=body)
        return [_result(r) for r in resps]
    except BadResponse:
        raise
    except Exception as err:
        raise BadResponse(f"{CODE}: unreadable body: {err}", carrier=CODE, body=body) from err


def gateway_error(body: bytes) -> str | None:
    """The gateway's apiResultCode when it is not A1000 (None when readable or not an envelope)."""
    try:
        doc = load_json(body)
    except (ValueError, RecursionError):
        return None
    code = _text(_obj(doc).get("apiResultCode"))
    return code if code and code != OK else None


# --- adapter ---------------------------------------------------------------------------


class SfExpressAdapter(CarrierAdapter):
    """SF Express route query through the signed `/std/service` gateway."""

    code: ClassVar[str] = CODE
    name: ClassVar[str] = "SF Express"
    batch_limit: ClassVar[int] = BATCH_LIMIT
    rate_limit: ClassVar[RateLimit] = RateLimit(per_second=2.0, burst=2)  # not documented
    default_retry_after: ClassVar[float] = 60.0
    public_url_template: ClassVar[str] = "https://www.sf-express.com/chn/en/waybill/waybill-detail/{number}"

    def parse(self, body: bytes) -> list[TrackResult]:
        return parse_response(body)

    async def _query(self, numbers: Sequence[str]) -> list[TrackResult]:
        form = build_form(
            numbers,
            partner_id=self.settings.client_id,
            check_word=self.settings.client_secret,
            timestamp_ms=int(self.clock().timestamp() * 1000),
            request_id=str(uuid.uuid4()),
            phone=self.settings.extra.get("check_phone_no", ""),
        )
        resp = await self.request("POST", SERVICE_PATH, data=form)
        code = gateway_error(resp.body)
        if code in AUTH_CODES:
            raise AuthError(f"{CODE}: gateway {code}", carrier=CODE)
        if code in THROTTLED_CODES:
            raise RateLimited(f"{CODE}: gateway {code}", carrier=CODE, retry_after=self.default_retry_after)
        if code in UNAVAILABLE_CODES:
            raise CarrierUnavailable(f"{CODE}: gateway {code}", carrier=CODE)
        try:
            results = self.parse(resp.body)
        except BusinessError as err:
            return [TrackResult(n, found=False, provider=CODE, error=str(err)) for n in numbers]
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
