"""PostgreSQL: CPU to store a poll's event rows by COPY, against the INSERT over arrays.

A first poll stores about a dozen events a shipment, and a worker writes the events of a
few thousand shipments in one transaction (`tracking.insert_events`). Such a batch goes in
by COPY, in a savepoint (`bulk.insert_tuples`); the baseline is the INSERT over `unnest` of
one array per column with ON CONFLICT DO NOTHING, which smaller batches still use and which
every batch used before. This script seeds N shipments (as `bench/poll.py` does), makes
twelve event rows for each, and stores them all in one transaction both ways, four rounds
(the first not counted; the table is emptied before each). It prints, per event row, the
server backend's CPU (/proc/<pid>/stat), this process's CPU (asyncpg encoding the values,
and on the INSERT path checking every array element), and the wall time. Writes
bench/out/pg_event_insert.json.

    .venv/bin/python bench/pg_event_insert.py [--quick] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import backend_cpu_seconds, figure, pg_schema, reachable_pg, write  # noqa: E402
from bench.poll import prepare  # noqa: E402

EVENTS_A_SHIPMENT = 12


def event_rows(shipment_ids: list[str], now: datetime) -> list[tuple[Any, ...]]:
    """Rows in `tracking.EVENT_COLUMNS` order, shaped like a carrier's scans."""
    rng = random.Random(7)
    rows = []
    for sid in shipment_ids:
        for k in range(EVENTS_A_SHIPMENT):
            at = now - timedelta(minutes=rng.randrange(60, 30_000))
            rows.append(
                (
                    sid,
                    f"{rng.getrandbits(256):064x}",
                    at,
                    "local_offset",
                    at.strftime("%Y-%m-%dT%H:%M:%S"),
                    480,
                    "in_transit",
                    "in_transit_departed",
                    f"CODE{k}",
                    f"Departed from sorting facility {k}",
                    "Shenzhen",
                    "Guangdong",
                    "CN",
                    None,
                    "fedex",
                    now,
                )
            )
    return rows


async def main(args: argparse.Namespace) -> int:
    from sqlalchemy import text

    from tracker.db import engine_for
    from tracker.settings import DatabaseSettings
    from tracker.store import bulk, tracking

    url = await reachable_pg(args.database_url)
    if url is None:
        return 0
    total = 500 if args.quick else 2_000
    copy_min = bulk.COPY_MIN_ROWS
    results: dict[str, list[tuple[float, float, float]]] = {"insert": [], "copy": []}
    async with pg_schema(url) as schema:
        await prepare(url, schema, total)
        engine = engine_for(DatabaseSettings(url=url, schema_name=schema))
        async with engine.connect() as conn:
            ids = list((await conn.execute(text("SELECT id FROM shipments"))).scalars())
        rows = event_rows(ids, datetime.now(UTC))
        try:
            for round_ in range(4):
                for way in ("insert", "copy"):
                    # the INSERT is what batches under the COPY threshold take
                    bulk.COPY_MIN_ROWS = copy_min if way == "copy" else len(rows) + 1
                    async with engine.connect() as conn:
                        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                        await conn.execute(text("TRUNCATE tracking_events"))
                        await conn.commit()
                        server, worker, wall = backend_cpu_seconds(pid), time.process_time(), time.perf_counter()
                        await tracking.insert_events(conn, rows)
                        await conn.commit()
                        server = backend_cpu_seconds(pid) - server
                        worker, wall = time.process_time() - worker, time.perf_counter() - wall
                        stored = (await conn.execute(text("SELECT count(*) FROM tracking_events"))).scalar_one()
                    if stored != len(rows):
                        raise RuntimeError(f"{way} stored {stored} of {len(rows)} rows")
                    if round_:
                        per_row = 1e6 / len(rows)
                        results[way].append((server * per_row, worker * per_row, wall * per_row))
        finally:
            bulk.COPY_MIN_ROWS = copy_min
            await engine.dispose()
    figures = []
    medians = {way: [statistics.median(r[i] for r in runs) for i in range(3)] for way, runs in results.items()}
    print(f"{len(rows):,} event rows in one transaction, median of three rounds, per row:")
    for way, (server, worker, wall) in medians.items():
        print(f"  {way:<6} server CPU {server:6.2f} us, worker CPU {worker:6.2f} us, wall {wall:6.2f} us")
    for i, what in enumerate(("server_cpu", "worker_cpu", "wall")):
        base = medians["insert"][i]
        figures.append(figure(f"pg_event_insert_{what}_per_row", base, "us"))
        figures.append(
            figure(
                f"pg_event_copy_{what}_per_row",
                medians["copy"][i],
                "us",
                baseline=f"pg_event_insert_{what}_per_row",
                baseline_value=base,
            )
        )
    write("pg_event_insert", figures, rows=len(rows))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 shipments instead of 2,000")
    parser.add_argument("--database-url")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
