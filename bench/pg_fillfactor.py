"""PostgreSQL server CPU of the two updates a poll makes, by table layout and fillfactor.

A poll cycle claims a few thousand due shipments at once (the lease: `lease_owner`,
`lease_until`, no indexed column) and later writes each result back (`next_poll_at`, which
the due index covers, and the poll counters). Since migration 0008 both go to the narrow
`poll_schedule` table; before, they went to `shipments` itself, a wide row with 17 indexes.

PostgreSQL writes an update that changes no indexed column beside the old row version,
without touching the table's indexes (a HOT update), only if the page has room for it;
shipments created together share pages and are due together, so a claim needs room for
most rows of a page at once. An update that changes an indexed column (the write-back's
due time) adds an entry to every index of the table.

This script seeds N shipments (as `bench/poll.py` does) with `poll_schedule` filled to 100%
(the default), 70% and 50%, and once more with the polling columns and the due index on
`shipments` filled to 50%, as migration 0007 left them: the baseline. It runs three
cycles of claims and write-backs as the poller's statements do (2,000 ids a statement) and
reads the CPU time of the server backend that ran them (/proc/<pid>/stat). Prints
microseconds of server CPU a shipment for each cycle's claims and write-backs, the share
of HOT updates, and the table's size. Writes bench/out/pg_fillfactor.json.

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
    backend_cpu_seconds,
    figure,
    pg_dsn,
    pg_schema,
    reachable_pg,
    write,
)
from bench.poll import prepare  # noqa: E402

FILLFACTORS = (100, 70, 50)
#: shipments' fillfactor when the polling columns were still there (migration 0007)
WIDE_FILLFACTOR = 50
CYCLES = 3
CHUNK = 2000
CLAIM = "UPDATE {table} SET lease_owner = 'bench', lease_until = now() + interval '10 minutes' WHERE {key} = ANY($1)"
WRITE_BACK = (
    "UPDATE {table} SET lease_owner = NULL, lease_until = NULL, poll_count = poll_count + 1,"
    " next_poll_at = next_poll_at + interval '4 hours', last_polled_at = now() WHERE {key} = ANY($1)"
)
#: the polling columns and the due index back on shipments, as before migration 0008
WIDE = (
    "ALTER TABLE shipments ADD COLUMN next_poll_at timestamptz, ADD COLUMN lease_owner varchar(64),"
    " ADD COLUMN lease_until timestamptz, ADD COLUMN poll_count integer NOT NULL DEFAULT 0,"
    " ADD COLUMN poll_errors integer NOT NULL DEFAULT 0, ADD COLUMN last_polled_at timestamptz",
    "UPDATE shipments SET next_poll_at = p.next_poll_at FROM poll_schedule p WHERE p.shipment_id = shipments.id",
    "CREATE INDEX ix_shipments_due ON shipments (next_poll_at) WHERE next_poll_at IS NOT NULL",
    f"ALTER TABLE shipments SET (fillfactor = {WIDE_FILLFACTOR})",
    # rewrites every page at that fillfactor, without the dead versions of the UPDATE above
    "VACUUM FULL shipments",
    "ANALYZE shipments",
)


async def measure(url: str, layout: str, fillfactor: int, total: int) -> dict[str, float]:
    """Claims and write-backs on `layout` ("schedule" or "wide") at `fillfactor`."""
    import asyncpg
    from sqlmodel import SQLModel

    import tracker.models  # noqa: F401  (registers the tables)

    schedule = SQLModel.metadata.tables["poll_schedule"]
    saved = dict(schedule.dialect_kwargs["postgresql_with"])
    if layout == "schedule":
        schedule.dialect_kwargs["postgresql_with"] = {"fillfactor": fillfactor}
    table, key = ("poll_schedule", "shipment_id") if layout == "schedule" else ("shipments", "id")
    try:
        async with pg_schema(url) as schema:
            await prepare(url, schema, total)
            if layout == "wide":
                conn = await asyncpg.connect(pg_dsn(url))
                try:
                    await conn.execute(f"SET search_path TO {schema}")
                    for statement in WIDE:
                        await conn.execute(statement)
                finally:
                    await conn.close()
            before_cycles = await _updates(url, schema, table, at_least=total if layout == "wide" else 0)
            conn = await asyncpg.connect(pg_dsn(url))
            try:
                await conn.execute(f"SET search_path TO {schema}")
                pid = await conn.fetchval("SELECT pg_backend_pid()")
                ids = [r[0] for r in await conn.fetch(f"SELECT {key} FROM {table} ORDER BY next_poll_at")]
                out: dict[str, float] = {}
                for cycle in range(1, CYCLES + 1):
                    for step, sql in (("claim", CLAIM), ("write_back", WRITE_BACK)):
                        statement = sql.format(table=table, key=key)
                        before = backend_cpu_seconds(pid)
                        for start in range(0, len(ids), CHUNK):
                            await conn.execute(statement, ids[start : start + CHUNK])
                        out[f"{step}_{cycle}"] = (backend_cpu_seconds(pid) - before) / total * 1e6
            finally:
                await conn.close()
            updates = CYCLES * 2 * total
            after_cycles = await _updates(url, schema, table, at_least=before_cycles[0] + updates)
            out["hot_share"] = (after_cycles[1] - before_cycles[1]) / updates
            out["table_mib"] = after_cycles[2] / 2**20
    finally:
        schedule.dialect_kwargs["postgresql_with"] = saved
    return out


async def _updates(url: str, schema: str, table: str, *, at_least: int) -> tuple[int, int, int]:
    """(updates, HOT updates, bytes) of `table`, once the statistics count `at_least` updates.

    A backend reports its statistics when idle for a while or as it exits, a moment after
    its client has gone: this waits for the report of the connection closed before.
    """
    import asyncpg

    conn = await asyncpg.connect(pg_dsn(url))
    try:
        for _ in range(200):
            row = await conn.fetchrow(
                "SELECT n_tup_upd, n_tup_hot_upd, pg_table_size(relid) AS size FROM pg_stat_user_tables"
                " WHERE relname = $1 AND schemaname = $2",
                table,
                schema,
            )
            if row["n_tup_upd"] >= at_least:
                return int(row["n_tup_upd"]), int(row["n_tup_hot_upd"]), int(row["size"])
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise RuntimeError(f"the statistics of {table} never counted {at_least} updates")


def cycle_mean(run: dict[str, float], step: str) -> float:
    return sum(run[f"{step}_{c}"] for c in range(1, CYCLES + 1)) / CYCLES


async def main(args: argparse.Namespace) -> int:
    url = await reachable_pg(args.database_url)
    if url is None:
        return 0
    total = 5_000 if args.quick else 20_000
    runs = {f"schedule_fillfactor_{ff}": await measure(url, "schedule", ff, total) for ff in FILLFACTORS}
    runs[f"shipments_fillfactor_{WIDE_FILLFACTOR}"] = await measure(url, "wide", WIDE_FILLFACTOR, total)
    baseline = f"shipments_fillfactor_{WIDE_FILLFACTOR}"
    for name, run in runs.items():
        claims = ", ".join(f"{run[f'claim_{c}']:.1f}" for c in range(1, CYCLES + 1))
        writes = ", ".join(f"{run[f'write_back_{c}']:.1f}" for c in range(1, CYCLES + 1))
        print(
            f"{name}: claims {claims} us a shipment; write-backs {writes} us;"
            f" {run['hot_share']:.0%} of updates HOT; table {run['table_mib']:.1f} MiB"
        )
    figures = []
    for name, run in runs.items():
        # the layout before migration 0008 is the baseline of the others
        base = None if name == baseline else baseline
        for step in ("claim", "write_back"):
            figures.append(
                figure(
                    f"pg_{step}_server_cpu_{name}",
                    cycle_mean(run, step),
                    "us/shipment",
                    baseline=base,
                    baseline_value=None if base is None else cycle_mean(runs[baseline], step),
                )
            )
        figures.append(figure(f"pg_hot_update_share_{name}", run["hot_share"], "share"))
        figures.append(figure(f"pg_table_size_{name}", run["table_mib"], "MiB"))
    write("pg_fillfactor", figures, shipments=total, cycles=CYCLES)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
