"""Simulated 17TRACK v2.2: `register` then `gettrackinfo`, ≤40 numbers, `17token` header.

Events come grouped per provider (first mile, last mile), newest first, each with
`time_iso` at the offset of the scan's place and `time_utc`. Request counting and fault
injection belong to the app's middleware; lookups are counted here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from carriers.simulator.journey import Journey, Step, zone
from carriers.simulator.journeys import journey_for
from carriers.simulator.responses import json_response
from carriers.simulator.state import SimState
from carriers.status import Status, SubStatus
from carriers.track17 import (
    ALREADY_REGISTERED,
    BATCH_LIMIT,
    NO_INFO_YET,
    NOT_REGISTERED,
    STATUS,
    TOO_MANY_NUMBERS,
)

CODE = "17track"
API = "/track/v2.2"
INVALID_KEY = -18010002
INVALID_REQUEST = -18010012
#: numbers containing this marker come back as an accepted entry that cannot be read
MALFORMED_MARKER = "SBXMALFORMED"

JourneyLookup = Callable[[str, str, SimState], Journey | None]

_BY_PAIR: dict[tuple[Status, SubStatus], str] = {}
for _code, _pair in STATUS.items():
    _BY_PAIR.setdefault(_pair, _code)
_BY_STATUS: dict[Status, str] = {
    Status.PENDING: "NotFound_Other",
    Status.INFO_RECEIVED: "InfoReceived",
    Status.IN_TRANSIT: "InTransit_Other",
    Status.OUT_FOR_DELIVERY: "OutForDelivery_Other",
    Status.AVAILABLE_FOR_PICKUP: "AvailableForPickup_Other",
    Status.FAILED_ATTEMPT: "DeliveryFailure_Other",
    Status.DELIVERED: "Delivered_Other",
    Status.EXCEPTION: "Exception_Other",
    Status.RETURNED: "Exception_Returned",
    Status.EXPIRED: "Expired_Other",
}
_STAGE_BY_PAIR: dict[tuple[Status, SubStatus], str] = {
    (Status.IN_TRANSIT, SubStatus.PICKED_UP): "PickedUp",
    (Status.IN_TRANSIT, SubStatus.DEPARTED): "Departure",
    (Status.IN_TRANSIT, SubStatus.ARRIVED): "Arrival",
    (Status.EXCEPTION, SubStatus.RETURNING): "Returning",
}
_STAGE_BY_STATUS: dict[Status, str] = {
    Status.INFO_RECEIVED: "InfoReceived",
    Status.AVAILABLE_FOR_PICKUP: "AvailableForPickup",
    Status.OUT_FOR_DELIVERY: "OutForDelivery",
    Status.DELIVERED: "Delivered",
    Status.RETURNED: "Returned",
}


def sub_status_code(step: Step) -> str:
    return _BY_PAIR.get((step.status, step.sub_status)) or _BY_STATUS[step.status]


def provider_key(name: str) -> int:
    """A stable numeric carrier key for a provider name, in 17TRACK's 5-6 digit range."""
    return 100000 + int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % 90000


def _utc(at: datetime) -> str:
    # == at.strftime("%Y-%m-%dT%H:%M:%SZ") for four-digit years, at a third of the cost
    return at.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def _event(step: Step) -> dict[str, Any]:
    return {
        "time_iso": step.at.astimezone(zone(step.tz)).isoformat(timespec="seconds"),
        "time_utc": _utc(step.at),
        "description": step.description,
        "location": ", ".join(p for p in (step.city, step.country) if p),
        "stage": _STAGE_BY_PAIR.get((step.status, step.sub_status)) or _STAGE_BY_STATUS.get(step.status),
        "sub_status": sub_status_code(step),
        "address": {
            "country": step.country,
            "state": step.region or None,
            "city": step.city,
            "street": None,
            "postal_code": step.postcode or None,
            "coordinates": {"longitude": None, "latitude": None},
        },
    }


def _providers(steps: list[Step], fallback: str) -> list[dict[str, Any]]:
    groups: dict[str, list[Step]] = {}
    for step in steps:
        groups.setdefault(step.provider or fallback, []).append(step)
    blocks = []
    # the provider that scanned last is listed first, as 17TRACK shows the last mile on top
    for name in sorted(groups, key=lambda n: groups[n][-1].at, reverse=True):
        own = groups[name]
        blocks.append(
            {
                "provider": {
                    "key": provider_key(name),
                    "name": name,
                    "alias": name,
                    "tel": None,
                    "homepage": None,
                    "country": own[0].country,
                },
                "service_type": None,
                "latest_sync_status": "Success",
                "latest_sync_time": _utc(own[-1].at),
                "events_hash": provider_key(name + str(len(own))),
                "events": [_event(s) for s in reversed(own)],
            }
        )
    return blocks


def render_entry(journey: Journey, steps: list[Step]) -> dict[str, Any]:
    last = steps[-1]
    latest_sub = sub_status_code(last)
    eta = journey.eta
    return {
        "number": journey.number,
        "carrier": provider_key(last.provider or CODE),
        "param": None,
        "tag": None,
        "track_info": {
            "shipping_info": {
                "shipper_address": {"country": journey.origin, "state": None, "city": None},
                "recipient_address": {"country": journey.destination, "state": None, "city": None},
            },
            "latest_status": {
                "status": latest_sub.split("_", 1)[0],
                "sub_status": latest_sub,
                "sub_status_descr": None,
            },
            "latest_event": _event(last),
            "time_metrics": {
                "days_after_order": (last.at - steps[0].at).days,
                "estimated_delivery_date": {
                    "source": "17TRACK" if eta else None,
                    "from": eta.isoformat() if eta else None,
                    "to": None,
                },
            },
            "misc_info": {"risk_factor": 0, "local_number": None, "local_provider": None, "local_key": 0},
            "tracking": {"providers_hash": 0, "providers": _providers(steps, CODE)},
        },
    }


def _envelope(code: int, data: dict[str, Any], status: int = 200) -> web.Response:
    return json_response({"code": code, "data": data}, status=status)


def _refused(code: int, message: str, status: int = 200) -> web.Response:
    return _envelope(code, {"errors": [{"code": code, "message": message}]}, status)


def _rejected(number: str, code: int, message: str) -> dict[str, Any]:
    return {"number": number, "error": {"code": code, "message": message}}


def add_routes(app: web.Application, state: SimState, prefix: str, *, journeys: JourneyLookup | None = None) -> None:
    """Mount POST {prefix}/track/v2.2/register and POST {prefix}/track/v2.2/gettrackinfo."""
    lookup: JourneyLookup = journeys or journey_for

    async def numbers_of(request: web.Request) -> list[str] | web.Response:
        if request.headers.get("17token") != state.creds.api_key:
            return _refused(INVALID_KEY, "The security key is invalid.", status=401)
        try:
            body = json.loads(await request.read())
            if not isinstance(body, list):
                raise TypeError("not an array")
            numbers = [str(item["number"]).strip() for item in body]
        except (ValueError, TypeError, KeyError):
            return _refused(INVALID_REQUEST, "The request body must be a JSON array of numbers.")
        if len(numbers) > BATCH_LIMIT:
            return _refused(TOO_MANY_NUMBERS, f"A maximum of {BATCH_LIMIT} tracking numbers per request.")
        return numbers

    async def register(request: web.Request) -> web.Response:
        numbers = await numbers_of(request)
        if isinstance(numbers, web.Response):
            return numbers
        accepted, rejected = [], []
        for number in numbers:
            if number in state.registered_17track:
                rejected.append(_rejected(number, ALREADY_REGISTERED, "The tracking number is already registered."))
            else:
                state.registered_17track.add(number)
                accepted.append({"number": number, "carrier": provider_key(CODE)})
        return _envelope(0, {"accepted": accepted, "rejected": rejected})

    async def gettrackinfo(request: web.Request) -> web.Response:
        numbers = await numbers_of(request)
        if isinstance(numbers, web.Response):
            return numbers
        accepted: list[Any] = []
        rejected: list[Any] = []
        now = state.clock()
        for number in numbers:
            if number not in state.registered_17track:
                rejected.append(_rejected(number, NOT_REGISTERED, "The tracking number is not registered."))
                continue
            state.lookups[(CODE, number)] += 1
            if MALFORMED_MARKER in number.upper():
                accepted.append({"number": number, "track_info": "unreadable"})
                continue
            journey = lookup(number, CODE, state)
            steps = journey.visible(now) if journey is not None else []
            if journey is None or not steps:
                rejected.append(_rejected(number, NO_INFO_YET, "No tracking information yet."))
                continue
            entry = render_entry(journey, steps)
            entry["number"] = number
            accepted.append(entry)
        return _envelope(0, {"accepted": accepted, "rejected": rejected})

    app.router.add_post(f"{prefix}{API}/register", register)
    app.router.add_post(f"{prefix}{API}/gettrackinfo", gettrackinfo)
