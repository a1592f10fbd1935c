"""Build a simulator app with only some carriers mounted, for adapter tests over loopback."""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from carriers.base import CarrierSettings
from carriers.simulator.app import MODULES
from carriers.simulator.faults import fault_middleware
from carriers.simulator.journey import Journey
from carriers.simulator.state import SimState

JourneyLookup = Callable[[str, str, SimState], Journey | None]


def make_sim_app(
    state: SimState, codes: list[str], *, journeys: JourneyLookup | None = None
) -> web.Application:
    """The given carriers' endpoints under f"/{code}", with the simulator's fault middleware."""
    app = web.Application(middlewares=[fault_middleware(state, codes)])
    for code in codes:
        module = importlib.import_module(f"carriers.simulator.{MODULES[code]}")
        module.add_routes(app, state, f"/{code}", journeys=journeys)
    return app


class ManualClock:
    """A clock tests move by hand; always aware UTC."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 2, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def samples_dir() -> Path:
    """/work/shared/carrier-samples, or $TRACKER_SHARED_DIR/carrier-samples."""
    env = os.environ.get("TRACKER_SHARED_DIR")
    if env:
        return Path(env) / "carrier-samples"
    return Path(__file__).resolve().parents[3] / "shared" / "carrier-samples"


@dataclass
class Harness:
    """A simulator on loopback, its state and clock, and a client session for adapters."""

    state: SimState
    clock: ManualClock
    server: TestServer
    session: aiohttp.ClientSession

    def settings(self, code: str, *, timeout: float = 5.0, **overrides: str) -> CarrierSettings:
        creds = self.state.creds
        values = {
            "api_key": creds.api_key,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
        }
        values.update(overrides)
        return CarrierSettings(base_url=str(self.server.make_url(f"/{code}")), timeout=timeout, **values)


@asynccontextmanager
async def harness(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    codes: list[str],
    *,
    clock: ManualClock | None = None,
    journeys: JourneyLookup | None = None,
) -> AsyncIterator[Harness]:
    clock = clock or ManualClock()
    state = SimState(clock=clock)
    server = await aiohttp_server(make_sim_app(state, codes, journeys=journeys))
    async with aiohttp.ClientSession() as session:
        yield Harness(state, clock, server, session)
