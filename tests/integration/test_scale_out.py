"""Three worker processes share 5,000 due shipments on PostgreSQL: each is polled exactly once."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, func, select

from carriers.simulator import SimState, create_app
from tests.integration.poll_worker import worker_settings
from tracker.db import create_sessionmaker, engine_for
from tracker.models import PollSchedule
from tracker.settings import DatabaseSettings
from tracker.store import sellers as seller_store
from tracker.store import tracking as tracking_store

WORKER = Path(__file__).with_name("poll_worker.py")
# early in the journeys: few scans each, so the run measures coordination, not parsing
NOW = datetime(2026, 1, 7, 0, 0, tzinfo=UTC)
TOTAL = 5000
WORKERS = 3


def _numbers() -> list[tuple[str, str]]:
    out = []
    for i in range(TOTAL):
        carrier = ("fedex", "17track", "yanwen")[i % 3]
        prefix = {"fedex": "FX", "17track": "LP", "yanwen": "YW"}[carrier]
        out.append((f"{prefix}72{i:05d}4242", carrier))
    return out


async def test_three_workers_poll_every_shipment_exactly_once(
    backend: str, database: DatabaseSettings, aiohttp_server: Any
) -> None:
    if backend != "postgresql":
        pytest.skip("scale-out runs on PostgreSQL (set TRACKER_TEST_DATABASE_URL)")
    state = SimState(clock=lambda: NOW)
    server = await aiohttp_server(create_app(state, ["fedex", "17track", "yanwen"]))
    settings = worker_settings(database.url, database.schema_name)
    engine = engine_for(settings.database)
    sm = create_sessionmaker(engine)
    numbers = _numbers()
    async with sm() as session:
        seller = await seller_store.create_seller(session, "Scale Test", now=NOW)
        await tracking_store.insert_bulk_shipments(session, seller.id, [(n, c, [c], "US") for n, c in numbers], now=NOW)
        await session.commit()

    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            "--db-url",
            database.url,
            "--schema",
            database.schema_name,
            "--sim-url",
            str(server.make_url("")),
            "--now",
            NOW.isoformat(),
            "--claim-limit",
            "300",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(WORKERS)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(c.communicate() for c in children)), timeout=120)
    assert [c.returncode for c in children] == [0] * WORKERS, [err.decode()[-2000:] for _, err in outputs]
    totals = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]

    assert sum(t["claimed"] for t in totals) == TOTAL
    assert all(t["claimed"] > 0 for t in totals), totals  # the work was shared
    looked_up = {(carrier, number): state.lookups[(carrier, number)] for number, carrier in numbers}
    assert set(looked_up.values()) == {1}
    assert sum(state.lookups.values()) == TOTAL
    async with sm() as session:
        polled = (
            await session.exec(
                select(func.count())
                .select_from(PollSchedule)
                .where(PollSchedule.poll_count == 1, col(PollSchedule.lease_owner).is_(None))
            )
        ).one()
    await engine.dispose()
    assert polled == TOTAL
