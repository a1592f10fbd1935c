"""Simulated UPS: OAuth2 token (HTTP Basic, string `expires_in`) and Track API v1 details.

Activities carry local `date`/`time` plus `gmtDate`/`gmtTime`/`gmtOffset`; `gmtTime`
alternates between "HH:MM:SS" and the spec example's unpadded digits ("74700"), and odd
offsets drop their leading zero ("-5:00"). Request counting and fault injection belong to
the app's middleware; lookups are counted here.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from carriers.simulator.journey import Journey, Step, zone
from carriers.simulator.journeys import journey_for
from carriers.simulator.responses import json_response
from carriers.simulator.state import SimState
from carriers.status import Status, SubStatus
from carriers.timezones import zone_for
from carriers.ups import INVALID_NUMBER, NOT_FOUND, STATUS

CODE = "ups"

JourneyLookup = Callable[[str, str, SimState], Journey | None]

_BY_PAIR: dict[tuple[Status, SubStatus], str] = {}
for _code, _pair in sorted(STATUS.items()):
    _BY_PAIR.setdefault(_pair, _code)
_BY_STATUS: dict[Status, str] = {
    Status.PENDING: "003",
    Status.INFO_RECEIVED: "003",
    Status.IN_TRANSIT: "005",
    Status.OUT_FOR_DELIVERY: "006",
    Status.AVAILABLE_FOR_PICKUP: "017",
    Status.FAILED_ATTEMPT: "022",
    Status.DELIVERED: "011",
    Status.EXCEPTION: "013",
    Status.RETURNED: "036",
    Status.EXPIRED: "013",
}
_TYPES: dict[Status, str] = {
    Status.INFO_RECEIVED: "M",
    Status.DELIVERED: "D",
    Status.EXCEPTION: "X",
    Status.FAILED_ATTEMPT: "X",
    Status.RETURNED: "RS",
}


def status_of(step: Step) -> dict[str, str]:
    code = _BY_PAIR.get((step.status, step.sub_status)) or _BY_STATUS[step.status]
    kind = "P" if step.sub_status == SubStatus.PICKED_UP else _TYPES.get(step.status, "I")
    return {
        "type": kind,
        "code": kind * 2 if len(kind) == 1 else kind,
        "description": step.description,
        "statusCode": code,
    }


def _offset_text(minutes: int, unpadded: bool) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours}:{mins:02d}" if unpadded else f"{sign}{hours:02d}:{mins:02d}"


def _activity(step: Step, index: int) -> dict[str, Any]:
    local = step.at.astimezone(zone(step.tz))
    offset = local.utcoffset() or timedelta(0)
    odd = index % 2 == 1
    gmt_time = str(int(step.at.strftime("%H%M%S"))) if odd else step.at.strftime("%H:%M:%S")
    return {
        "date": local.strftime("%Y%m%d"),
        "time": local.strftime("%H%M%S"),
        "gmtDate": step.at.strftime("%Y%m%d"),
        "gmtTime": gmt_time,
        "gmtOffset": _offset_text(int(offset.total_seconds() // 60), unpadded=odd),
        "location": {
            "address": {
                "city": step.city,
                "stateProvince": step.region,
                "postalCode": step.postcode,
                "country": step.country,
                "countryCode": step.country,
            },
            "slic": "0000",
        },
        "status": status_of(step),
    }


def _destination_place(journey: Journey, steps: list[Step]) -> tuple[dict[str, str], str | None]:
    """The DESTINATION address and its zone: the latest scan in that country, else the country."""
    for step in reversed(steps):
        if step.country == journey.destination:
            address = {"city": step.city, "stateProvince": step.region, "countryCode": step.country}
            return address, zone_for(step.country, step.city, step.region)
    return {"countryCode": journey.destination}, zone_for(journey.destination)


def render_package(journey: Journey, steps: list[Step]) -> dict[str, Any]:
    last = steps[-1]
    dest_address, dest_zone = _destination_place(journey, steps)
    package: dict[str, Any] = {
        "trackingNumber": journey.number,
        "activity": [_activity(s, i) for i, s in reversed(list(enumerate(steps)))],
        "currentStatus": status_of(last),
        "packageAddress": [
            {"type": "ORIGIN", "address": {"city": steps[0].city, "countryCode": journey.origin}},
            {"type": "DESTINATION", "address": dest_address},
        ],
        "service": {"code": "007", "description": "UPS Worldwide Express"},
        "packageCount": 1,
    }
    if last.status == Status.DELIVERED:
        day = last.at.astimezone(zone(last.tz))
        package["deliveryDate"] = [{"type": "DEL", "date": day.strftime("%Y%m%d")}]
        if journey.signed_by:
            package["deliveryInformation"] = {"receivedBy": journey.signed_by}
    elif journey.eta is not None:
        dest = zone(dest_zone) if dest_zone else None
        start: datetime = journey.eta.astimezone(dest) if dest else journey.eta
        end = start + timedelta(hours=2)
        package["deliveryDate"] = [{"type": "SDD", "date": start.strftime("%Y%m%d")}]
        if end.date() == start.date():
            package["deliveryTime"] = {
                "type": "EDW",
                "startTime": start.strftime("%H%M%S"),
                "endTime": end.strftime("%H%M%S"),
            }
        else:
            package["deliveryTime"] = {"type": "CMT", "startTime": start.strftime("%H%M%S")}
    return package


def _errors(status: int, code: str, message: str) -> web.Response:
    return json_response({"response": {"errors": [{"code": code, "message": message}]}}, status=status)


def _basic(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def add_routes(app: web.Application, state: SimState, prefix: str, *, journeys: JourneyLookup | None = None) -> None:
    """Mount POST {prefix}/security/v1/oauth/token and GET {prefix}/api/track/v1/details/{n}."""
    lookup: JourneyLookup = journeys or journey_for
    seen_trans_ids: set[str] = set()

    async def token(request: web.Request) -> web.Response:
        creds = state.creds
        if _basic(request.headers.get("Authorization", "")) != (creds.client_id, creds.client_secret):
            return _errors(401, "10401", "ClientId is Invalid")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return _errors(400, "10400", "Invalid/Unsupported grant_type")
        issued = f"{CODE}-{secrets.token_urlsafe(16)}"
        now = state.clock()
        state.tokens[issued] = now + timedelta(seconds=state.faults.token_ttl)
        return json_response(
            {
                "token_type": "Bearer",
                "issued_at": str(int(now.timestamp() * 1000)),
                "client_id": creds.client_id,
                "access_token": issued,
                "scope": "",
                "expires_in": str(state.faults.token_ttl),
                "refresh_count": "0",
                "status": "approved",
            }
        )

    async def details(request: web.Request) -> web.Response:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        expiry = state.tokens.get(presented) if presented.startswith(f"{CODE}-") else None
        if expiry is None or state.clock() >= expiry:
            return _errors(401, "250002", "Invalid Authentication Information.")
        trans_id = request.headers.get("transId", "")
        if not trans_id or not request.headers.get("transactionSrc"):
            return _errors(400, "VSS000", "Missing transId or transactionSrc header")
        if trans_id in seen_trans_ids:
            return _errors(400, "VSS001", "transId must be unique per request")
        seen_trans_ids.add(trans_id)
        number = request.match_info["number"].strip()
        if not (7 <= len(number) <= 34 and number.isalnum()):
            return _errors(400, INVALID_NUMBER, "Invalid inquiry number")
        state.lookups[(CODE, number)] += 1
        journey = lookup(number, CODE, state)
        steps = journey.visible(state.clock()) if journey is not None else []
        if journey is None or not steps:
            shipment: dict[str, Any] = {
                "inquiryNumber": number,
                "warnings": [{"code": NOT_FOUND, "message": "Tracking Information Not Found"}],
            }
        else:
            package = render_package(journey, steps)
            package["trackingNumber"] = number
            shipment = {"inquiryNumber": number, "package": [package]}
        return json_response({"trackResponse": {"shipment": [shipment]}})

    app.router.add_post(f"{prefix}/security/v1/oauth/token", token)
    app.router.add_get(f"{prefix}/api/track/v1/details/{{number}}", details)
