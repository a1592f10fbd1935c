"""Fault injection for the simulator, plus its small admin API under `/_sim/`.

Which request fails is decided by a counter-based PRNG seeded from `state.seed`: the n-th
request of a run always meets the same fate, so a failing demo or benchmark can be replayed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from carriers.base import Clock
from carriers.simulator.responses import json_response
from carriers.simulator.state import Faults, SimState

ADMIN_PREFIX = "/_sim/"


def draw(seed: int, n: int) -> float:
    """The n-th uniform draw in [0, 1) of the stream seeded with `seed`."""
    digest = hashlib.sha256(f"sim-faults\x1f{seed}\x1f{n}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def decide(faults: Faults, seed: int, n: int) -> str:
    """The fate of request number `n`: "ok", "429", "500", "503" or "malformed"."""
    u = draw(seed, n)
    if u < faults.rate_429:
        return "429"
    u -= faults.rate_429
    if u < faults.rate_5xx:
        # the same draw picks the code, so 500 and 503 share the 5xx budget evenly
        return "500" if u < faults.rate_5xx / 2 else "503"
    u -= faults.rate_5xx
    if u < faults.rate_malformed:
        return "malformed"
    return "ok"


def truncate(body: bytes) -> bytes:
    """Cut a JSON body short so no parser can read it."""
    return body[: max(1, len(body) // 2)]


def fault_middleware(state: SimState, codes: Iterable[str]) -> Middleware:
    """Count requests per carrier and apply `state.faults` to every carrier request."""
    mounted = frozenset(codes)
    counter = 0

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal counter
        if request.path.startswith(ADMIN_PREFIX):
            return await handler(request)
        code = request.path.lstrip("/").split("/", 1)[0]
        if code in mounted:
            state.requests[code] += 1
        faults = state.faults
        fate = decide(faults, state.seed, counter)
        counter += 1
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if fate == "429":
            headers = {"Retry-After": faults.retry_after} if faults.retry_after else {}
            return json_response(
                {"status": 429, "title": "Too Many Requests", "detail": "simulated rate limit"},
                status=429,
                headers=headers,
            )
        if fate in ("500", "503"):
            return json_response(
                {"status": int(fate), "title": "Simulated failure"},
                status=int(fate),
            )
        response = await handler(request)
        if fate == "malformed" and isinstance(response, web.Response) and response.body is not None:
            body = response.body
            if isinstance(body, bytes | bytearray):
                response.body = truncate(bytes(body))
        return response

    return middleware


# --- admin API --------------------------------------------------------------------------

_FAULT_TYPES: dict[str, tuple[type, ...]] = {
    "latency_ms": (int, float),
    "rate_429": (int, float),
    "rate_5xx": (int, float),
    "rate_malformed": (int, float),
    "token_ttl": (int,),
    "retry_after": (str, type(None)),
}


def apply_faults(current: Faults, changes: dict[str, Any]) -> Faults:
    """A copy of `current` with `changes` applied; ValueError on an unknown or ill-typed field."""
    known = {f.name for f in fields(Faults)}
    values = asdict(current)
    for key, value in changes.items():
        if key not in known:
            raise ValueError(f"unknown fault {key!r}")
        if isinstance(value, bool) or not isinstance(value, _FAULT_TYPES[key]):
            raise ValueError(f"bad value for {key!r}")
        if key.startswith("rate_") and not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{key!r} must be between 0 and 1")
        if key in ("latency_ms", "token_ttl") and value < 0:
            raise ValueError(f"{key!r} must not be negative")
        values[key] = value
    return Faults(**values)


def offset_clock(base: Clock, offset: timedelta) -> Clock:
    """A clock that runs alongside `base`, shifted by `offset`."""

    def clock() -> datetime:
        return base() + offset

    return clock


def add_admin_routes(app: web.Application, state: SimState) -> None:
    """Mount GET/PUT /_sim/faults, GET /_sim/stats and POST /_sim/clock."""
    base_clock = state.clock

    async def get_faults(request: web.Request) -> web.Response:
        return json_response(asdict(state.faults))

    async def put_faults(request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            state.faults = apply_faults(state.faults, changes)
        except (ValueError, json.JSONDecodeError) as err:
            return json_response({"error": str(err)}, status=400)
        return json_response(asdict(state.faults))

    async def get_stats(request: web.Request) -> web.Response:
        by_carrier: Counter[str] = Counter()
        for (code, _number), count in state.lookups.items():
            by_carrier[code] += count
        return json_response(
            {
                "requests": dict(state.requests),
                "lookups": sum(state.lookups.values()),
                "lookups_by_carrier": dict(by_carrier),
                "now": state.clock().isoformat(),
            }
        )

    async def post_clock(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            if "at" in body:
                at = datetime.fromisoformat(str(body["at"]))
                if at.tzinfo is None:
                    raise ValueError("'at' needs an offset")
                offset = at - base_clock()
            else:
                seconds = body.get("offset_seconds", 0)
                if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                    raise ValueError("'offset_seconds' must be a number")
                offset = timedelta(seconds=seconds)
        except (ValueError, json.JSONDecodeError, OverflowError) as err:
            return json_response({"error": str(err)}, status=400)
        state.clock = offset_clock(base_clock, offset)
        return json_response({"offset_seconds": offset.total_seconds(), "now": state.clock().isoformat()})

    app.router.add_get(ADMIN_PREFIX + "faults", get_faults)
    app.router.add_put(ADMIN_PREFIX + "faults", put_faults)
    app.router.add_get(ADMIN_PREFIX + "stats", get_stats)
    app.router.add_post(ADMIN_PREFIX + "clock", post_clock)
