"""PostgreSQL server CPU of the two updates a poll makes to a shipment row, by fillfactor.

A poll cycle claims a few thousand due shipments at once (the lease: `lease_owner`,
`lease_until`, no indexed column) and later writes each result back (`next_poll_at`,
which the due index covers, and the rest). PostgreSQL can write the claim's new row
version beside the old one, without touching the table's indexes (a HOT update), only if
the page has room for it; shipments created together share pages and are due together,
so a claim needs room for most rows of a page at once.

This script seeds N shipments (as `bench/poll.py` does) in tables filled to 100% (the
default), 70% and 50%, then runs three cycles of claims and write-backs as the poller's
statements do (2,000 ids a statement) and reads the CPU time of the server backend that ran
them (/proc/<pid>/stat). Prints microseconds of server CPU a shipment for each cycle's
claims and write-backs, the share of HOT updates, and the table's size; the default
fillfactor, measured in the same run, is the baseline. Writes bench/out/pg_fillfactor.json.

    .venv/bin/python bench/pg_fillfactor.py [--quick] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    DEFAULT_PG,
    backend_cpu_seconds,
    figure,
    pg_available,
    pg_dsn,
    pg_schema,
    write,
)
from bench.poll import prepare  # noqa: E402

FILLFACTORS = (100, 70, 50)
CYCLES = 3
CHUNK = 2000
CLAIM = (
    "UPDATE shipments SET lease_owner = 'bench', lease_until = now() + interval '10 minutes'"
    " WHERE id = ANY($1::varchar[])"
)
WRITE_BACK = (
    "UPDATE shipments SET lease_owner = NULL, lease_until = NULL, poll_count = poll_count + 1,"
    " next_poll_at = next_poll_at + interval '4 hours', last_polled_at = now() WHERE id = ANY($1::varchar[])"
)


async def measure(url: str, fillfactor: int, total: int) -> dict[str, float]:
    import asyncpg
    from sqlmodel import SQLModel

    import tracker.models  # noqa: F401  (registers the tables)

    shipments = SQLModel.metadata.tables["shipments"]
    shipments.dialect_kwargs["postgresql_with"] = {"fillfactor": fillfactor}
    async with pg_schema(url) as schema:
        await prepare(url, schema, total)
        conn = await asyncpg.connect(pg_dsn(url))
        try:
            await conn.execute(f"SET search_path TO {schema}")
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            ids = [r[0] for r in await conn.fetch("SELECT id FROM shipments ORDER BY next_poll_at")]
            out: dict[str, float] = {}
            for cycle in range(1, CYCLES + 1):
                for step, sql in (("claim", CLAIM), ("write_back", WRITE_BACK)):
                    before = backend_cpu_seconds(pid)
                    for start in range(0, len(ids), CHUNK):
                        await conn.execute(sql, ids[start : start + CHUNK])
                    out[f"{step}_{cycle}"] = (backend_cpu_seconds(pid) - before) / total * 1e6
            # the statistics collector reports a moment later
            await asyncio.sleep(1)
            row = await conn.fetchrow(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'shipments'"
                " AND schemaname = $1",
                schema,
            )
            out["hot_share"] = row["n_tup_hot_upd"] / max(1, row["n_tup_upd"])
            out["table_mib"] = await conn.fetchval("SELECT pg_table_size('shipments')") / 2**20
        finally:
            await conn.close()
    return out


def cycle_mean(run: dict[str, float], step: str) -> float:
    return sum(run[f"{step}_{c}"] for c in range(1, CYCLES + 1)) / CYCLES


async def main(args: argparse.Namespace) -> int:
    url = args.database_url or DEFAULT_PG
    if not await pg_available(url):
        print(f"PostgreSQL at {url} not reachable: nothing measured")
        return 0
    total = 5_000 if args.quick else 20_000
    runs = {ff: await measure(url, ff, total) for ff in FILLFACTORS}
    for ff, run in runs.items():
        claims = ", ".join(f"{run[f'claim_{c}']:.1f}" for c in range(1, CYCLES + 1))
        writes = ", ".join(f"{run[f'write_back_{c}']:.1f}" for c in range(1, CYCLES + 1))
        print(
            f"fillfactor {ff}: claims {claims} us a shipment; write-backs {writes} us;"
            f" {run['hot_share']:.0%} of updates HOT; table {run['table_mib']:.1f} MiB"
        )
    figures = []
    for ff in FILLFACTORS:
        run = runs[ff]
        # the default fillfactor is the baseline of the others
        baseline = None if ff == 100 else "fillfactor_100"
        for step in ("claim", "write_back"):
            figures.append(
                figure(
                    f"pg_{step}_server_cpu_fillfactor_{ff}",
                    cycle_mean(run, step),
                    "us/shipment",
                    baseline=baseline,
                    baseline_value=None if baseline is None else cycle_mean(runs[100], step),
                )
            )
        figures.append(figure(f"pg_shipments_hot_update_share_fillfactor_{ff}", run["hot_share"], "share"))
        figures.append(figure(f"pg_shipments_table_size_fillfactor_{ff}", run["table_mib"], "MiB"))
    write("pg_fillfactor", figures, shipments=total, cycles=CYCLES)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
