"""A worker process SIGKILLed mid-batch loses nothing and duplicates nothing.

The simulator runs in the test process on loopback, slowed down so batches are in flight;
the worker is a real child process. Once the simulator has answered a few tracking calls
the child is killed; a second worker whose clock is past the lease expiry finishes the job.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlmodel import col, select

from carriers.simulator import SimState, create_app, journey_for
from carriers.simulator.state import Faults
from tests.integration.poll_worker import expected_messages, run, served_steps, worker_settings
from tracker.db import create_sessionmaker, engine_for
from tracker.models import PollSchedule, Shipment, TrackingEvent, WebhookMessage
from tracker.settings import DatabaseSettings
from tracker.store import sellers as seller_store
from tracker.store import tracking as tracking_store

WORKER = Path(__file__).with_name("poll_worker.py")
NOW = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)
LEASE = 120.0


def _numbers() -> list[tuple[str, str]]:
    return [(f"FX71{i:05d}4242", "fedex") for i in range(120)] + [(f"YW71{i:05d}4242CN", "yanwen") for i in range(80)]


async def test_killed_worker_loses_and_duplicates_nothing(database: DatabaseSettings, aiohttp_server: Any) -> None:
    state = SimState(clock=lambda: NOW, faults=Faults(latency_ms=300))
    answered = asyncio.Event()
    tracked = Counter[str]()

    @web.middleware
    async def count_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if "track" in request.path or "tracking" in request.path:
            tracked["done"] += 1
            if tracked["done"] >= 2:
                answered.set()
        return response

    sim = create_app(state, ["fedex", "yanwen"])
    sim.middlewares.insert(0, count_answers)
    server = await aiohttp_server(sim)
    sim_url = str(server.make_url(""))

    settings = worker_settings(database.url, database.schema_name, lease_seconds=LEASE)
    engine = engine_for(settings.database)
    sm = create_sessionmaker(engine)
    numbers = _numbers()
    async with sm() as session:
        seller = await seller_store.create_seller(session, "Crash Test", now=NOW)
        await tracking_store.insert_bulk_shipments(session, seller.id, [(n, c, [c], "US") for n, c in numbers], now=NOW)
        await session.commit()

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        "--db-url",
        database.url,
        "--schema",
        database.schema_name,
        "--sim-url",
        sim_url,
        "--now",
        NOW.isoformat(),
        "--concurrency",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.wait_for(answered.wait(), timeout=60)
    finally:
        child.kill()
        await child.wait()
    assert child.returncode == -9

    async with sm() as session:
        leased = list(
            await session.exec(select(PollSchedule.shipment_id).where(col(PollSchedule.lease_owner).is_not(None)))
        )
        polled_before = len(
            list(await session.exec(select(PollSchedule.shipment_id).where(PollSchedule.poll_count > 0)))
        )
    assert leased, "the worker was killed after it had finished: nothing was in flight"
    assert polled_before < len(numbers)

    # a second worker, later than the dead worker's leases, takes over; no latency now
    state.faults = Faults()
    totals = await run(settings, sim_url, NOW + timedelta(seconds=LEASE + 1))
    assert totals["claimed"] == len(leased)

    async with sm() as session:
        shipments = {s.tracking_number: s for s in await session.exec(select(Shipment))}
        schedules = {p.shipment_id: p for p in await session.exec(select(PollSchedule))}
        events = Counter(list(await session.exec(select(TrackingEvent.shipment_id))))
        messages: dict[str, list[str]] = {}
        for sid, kind in await session.exec(select(WebhookMessage.shipment_id, WebhookMessage.event_type)):
            messages.setdefault(str(sid), []).append(kind)
    await engine.dispose()

    for number, carrier in numbers:
        shipment = shipments[number]
        journey = journey_for(number, carrier, state)
        assert journey is not None
        steps = served_steps(journey, carrier, NOW)
        assert schedules[shipment.id].poll_count == 1, number
        assert schedules[shipment.id].lease_owner is None
        assert events[shipment.id] == len(steps), number
        assert sorted(messages.get(shipment.id, [])) == expected_messages(steps, shipment.eta_latest is not None), (
            number
        )
