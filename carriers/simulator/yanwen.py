"""Simulated Yanwen tracking: `nums` comma list, customer number in `Authorization`.

Checkpoints carry the naive local time of the scan and its offset in `time_zone` ("+8").
A wrong customer number gets 401 and an over-long list a non-zero `code`; both shapes are
our guess, Yanwen documents neither.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from carriers.simulator.journey import Journey, Step, zone
from carriers.simulator.journeys import journey_for
from carriers.simulator.responses import json_response
from carriers.simulator.state import SimState
from carriers.status import Status, SubStatus

CODE = "yanwen"
BATCH_LIMIT = 40
MALFORMED_MARKER = "MALFORMED"

JourneyLookup = Callable[[str, str, SimState], Journey | None]

_BY_PAIR: dict[tuple[Status, SubStatus], str] = {
    (Status.IN_TRANSIT, SubStatus.PICKED_UP): "PU10",
    (Status.IN_TRANSIT, SubStatus.DEPARTED): "LH30",
    (Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING): "CC30",
    (Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED): "CC35",
    (Status.IN_TRANSIT, SubStatus.HANDED_TO_LAST_MILE): "LM10",
}
_BY_STATUS: dict[Status, str] = {
    Status.IN_TRANSIT: "SC20",
    Status.OUT_FOR_DELIVERY: "LM30",
    Status.DELIVERED: "LM40",
}


def zone_text(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}" if not rest else f"{sign}{hours}:{rest:02d}"


def checkpoint(step: Step) -> dict[str, Any]:
    local = step.at.astimezone(zone(step.tz))
    offset = int((local.utcoffset() or timedelta(0)).total_seconds() // 60)
    return {
        "time_stamp": local.replace(tzinfo=None).isoformat(),
        "time_zone": zone_text(offset),
        "tracking_status": _BY_PAIR.get((step.status, step.sub_status)) or _BY_STATUS.get(step.status, "EX90"),
        "message": step.description,
        "location": f"{step.city}, {step.country}",
    }


def result(number: str, journey: Journey | None, state: SimState) -> dict[str, Any]:
    steps = journey.visible(state.clock()) if journey is not None else []
    points = [checkpoint(s) for s in steps if s.status is not Status.INFO_RECEIVED]
    if not points:
        return {"tracking_number": number, "tracking_status": "NOTFOUND", "checkpoints": []}
    if MALFORMED_MARKER in number.upper():
        points[-1]["time_stamp"] = "later"
    return {
        "tracking_number": number,
        "tracking_status": points[-1]["tracking_status"],
        "last_mile_tracking_expected": any(s.provider not in ("", CODE) for s in steps),
        "checkpoints": points,
    }


def add_routes(app: web.Application, state: SimState, prefix: str, *, journeys: JourneyLookup | None = None) -> None:
    """Mount GET {prefix}/api/tracking."""
    lookup: JourneyLookup = journeys or journey_for

    async def tracking(request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != state.creds.api_key:
            return json_response({"code": 401, "message": "Unauthorized"}, status=401)
        numbers = [n.strip() for n in request.query.get("nums", "").split(",") if n.strip()]
        if not numbers or len(numbers) > BATCH_LIMIT:
            return json_response({"code": 1, "message": f"nums must hold 1-{BATCH_LIMIT} numbers"})
        items = []
        for number in numbers:
            state.lookups[(CODE, number)] += 1
            items.append(result(number, lookup(number, CODE, state), state))
        return json_response({"code": 0, "message": "success", "result": items, "elapsedMilliseconds": 3})

    app.router.add_get(f"{prefix}/api/tracking", tracking)
