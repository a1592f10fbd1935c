"""Webhook dispatch: deliveries per second and latency from outbox commit to receipt.

100 endpoints on one loopback aiohttp receiver. Three measurements in one run:

* throughput: N messages are committed to the outbox, then the dispatcher drains them
  (claim with lease, sign, POST, record each attempt);
* baseline: the same number of signed POSTs from a bare aiohttp client loop with the same
  concurrency (100 endpoints x concurrency_per_endpoint), no database at all;
* latency: messages committed at the target rate (1,000/s) while the dispatcher runs;
  p50/p99 of commit-to-receipt time, and the rate the producer actually committed.

Writes bench/out/webhooks.json. SQLite in a temp file by default; `--database-url` for PostgreSQL.

    .venv/bin/python bench/webhooks.py [--quick] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from tracker.clock import utc_now
from tracker.db import SessionMaker, create_engine, create_sessionmaker, writing
from tracker.models import WebhookEndpoint
from tracker.settings import WebhookSettings
from tracker.store import outbox, sellers, tracking
from tracker.store import webhooks as store
from tracker.webhooks import signing
from tracker.webhooks.dispatcher import drain
from tracker.webhooks.sender import make_session

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "webhooks.json"
ENDPOINTS = 100
SETTINGS = WebhookSettings(allow_loopback=True)
CONCURRENCY = ENDPOINTS * SETTINGS.concurrency_per_endpoint
# The throughput target: latency is measured while messages arrive at this rate.
TARGET_LOAD = 1000.0


@dataclass
class Receiver:
    arrived: dict[str, float] = field(default_factory=dict)
    count: int = 0
    target: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self, target: int) -> None:
        self.arrived.clear()
        self.count = 0
        self.target = target
        self.done = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived.setdefault(request.headers["webhook-id"], time.perf_counter())
        self.count += 1
        if self.count >= self.target:
            self.done.set()
        return web.Response(text="ok")


async def start_receiver(rx: Receiver) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_post("/e/{n}", rx.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def setup_db(url: str | None, tmp: Path) -> tuple[AsyncEngine, str]:
    """Create the tables in a temp SQLite file or a fresh PostgreSQL schema."""
    schema = ""
    if url is None:
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        schema = "bench_" + secrets.token_hex(4)
        admin = create_engine(url)
        async with admin.begin() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        await admin.dispose()
    engine = create_engine(url, schema=schema, pool_size=10)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    return engine, schema


async def make_endpoints(sm: SessionMaker, port: int) -> tuple[str, list[WebhookEndpoint]]:
    async with sm() as session:
        seller = await sellers.create_seller(session, "Bench Seller", now=utc_now())
        endpoints = []
        for n in range(ENDPOINTS):
            endpoint = await store.create_endpoint(
                session, seller.id, url=f"http://127.0.0.1:{port}/e/{n}", event_types=[], description="", now=utc_now()
            )
            endpoints.append(endpoint)
        await session.commit()
    return seller.id, endpoints


async def commit_messages(
    sm: SessionMaker,
    seller_id: str,
    endpoints: list[WebhookEndpoint],
    count: int,
    start: int,
    committed: dict[str, float],
) -> None:
    """Commit `count` messages, each to one endpoint (round robin), in one transaction.

    The rows go through the outbox's bulk path, as the polling engine (the producer of
    most messages) writes them, so that the producer keeps up with the offered rate in
    the event loop it shares with the dispatcher and the receiver.
    """
    # on SQLite the producer takes the write lock at BEGIN, as every writer does
    async with writing(sm) as session:
        now = utc_now()
        messages: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        for n in range(start, start + count):
            message, rows = outbox.message_rows(
                seller_id=seller_id,
                event_type="endpoint.test",
                data={"n": n},
                now=now,
                endpoints=[endpoints[n % len(endpoints)]],
                filter_by_type=False,
            )
            messages.append(message)
            deliveries += rows
        await tracking.insert_outbox(await session.connection(), messages, deliveries)
        await session.commit()
    at = time.perf_counter()
    committed.update((m["id"], at) for m in messages)


async def dispatcher_loop(engine: AsyncEngine, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
    owner = "bench-" + secrets.token_hex(3)
    while not stop.is_set():
        sent = await drain(engine, http, clock=utc_now, settings=SETTINGS, owner=owner, rand=random.random)
        if sent == 0:
            await asyncio.sleep(0.002)  # idle poll, like the scheduler tick but tighter


async def bare_loop(port: int, count: int, rx: Receiver) -> float:
    """The baseline: signed POSTs from a plain aiohttp loop, same concurrency; deliveries/s."""
    secret = signing.new_secret()
    body = json.dumps({"type": "endpoint.test", "timestamp": utc_now().isoformat(), "data": {}}).encode()
    gate = asyncio.Semaphore(CONCURRENCY)
    rx.reset(count)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as http:

        async def one(n: int) -> None:
            async with gate:
                headers = signing.headers(secret, f"msg_bare{n}", utc_now(), body)
                async with http.post(f"http://127.0.0.1:{port}/e/{n % ENDPOINTS}", data=body, headers=headers) as r:
                    await r.read()

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        return count / (time.perf_counter() - started)


async def throughput(
    sm: SessionMaker,
    engine: AsyncEngine,
    http: aiohttp.ClientSession,
    rx: Receiver,
    seller_id: str,
    endpoints: list[WebhookEndpoint],
    count: int,
) -> float:
    committed: dict[str, float] = {}
    for start in range(0, count, 1000):
        await commit_messages(sm, seller_id, endpoints, min(1000, count - start), start, committed)
    rx.reset(count)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(dispatcher_loop(engine, http, stop))
    await asyncio.wait_for(rx.done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return count / elapsed


async def latency(
    sm: SessionMaker,
    engine: AsyncEngine,
    http: aiohttp.ClientSession,
    rx: Receiver,
    seller_id: str,
    endpoints: list[WebhookEndpoint],
    rate: float,
    seconds: float,
    offset: int,
) -> tuple[list[float], float]:
    """Commit at `rate` messages/s, every 20 ms all the messages due by then.

    The producer does not slow down with the dispatcher: a commit that takes longer is
    followed by a bigger one. Returns the commit-to-receipt times in seconds and the rate
    the producer achieved.
    """
    committed: dict[str, float] = {}
    total = max(1, round(rate * seconds))
    rx.reset(total)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher_loop(engine, http, stop))
    started = time.perf_counter()
    sent = 0
    for tick in itertools.count(1):
        await asyncio.sleep(max(0.0, started + tick * 0.02 - time.perf_counter()))
        due = min(total, round(rate * (time.perf_counter() - started)))
        if due > sent:
            await commit_messages(sm, seller_id, endpoints, due - sent, offset + sent, committed)
            sent = due
        if sent == total:
            break
    achieved = len(committed) / (time.perf_counter() - started)
    await asyncio.wait_for(rx.done.wait(), timeout=600)
    stop.set()
    await task
    return [rx.arrived[i] - at for i, at in committed.items()], achieved


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


async def run(quick: bool, database_url: str | None) -> list[dict[str, Any]]:
    count = 3000 if quick else 20000
    seconds = 3.0 if quick else 10.0
    rx = Receiver()
    runner, port = await start_receiver(rx)
    with tempfile.TemporaryDirectory() as tmp:
        engine, schema = await setup_db(database_url, Path(tmp))
        sm = create_sessionmaker(engine)
        http = make_session(allow_loopback=True)
        try:
            seller_id, endpoints = await make_endpoints(sm, port)
            await bare_loop(port, min(count, 1000), rx)  # warm both sides' connection pools
            bare = await bare_loop(port, count, rx)
            rate = await throughput(sm, engine, http, rx, seller_id, endpoints, count)
            waits, achieved = await latency(
                sm, engine, http, rx, seller_id, endpoints, TARGET_LOAD, seconds, offset=count
            )
        finally:
            await http.close()
            if schema:
                async with engine.begin() as conn:
                    await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            await engine.dispose()
            await runner.cleanup()
    backend = "postgresql" if database_url else "sqlite"
    p50, p99 = percentile(waits, 0.5) * 1000, percentile(waits, 0.99) * 1000
    print(f"backend            {backend}, {ENDPOINTS} endpoints, concurrency {CONCURRENCY}")
    print(f"dispatcher         {rate:10.1f} deliveries/s ({count} messages)")
    print(f"bare aiohttp loop  {bare:10.1f} POSTs/s      ratio {rate / bare:.2f}")
    print(f"latency at {TARGET_LOAD:.0f}/s offered, {achieved:.0f}/s committed")
    print(f"                   p50 {p50:.1f} ms   p99 {p99:.1f} ms   ({len(waits)} messages)")
    return [
        {
            "metric": f"webhook_deliveries_per_s.{backend}",
            "value": round(rate, 1),
            "unit": "deliveries/s",
            "baseline": "bare aiohttp loop of signed POSTs, same concurrency",
            "baseline_value": round(bare, 1),
            "ratio": round(rate / bare, 3),
        },
        {"metric": f"webhook_commit_to_receipt_p50.{backend}", "value": round(p50, 1), "unit": "ms"},
        {"metric": f"webhook_commit_to_receipt_p99.{backend}", "value": round(p99, 1), "unit": "ms"},
        {"metric": f"webhook_latency_offered_load.{backend}", "value": TARGET_LOAD, "unit": "messages/s"},
        {"metric": f"webhook_latency_committed_load.{backend}", "value": round(achieved, 1), "unit": "messages/s"},
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller counts (< 1 minute)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: a temp SQLite file)")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.quick, args.database_url))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"figures": figures}, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
