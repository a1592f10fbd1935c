"""Simulated DHL Shipment Tracking - Unified: `GET /track/shipments`, one number a call.

Event timestamps are rendered as local wall-clock time without offset (DHL's quirk), with
the scan's city and country, so the adapter must find the zone from the place. Unknown
numbers get the live 404 problem+json. Request counting and fault injection belong to the
app's middleware; lookups are counted here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from carriers.simulator.journey import Journey, Step, zone
from carriers.simulator.journeys import journey_for
from carriers.simulator.responses import json_response
from carriers.simulator.state import SimState
from carriers.status import Status, SubStatus

CODE = "dhl"
PROBLEM = "application/problem+json"

JourneyLookup = Callable[[str, str, SimState], Journey | None]

_CODES: dict[Status, str] = {
    Status.PENDING: "unknown",
    Status.INFO_RECEIVED: "pre-transit",
    Status.IN_TRANSIT: "transit",
    Status.OUT_FOR_DELIVERY: "transit",
    Status.AVAILABLE_FOR_PICKUP: "transit",
    Status.FAILED_ATTEMPT: "failure",
    Status.EXCEPTION: "failure",
    Status.DELIVERED: "delivered",
    Status.RETURNED: "delivered",
    Status.EXPIRED: "unknown",
}
_TITLES: dict[str, str] = {
    "pre-transit": "The shipment has been processed",
    "transit": "The shipment is in transit",
    "failure": "There is a problem with the shipment",
    "delivered": "The shipment has been delivered",
    "unknown": "Status unknown",
}
_RETURN_SUBS = frozenset({SubStatus.RETURNING, SubStatus.RETURNED_TO_SENDER})


def problem(status: int, title: str, detail: str) -> web.Response:
    return json_response({"title": title, "status": status, "detail": detail}, status=status, content_type=PROBLEM)


def _event(step: Step) -> dict[str, Any]:
    code = _CODES[step.status]
    local = step.at.astimezone(zone(step.tz)).replace(tzinfo=None)
    address = {"addressLocality": step.city, "countryCode": step.country}
    if step.postcode:
        address["postalCode"] = step.postcode
    return {
        "timestamp": local.isoformat(timespec="seconds"),
        "location": {"address": address},
        "statusCode": code,
        "status": _TITLES[code],
        "description": step.description,
    }


def render_shipment(journey: Journey, steps: list[Step]) -> dict[str, Any]:
    shipment: dict[str, Any] = {
        "id": journey.number,
        "service": "express",
        "origin": {"address": {"countryCode": journey.origin, "addressLocality": steps[0].city}},
        "destination": {"address": {"countryCode": journey.destination}},
        "status": _event(steps[-1]),
        "details": {"product": {"productName": "EXPRESS WORLDWIDE"}, "totalNumberOfPieces": 1},
        "events": [_event(s) for s in reversed(steps)],
    }
    if any(s.sub_status in _RETURN_SUBS for s in steps):
        shipment["returnFlag"] = True
    if journey.eta is not None:
        shipment["estimatedTimeOfDelivery"] = journey.eta.strftime("%Y-%m-%dT%H:%M:%SZ")
    if steps[-1].status == Status.DELIVERED and journey.signed_by:
        shipment["details"]["proofOfDelivery"] = {
            "timestamp": steps[-1].at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "signed": {"@type": "Person", "name": journey.signed_by},
        }
    return shipment


def add_routes(app: web.Application, state: SimState, prefix: str, *, journeys: JourneyLookup | None = None) -> None:
    """Mount GET {prefix}/track/shipments."""
    lookup: JourneyLookup = journeys or journey_for

    async def shipments(request: web.Request) -> web.Response:
        key = request.headers.get("DHL-API-Key") or request.query.get("DHL-API-Key")
        if key != state.creds.api_key:
            return problem(401, "Unauthorized", "Invalid or missing API key.")
        number = request.query.get("trackingNumber", "").strip()
        if not number:
            return problem(400, "Bad Request", "The parameter trackingNumber is required.")
        state.lookups[(CODE, number)] += 1
        journey = lookup(number, CODE, state)
        steps = journey.visible(state.clock()) if journey is not None else []
        if journey is None or not steps:
            return problem(404, "No result found", "No shipment with given tracking number found.")
        shipment = render_shipment(journey, steps)
        shipment["id"] = number
        return json_response(
            {
                "url": f"/shipments?trackingNumber={number}&offset=0&limit=5",
                "shipments": [shipment],
                "possibleAdditionalShipmentsUrl": [],
            }
        )

    app.router.add_get(f"{prefix}/track/shipments", shipments)
