"""Simulated FedEx: form-body OAuth2 token, Track API v1 with ≤30 numbers a call.

Scan dates carry their offset, except pick-up scans, which FedEx sometimes sends as a naive
local date; the simulator does the same wherever the scan's place pins down its zone, so
the adapter can still recover the exact instant.
"""

from __future__ import annotations

import secrets
import uuid
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

CODE = "fedex"
BATCH_LIMIT = 30
#: FedEx documents a fixed 3599; the real lifetime is `faults.token_ttl`
EXPIRES_IN = 3599
#: numbers containing this marker get an item whose scan date cannot be read
MALFORMED_MARKER = "MALFORMED"
#: numbers containing this marker were reused: an older shipment comes back too
REUSED_MARKER = "REUSED"

JourneyLookup = Callable[[str, str, SimState], Journey | None]

_BY_PAIR: dict[tuple[Status, SubStatus], str] = {
    (Status.INFO_RECEIVED, SubStatus.LABEL_CREATED): "OC",
    (Status.IN_TRANSIT, SubStatus.PICKED_UP): "PU",
    (Status.IN_TRANSIT, SubStatus.ARRIVED): "AR",
    (Status.IN_TRANSIT, SubStatus.DEPARTED): "DP",
    (Status.IN_TRANSIT, SubStatus.DELAYED): "DY",
    (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING): "CP",
    (Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED): "CC",
    (Status.EXCEPTION, SubStatus.CUSTOMS_HELD): "CD",
}
_BY_STATUS: dict[Status, str] = {
    Status.PENDING: "OC",
    Status.INFO_RECEIVED: "OC",
    Status.IN_TRANSIT: "IT",
    Status.OUT_FOR_DELIVERY: "OD",
    Status.AVAILABLE_FOR_PICKUP: "HP",
    Status.FAILED_ATTEMPT: "DE",
    Status.DELIVERED: "DL",
    Status.EXCEPTION: "SE",
    Status.RETURNED: "RS",
    Status.EXPIRED: "SE",
}
#: derivedStatusCode per eventType; note OD really is derived as IT
_DERIVED: dict[str, str] = {"OC": "IN", "PU": "PU", "DL": "DL", "DE": "DE", "DY": "DY"}


def event_type(step: Step) -> str:
    return _BY_PAIR.get((step.status, step.sub_status)) or _BY_STATUS[step.status]


def render_date(step: Step, code: str) -> str:
    local = step.at.astimezone(zone(step.tz))
    if code == "PU":
        guess = zone_for(step.country, step.city, step.region)
        if guess is not None and step.at.astimezone(zone(guess)).utcoffset() == local.utcoffset():
            return local.replace(tzinfo=None).isoformat()
    return local.isoformat()


def _address(country: str) -> dict[str, Any]:
    return {"address": {"countryCode": country, "residential": False}}


def _scan(step: Step) -> dict[str, Any]:
    code = event_type(step)
    return {
        "date": render_date(step, code),
        "eventType": code,
        "eventDescription": step.description,
        "exceptionCode": "",
        "exceptionDescription": "",
        "scanLocation": {
            "streetLines": [""],
            "city": step.city,
            "stateOrProvinceCode": step.region,
            "postalCode": step.postcode,
            "countryCode": step.country,
            "residential": False,
        },
        "derivedStatusCode": _DERIVED.get(code, "IT"),
    }


def not_found_item(number: str) -> dict[str, Any]:
    return {
        "trackingNumberInfo": {"trackingNumber": number, "trackingNumberUniqueId": "", "carrierCode": ""},
        "error": {
            "code": "TRACKING.TRACKINGNUMBER.NOTFOUND",
            "message": "Tracking number cannot be found. Please correct the tracking number and try again.",
        },
    }


def track_result(number: str, journey: Journey, now: datetime, unique_id: str) -> dict[str, Any]:
    steps = journey.visible(now)
    if not steps:
        return not_found_item(number)
    scans = [_scan(s) for s in reversed(steps)]
    last = scans[0]
    item: dict[str, Any] = {
        "trackingNumberInfo": {
            "trackingNumber": number,
            "trackingNumberUniqueId": unique_id,
            "carrierCode": "FDXE",
        },
        "shipperInformation": _address(journey.origin),
        "recipientInformation": _address(journey.destination),
        "latestStatusDetail": {
            "code": last["eventType"],
            "derivedCode": last["derivedStatusCode"],
            "description": last["eventDescription"],
            "scanLocation": last["scanLocation"],
        },
        "scanEvents": scans,
        "dateAndTimes": [],
    }
    if last["eventType"] == "DL" and journey.signed_by:
        item["deliveryDetails"] = {"receivedByName": journey.signed_by, "signedByName": journey.signed_by}
    elif journey.eta is not None:
        item["estimatedDeliveryTimeWindow"] = {"window": {"ends": journey.eta.isoformat()}}
    if MALFORMED_MARKER in number.upper():
        scans[0]["date"] = "not a date"
    return item


def _error(status: int, code: str, message: str) -> web.Response:
    body = {"transactionId": str(uuid.uuid4()), "errors": [{"code": code, "message": message}]}
    return json_response(body, status=status)


def add_routes(app: web.Application, state: SimState, prefix: str, *, journeys: JourneyLookup | None = None) -> None:
    """Mount POST {prefix}/oauth/token and POST {prefix}/track/v1/trackingnumbers."""
    lookup: JourneyLookup = journeys or journey_for

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        creds = state.creds
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != creds.client_id
            or form.get("client_secret") != creds.client_secret
        ):
            return _error(
                401,
                "NOT.AUTHORIZED.ERROR",
                "The given client credentials were not valid. Please modify your request and try again.",
            )
        issued = f"{CODE}-{secrets.token_urlsafe(16)}"
        state.tokens[issued] = state.clock() + timedelta(seconds=state.faults.token_ttl)
        return json_response(
            {"access_token": issued, "token_type": "bearer", "expires_in": EXPIRES_IN, "scope": "CXS-TP"}
        )

    async def track(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        presented = auth.removeprefix("Bearer ").strip()
        expiry = state.tokens.get(presented) if presented.startswith(f"{CODE}-") else None
        if expiry is None or state.clock() >= expiry:
            return _error(
                401,
                "NOT.AUTHORIZED.ERROR",
                "Access token expired. Please modify your request and try again.",
            )
        try:
            body = await request.json()
            infos = body.get("trackingInfo")
            numbers = [str(i["trackingNumberInfo"]["trackingNumber"]).strip() for i in infos]
        except (ValueError, TypeError, KeyError, AttributeError):
            return _error(400, "INVALID.INPUT.EXCEPTION", "Invalid field value in the input")
        if not numbers or not all(numbers):
            return _error(400, "TRACKING.TRACKINGNUMBER.EMPTY", "Please provide tracking number.")
        if len(numbers) > BATCH_LIMIT:
            return _error(
                400,
                "TRACKING.TRACKINGNUMBER.LIMIT.EXCEEDED",
                f"Please provide no more than {BATCH_LIMIT} tracking numbers.",
            )
        now = state.clock()
        complete = []
        for number in numbers:
            state.lookups[(CODE, number)] += 1
            journey = lookup(number, CODE, state)
            if journey is None:
                items = [not_found_item(number)]
            else:
                items = [track_result(number, journey, now, f"12028~{number}~FDEG")]
                if REUSED_MARKER in number.upper():
                    # the earlier shipment under the same number, told as its own story
                    older = lookup(number + "-2019", CODE, state)
                    if older is not None:
                        items.append(track_result(number, older, now, f"11111~{number}~FDEG"))
            complete.append({"trackingNumber": number, "trackResults": items})
        payload = {"transactionId": str(uuid.uuid4()), "output": {"completeTrackResults": complete}}
        return json_response(payload)

    app.router.add_post(f"{prefix}/oauth/token", token)
    app.router.add_post(f"{prefix}/track/v1/trackingnumbers", track)
