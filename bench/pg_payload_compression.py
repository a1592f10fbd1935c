"""PostgreSQL server CPU to store outbox payloads, compressed with pglz (the default) or LZ4.

A first poll writes about three webhook messages a shipment, and its `shipment.updated`
lists every new event: a few KB of JSON, past the 2 KB at which PostgreSQL compresses a
value before storing it. This script polls N shipments (the simulators on loopback, one
worker, as `bench/poll.py` does) to get the payloads a real poll writes, then inserts
them as the poller does (one statement over `unnest`, 500 rows each) into tables whose
payload column uses pglz, LZ4, or no compression (EXTERNAL). The figure is the CPU time
of the server backend that ran the inserts (/proc/<pid>/stat), per message, the best of
three rounds; pglz, measured in the same run, is the baseline. Also prints the space each
table takes (the payloads inserted over again up to 60,000 rows). Writes bench/out/pg_payload_compression.json.

    .venv/bin/python bench/pg_payload_compression.py [--quick] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    backend_cpu_seconds,
    figure,
    pg_dsn,
    pg_schema,
    reachable_pg,
    write,
)
from bench.poll import SIMULATOR_NICE, CpuShare, prepare, run_workers, start_simulators, wait_up  # noqa: E402

BATCH = 500
ROUNDS = 3
#: the backend's CPU time counts in clock ticks (10 ms): each measurement inserts the
#: payloads over again up to this many rows, so that it spans some hundred ticks
ROWS = 60_000
#: (label, what the payload column is given after CREATE TABLE)
STORAGES = (
    ("pglz", "SET COMPRESSION pglz"),
    ("lz4", "SET COMPRESSION lz4"),
    ("uncompressed", "SET STORAGE EXTERNAL"),
)


async def polled_payloads(url: str, schema: str, shipments: int) -> list[str]:
    import asyncpg

    urls, sims = start_simulators(SIMULATOR_NICE)
    try:
        for u in urls.values():
            await wait_up(u)
        await prepare(url, schema, shipments)
        run_workers(url, schema, urls, 1, shipments, CpuShare(sims), overlap=False)
    finally:
        for p in sims:
            p.terminate()
            p.wait()
    conn = await asyncpg.connect(pg_dsn(url))
    try:
        return [r[0] for r in await conn.fetch(f"SELECT payload FROM {schema}.webhook_messages")]
    finally:
        await conn.close()


async def insert_cpu(url: str, schema: str, payloads: list[str]) -> dict[str, tuple[float, int]]:
    """label -> (best server CPU seconds to insert every payload once, bytes of the table
    holding every payload `ROWS / len(payloads)` times over)."""
    import asyncpg

    rows = payloads * -(-ROWS // len(payloads))
    conn = await asyncpg.connect(pg_dsn(url))
    best: dict[str, tuple[float, int]] = {}
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        for _ in range(ROUNDS):
            for label, storage in STORAGES:
                table = f"{schema}.payloads_{label}"
                await conn.execute(f"DROP TABLE IF EXISTS {table}")
                await conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, payload text NOT NULL)")
                await conn.execute(f"ALTER TABLE {table} ALTER COLUMN payload {storage}")
                before = backend_cpu_seconds(pid)
                for start in range(0, len(rows), BATCH):
                    await conn.execute(
                        f"INSERT INTO {table} (payload) SELECT * FROM unnest($1::text[])",
                        rows[start : start + BATCH],
                    )
                seconds = (backend_cpu_seconds(pid) - before) / len(rows) * len(payloads)
                size = int(await conn.fetchval(f"SELECT pg_total_relation_size('{table}')"))
                if label not in best or seconds < best[label][0]:
                    best[label] = (seconds, size)
    finally:
        await conn.close()
    return best


async def main(args: argparse.Namespace) -> int:
    url = await reachable_pg(args.database_url)
    if url is None:
        return 0
    import asyncpg

    from tracker.models.webhook import LZ4_AVAILABLE

    probe = await asyncpg.connect(pg_dsn(url))
    lz4 = await probe.fetchval(LZ4_AVAILABLE)
    await probe.close()
    if not lz4:
        print("this PostgreSQL server has no LZ4: nothing to compare")
        return 0
    shipments = 1_000 if args.quick else 5_000
    async with pg_schema(url) as schema:
        payloads = await polled_payloads(url, schema, shipments)
        best = await insert_cpu(url, schema, payloads)
    count = len(payloads)
    average = sum(len(p.encode()) for p in payloads) / count
    compressed = sum(1 for p in payloads if len(p.encode()) > 2000)
    print(
        f"{count:,} payloads from {shipments:,} first polls: {average:,.0f} bytes on average,"
        f" {compressed / count:.0%} past 2,000 bytes"
    )
    pglz_us = best["pglz"][0] / count * 1e6
    figures = []
    for label, _ in STORAGES:
        seconds, size = best[label]
        figures.append(
            figure(
                f"pg_payload_insert_server_cpu_{label}",
                seconds / count * 1e6,
                "us/message",
                baseline=None if label == "pglz" else "pg_payload_insert_server_cpu_pglz",
                baseline_value=None if label == "pglz" else pglz_us,
            )
        )
        figures.append(figure(f"pg_payload_table_size_{label}", size / 2**20, "MiB"))
    write("pg_payload_compression", figures, payloads=count, shipments=shipments, rounds=ROUNDS)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
