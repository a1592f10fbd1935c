"""Simulated USPS Tracking v3: OAuth2 token, one number per GET, USPS's timestamp quirks.

Events carry the local wall-clock time in `eventTimestamp` (with a bogus `Z` on acceptance
scans), `GMTTimestamp` built from the *local* date and the UTC time of day (so it is a day
off whenever the offset crosses midnight, as in real responses), and no GMT fields at all
on pre-shipment scans.
"""

from __future__ import annotations

import json
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

CODE = "usps"
API_VERSION = "/tracking/v3"
#: numbers containing this marker get an event whose timestamp cannot be read
MALFORMED_MARKER = "MALFORMED"

JourneyLookup = Callable[[str, str, SimState], Journey | None]

_BY_PAIR: dict[tuple[Status, SubStatus], tuple[str, str]] = {
    (Status.INFO_RECEIVED, SubStatus.LABEL_CREATED): ("GX", ""),
    (Status.IN_TRANSIT, SubStatus.PICKED_UP): ("03", "USPS in possession of item"),
    (Status.IN_TRANSIT, SubStatus.ARRIVED): ("10", ""),
    (Status.IN_TRANSIT, SubStatus.DEPARTED): ("T1", ""),
    (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING): ("PC", "Customs Clearance"),
    (Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED): ("PC", "Customs Clearance Processing Complete"),
    (Status.EXCEPTION, SubStatus.CUSTOMS_HELD): ("PC", "Held in Customs"),
    (Status.EXCEPTION, SubStatus.LOST): ("11", ""),
    (Status.DELIVERED, SubStatus.PICKUP_POINT): ("01", "Delivered, Parcel Locker"),
    (Status.DELIVERED, SubStatus.LEFT_AT_DOOR): ("01", "Delivered, Front Door/Porch"),
    (Status.DELIVERED, SubStatus.SIGNED): ("01", "Delivered, Left with Individual"),
}
_BY_STATUS: dict[Status, str] = {
    Status.PENDING: "MA",
    Status.INFO_RECEIVED: "GX",
    Status.IN_TRANSIT: "TL",
    Status.OUT_FOR_DELIVERY: "OF",
    Status.AVAILABLE_FOR_PICKUP: "14",
    Status.FAILED_ATTEMPT: "02",
    Status.DELIVERED: "01",
    Status.EXCEPTION: "DX",
    Status.RETURNED: "09",
    Status.EXPIRED: "DX",
}
_CATEGORY: dict[Status, str] = {
    Status.INFO_RECEIVED: "Pre-Shipment",
    Status.IN_TRANSIT: "Moving Through Network",
    Status.OUT_FOR_DELIVERY: "Out for Delivery",
    Status.AVAILABLE_FOR_PICKUP: "Available for Pickup",
    Status.FAILED_ATTEMPT: "Alert",
    Status.DELIVERED: "Delivered",
    Status.EXCEPTION: "Alert",
    Status.RETURNED: "Return to Sender",
}


def _offset_text(local: datetime) -> str:
    minutes = int((local.utcoffset() or timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def render_event(step: Step, signed_by: str | None) -> dict[str, Any]:
    code, text = _BY_PAIR.get((step.status, step.sub_status)) or (_BY_STATUS[step.status], "")
    local = step.at.astimezone(zone(step.tz))
    stamp = local.replace(tzinfo=None).isoformat()
    domestic = step.country == "US"
    event: dict[str, Any] = {
        "eventType": text or step.description,
        # USPS appends a Z to some local times; it is not UTC
        "eventTimestamp": stamp + "Z" if code == "03" else stamp,
        "eventCountry": None if domestic else step.country,
        "eventCity": step.city.upper(),
        "eventState": step.region or None,
        "eventZIP": step.postcode or None,
        "firm": None,
        "name": signed_by if code == "01" else None,
        "authorizedAgent": "false",
        "eventCode": code,
    }
    if step.status is not Status.INFO_RECEIVED:
        utc_time = step.at.time().isoformat()
        event["GMTTimestamp"] = f"{local.date().isoformat()}T{utc_time}Z"
        event["GMTOffset"] = _offset_text(local)
    return event


def render(number: str, journey: Journey, steps: list[Step]) -> dict[str, Any]:
    last = steps[-1]
    events = [render_event(s, journey.signed_by) for s in reversed(steps)]
    if MALFORMED_MARKER in number.upper():
        events[0]["eventTimestamp"] = "yesterday"
    doc: dict[str, Any] = {
        "trackingNumber": number,
        "status": events[0]["eventType"],
        "statusCategory": _CATEGORY.get(last.status, "Moving Through Network"),
        "statusSummary": f"Your item: {last.description}",
        "mailClass": "Priority Mail International<SUP>&reg;</SUP>",
        "mailType": "DM",
        "services": "USPS Tracking<SUP>&#174;</SUP>",
        "emailEnabled": "true",
        "kahalaIndicator": "false",
        "proofOfDeliveryEnabled": "false",
        "originCountry": journey.origin,
        "destinationCountryCode": journey.destination,
        "trackingEvents": events,
    }
    if journey.eta is not None and last.status is not Status.DELIVERED:
        doc["expectedDeliveryTimeStamp"] = journey.eta.isoformat()
    return doc


def _error(status: int, message: str, code: str, title: str = "") -> web.Response:
    body = {
        "apiVersion": API_VERSION,
        "error": {
            "code": str(status),
            "message": message,
            "errors": [{"status": str(status), "code": code, "title": title or message, "detail": ""}],
        },
    }
    return json_response(body, status=status)


NOT_YET = (
    "12: A status update is not yet available on your package. It will be available when the "
    "shipper provides an update or the package is given to USPS. Check back soon. - "
)


def add_routes(app: web.Application, state: SimState, prefix: str, *, journeys: JourneyLookup | None = None) -> None:
    """Mount POST {prefix}/oauth2/v3/token and GET {prefix}/tracking/v3/tracking/{number}."""
    lookup: JourneyLookup = journeys or journey_for

    async def token(request: web.Request) -> web.Response:
        form: dict[str, Any]
        if request.content_type == "application/json":
            try:
                loaded = await request.json()
            except json.JSONDecodeError:
                loaded = None
            form = loaded if isinstance(loaded, dict) else {}
        else:
            form = dict(await request.post())
        creds = state.creds
        if form.get("client_id") != creds.client_id or form.get("client_secret") != creds.client_secret:
            body = {"error": "invalid_client", "error_description": "Client authentication failed"}
            return json_response(body, status=401)
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, status=400)
        issued = f"{CODE}-{secrets.token_urlsafe(16)}"
        ttl = state.faults.token_ttl
        state.tokens[issued] = state.clock() + timedelta(seconds=ttl)
        return json_response(
            {
                "access_token": issued,
                "token_type": "Bearer",
                "issued_at": int(state.clock().timestamp() * 1000),
                "expires_in": str(ttl),
                "status": "approved",
                "scope": "tracking",
                "client_id": creds.client_id,
            }
        )

    async def track(request: web.Request) -> web.Response:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        expiry = state.tokens.get(presented) if presented.startswith(f"{CODE}-") else None
        if expiry is None or state.clock() >= expiry:
            return _error(401, "Unauthorized", "PolicyFailure", "Invalid or expired access token")
        number = request.match_info["number"].strip()
        state.lookups[(CODE, number)] += 1
        journey = lookup(number, CODE, state)
        steps = journey.visible(state.clock()) if journey is not None else []
        if journey is None or not steps:
            return _error(400, NOT_YET, "150001")
        return json_response(render(number, journey, steps))

    app.router.add_post(f"{prefix}/oauth2/v3/token", token)
    app.router.add_get(f"{prefix}/tracking/v3/tracking/{{number}}", track)
