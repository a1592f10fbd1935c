"""Batch shipment creation through the API, against a raw SQL INSERT of the same rows.

Both run in the same process on the same database (a temporary SQLite file, then a fresh
PostgreSQL schema when the server answers), so the ratio says what the API layer costs:
validation, detection, order checks, the outbox message and notification row per shipment,
idempotency and JSON on the wire.

    python bench/create.py [--quick] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import insert
from sqlmodel import SQLModel

from bench._common import DEFAULT_PG, figure, pg_available, pg_schema, write
from tracker.app import create_app
from tracker.db import create_sessionmaker, engine_for
from tracker.models import Order, PollSchedule, Shipment, new_id
from tracker.settings import DatabaseSettings, Settings
from tracker.store import sellers
from tracker.store.tracking import schedule_row

BATCH = 100
CONCURRENCY = 4


def body(i: int, run: str) -> dict[str, Any]:
    return {
        "tracking_number": f"BENCH{run}{i:09d}",
        "order_number": f"{run}-{i:09d}",
        "carrier": ("dhl", "ups", "fedex", "usps", "17track")[i % 5],
        "customer": {"name": "Bench Customer", "email": f"c{i}@example.com", "locale": "en"},
        "destination": {"country": ("US", "DE", "FR", "GB", "JP")[i % 5], "postcode": "10001", "city": "City"},
    }


async def through_api(db: DatabaseSettings, n: int) -> float:
    settings = Settings.model_validate(
        {"database": db.model_dump(), "email": {"enabled": False}, "logging": {"level": "WARNING"}}
    )
    app = create_app(settings)
    server = TestServer(app)
    await server.start_server()
    try:
        async with create_sessionmaker(engine_for(db))() as session:
            seller = await sellers.create_seller(session, "Bench", now=datetime.now(UTC))
            key = await sellers.create_key(session, seller.id, sellers.SCOPES, now=datetime.now(UTC))
            await session.commit()
        headers = {"Authorization": f"Bearer {key.api_key}"}
        batches = [[body(i, "api") for i in range(start, min(start + BATCH, n))] for start in range(0, n, BATCH)]
        queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        for b in batches:
            queue.put_nowait(b)
        url = str(server.make_url("/v1/shipments/batch"))

        async with aiohttp.ClientSession() as http:

            async def worker() -> None:
                while not queue.empty():
                    batch = queue.get_nowait()
                    async with http.post(url, json={"shipments": batch}, headers=headers) as resp:
                        if resp.status != 201:
                            raise RuntimeError(f"batch failed: {resp.status} {await resp.text()}")
                        await resp.read()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            elapsed = time.perf_counter() - started
    finally:
        await server.close()
    return n / elapsed


async def raw_insert(db: DatabaseSettings, n: int) -> float:
    """The floor: the same rows written with bulk INSERTs, no API, no outbox."""
    engine = engine_for(db)
    now = datetime.now(UTC)
    async with create_sessionmaker(engine)() as session:
        seller = await sellers.create_seller(session, "Raw", now=now)
        await session.commit()
    rows = [body(i, "raw") for i in range(n)]
    started = time.perf_counter()
    async with engine.begin() as conn:
        for start in range(0, n, BATCH):
            chunk = rows[start : start + BATCH]
            orders = [
                {
                    "id": new_id("ord"),
                    "seller_id": seller.id,
                    "order_number": r["order_number"],
                    "customer_key": "x" * 64,
                    "items": [],
                    "created_at": now,
                }
                for r in chunk
            ]
            await conn.execute(insert(Order), orders)
            shipments = [
                {
                    "id": new_id("shp"),
                    "seller_id": seller.id,
                    "order_id": o["id"],
                    "order_number": r["order_number"],
                    "tracking_number": r["tracking_number"],
                    "carrier": r["carrier"],
                    "carrier_candidates": [r["carrier"]],
                    "public_token": new_id("tok"),
                    "customer_name": r["customer"]["name"],
                    "customer_email": r["customer"]["email"],
                    "dest_country": r["destination"]["country"],
                    "dest_postcode": "10001",
                    "created_at": now,
                    "updated_at": now,
                }
                for r, o in zip(chunk, orders, strict=True)
            ]
            await conn.execute(insert(Shipment), shipments)
            await conn.execute(insert(PollSchedule), [schedule_row(s["id"], now) for s in shipments])
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return n / elapsed


async def prepare(db: DatabaseSettings) -> None:
    engine = engine_for(db)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()


async def run_backend(name: str, db: DatabaseSettings, n: int) -> list[dict[str, Any]]:
    await prepare(db)
    raw = await raw_insert(db, n)
    api = await through_api(db, n)
    return [
        figure(f"create_via_api_{name}", api, "shipments/s", baseline=f"raw_sql_insert_{name}", baseline_value=raw),
        figure(f"raw_sql_insert_{name}", raw, "shipments/s"),
    ]


async def main_async(args: argparse.Namespace) -> int:
    n = 2_000 if args.quick else 20_000
    figures: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        figures += await run_backend("sqlite", DatabaseSettings(url=f"sqlite:///{tmp}/bench.db"), n)
    if await pg_available(args.database_url):
        async with pg_schema(args.database_url) as schema:
            figures += await run_backend("postgresql", DatabaseSettings(url=args.database_url, schema_name=schema), n)
    else:
        print("PostgreSQL not reachable: skipped")
    write("create", figures, shipments=n, batch=BATCH, concurrency=CONCURRENCY)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url", default=DEFAULT_PG)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
