"""How much faster two PostgreSQL workers poll than one, with and without a poll's rows.

`bench/poll.py` compares two worker processes with one on PostgreSQL. On a machine whose
cores also run the server and the simulators, a second worker can only use what the
first one left idle, and how much that is depends on how much CPU the server and the
simulators spend on each refresh. This script measures first polls of N shipments with
one and with two workers, three ways:

- as built;
- with no event rows written (the workers' `insert_events` does nothing);
- with no event rows, outbox messages, webhook deliveries or customer notifications.

The last two lose data the service needs, so they are not ways to run it. They are bounds:
storing events more cheaply, in any layout, cannot take two workers further than storing
none, and the same holds for the outbox. Everything else a poll does stays: the claim,
the carrier calls, parsing and merging, the reads, the shipment and schedule write-back.

Before the measured runs, one unmeasured first pass makes the simulators build every
parcel's journey and lets 17TRACK register every number, as `bench/poll.py`'s SQLite pass
does before its PostgreSQL runs; otherwise the first measured run would pay for that.
Each run prints where the machine's CPU went (as `bench/poll.py` does). Writes
bench/out/pg_scaling_bound.json.

    .venv/bin/python bench/pg_scaling_bound.py [--quick] [--shipments N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import figure, pg_schema, reachable_pg, write  # noqa: E402
from bench.poll import (  # noqa: E402
    SIMULATOR_NICE,
    CpuShare,
    prepare,
    print_scaling,
    print_share,
    run_workers,
    start_simulators,
    wait_up,
)

#: (name, the writes the workers leave out)
VARIANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("as_built", ()),
    ("no_events", ("events",)),
    ("no_events_no_outbox", ("events", "outbox")),
)
LABELS = {
    "as_built": "as built",
    "no_events": "no event rows",
    "no_events_no_outbox": "no event rows, outbox or notifications",
}


async def first_polls(
    pg_url: str, urls: dict[str, str], sims: list[Any], workers: int, total: int, skip: tuple[str, ...]
) -> dict[str, Any]:
    async with pg_schema(pg_url) as schema:
        await prepare(pg_url, schema, total)
        return run_workers(pg_url, schema, urls, workers, total, CpuShare(sims), overlap=False, skip=skip)


async def main(args: argparse.Namespace) -> int:
    total = args.shipments or (10_000 if args.quick else 50_000)
    pg_url = await reachable_pg(args.database_url)
    if pg_url is None:
        return 0
    urls, sims = start_simulators(SIMULATOR_NICE)
    figures: list[dict[str, Any]] = []
    try:
        for url in urls.values():
            await wait_up(url)
        await first_polls(pg_url, urls, sims, 1, total, ())
        print(f"simulators warmed with {total:,} first polls (not measured)")
        for name, skip in VARIANTS:
            one = await first_polls(pg_url, urls, sims, 1, total, skip)
            two = await first_polls(pg_url, urls, sims, 2, total, skip)
            for workers, run in ((1, one), (2, two)):
                rate, cpu = run["rate"], run["cpu_ms"]
                print(f"{LABELS[name]}, {workers} worker(s): {rate:,.0f}/s ({cpu:.2f} ms worker CPU a refresh)")
                print_share(run)
                if "postgres_cores" in run:
                    figures.append(
                        figure(
                            f"pg_{name}_{workers}_server_cpu_per_refresh",
                            1000 * run["postgres_cores"] / run["rate"],
                            "ms",
                        )
                    )
                    figures.append(figure(f"pg_{name}_{workers}_machine_cpu_per_refresh", run["machine_cpu_ms"], "ms"))
            print_scaling(LABELS[name], one, two)
            figures.append(figure(f"pg_{name}_1_worker", one["rate"], "refreshes/s"))
            figures.append(
                figure(
                    f"pg_{name}_2_workers",
                    two["rate"],
                    "refreshes/s",
                    baseline=f"pg_{name}_1_worker",
                    baseline_value=one["rate"],
                )
            )
    finally:
        for p in sims:
            p.terminate()
            p.wait()
    write("pg_scaling_bound", figures, shipments=total)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 shipments")
    parser.add_argument("--shipments", type=int, help="shipments a run (50,000)")
    parser.add_argument("--database-url")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
