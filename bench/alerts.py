"""A full alert scan over 1,000,000 shipments (1% meeting some rule), on SQLite and PostgreSQL.

Seeds with one bulk SQL statement (a recursive CTE on SQLite, generate_series on
PostgreSQL), then times:

- the first scan, which opens about 10,000 alerts with their outbox messages and audit rows;
- the steady-state scan (the next ones: nothing new, every rule query and resolution check runs);
- in the same run, the floor: a bare indexed `SELECT count(*)` of every rule branch's
  candidate set (the same conditions, no NOT EXISTS, no writes).

"Rows examined" is what the scan's queries must look at: the rows each branch's index range
yields plus the open alerts the resolution pass checks. Writes bench/out/alerts.json.

    .venv/bin/python bench/alerts.py [--quick] [--backend sqlite|postgresql|both]

PostgreSQL comes from TRACKER_BENCH_DATABASE_URL (or TRACKER_TEST_DATABASE_URL); it is
skipped when neither is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, text
from sqlmodel import SQLModel, col, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import DEFAULT_PG, pg_available
from tracker import alerts
from tracker.db import create_sessionmaker, engine_for, sync_url
from tracker.models import Alert
from tracker.settings import AlertSettings, DatabaseSettings
from tracker.store import alerts as alert_store

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "alerts.json"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
CARRIERS = ["dhl", "ups", "fedex", "usps", "17track", "sf_express", "yanwen"]
DAY = 86400


def _columns(ts: Any, num: str, quote_cast: str) -> dict[str, str]:
    """SQL expressions for every seeded column, from the row number `num` (i) and bucket b = i % 1000.

    b 0..9 each meet one rule (1%), b 10..299 are delivered and inactive, b 300..349 are
    freshly registered, the rest are healthy parcels in transit."""
    b = f"({num} % 1000)"
    carriers = "CASE " + " ".join(f"WHEN {num} % 7 = {i} THEN '{c}'" for i, c in enumerate(CARRIERS)) + " END"
    return {
        "id": f"'shp_' || {num}",
        "seller_id": "'sel_bench'",
        "order_id": "'ord_bench'",
        "order_number": f"'ORD' || {num}",
        "tracking_number": f"'TRK' || {num}",
        "carrier": f"CASE WHEN {b} = 5 THEN 'dhl' ELSE {carriers} END",
        "carrier_candidates": "'[]'",
        "status": f"CASE WHEN {b} = 3 THEN 'failed_attempt' WHEN {b} = 9 OR {b} BETWEEN 300 AND 349 THEN 'pending' "
        f"WHEN {b} BETWEEN 10 AND 299 THEN 'delivered' WHEN {b} = 1 THEN 'exception' ELSE 'in_transit' END",
        "sub_status": f"CASE WHEN {b} = 0 THEN 'damaged' WHEN {b} = 1 THEN 'lost' WHEN {b} = 2 THEN 'customs_held' "
        f"WHEN {b} = 4 THEN 'returning' WHEN {b} = 8 THEN 'customs_processing' "
        f"WHEN {b} BETWEEN 10 AND 299 THEN 'signed' ELSE 'in_transit' END",
        "public_token": f"'tok' || {num}",
        "customer_locale": "'en'",
        "origin_country": "'CN'",
        "dest_country": f"CASE WHEN {num} % 5 = 0 THEN 'DE' ELSE 'US' END",
        "created_at": ts(
            f"CASE WHEN {b} = 9 THEN 3 * {DAY} WHEN {b} BETWEEN 300 AND 349 THEN 7200 "
            f"WHEN {b} = 6 THEN 30 * {DAY} ELSE 8 * {DAY} END"
        ),
        "updated_at": ts("3600"),
        "first_event_at": f"CASE WHEN {b} = 9 OR {b} BETWEEN 300 AND 349 THEN NULL ELSE " + ts(f"7 * {DAY}") + " END",
        "last_event_at": f"CASE WHEN {b} = 9 OR {b} BETWEEN 300 AND 349 THEN NULL WHEN {b} = 5 THEN "
        + ts(f"7 * {DAY}")
        + f" WHEN {b} = 6 THEN "
        + ts(f"25 * {DAY}")
        + f" WHEN {b} BETWEEN 10 AND 299 THEN "
        + ts(f"4 * {DAY}")
        + " ELSE "
        + ts(f"({num} % 72) * 3600")
        + " END",
        "promised_delivery": f"CASE WHEN {b} = 7 THEN {quote_cast.format(d='2026-02-25')} WHEN {num} % 3 = 0 THEN "
        f"{quote_cast.format(d='2026-03-20')} ELSE NULL END",
        "eta_latest": f"CASE WHEN {num} % 2 = 0 AND {b} NOT BETWEEN 10 AND 299 THEN "
        + ts(f"-10 * {DAY}")
        + " ELSE NULL END",
        "customs_since": f"CASE WHEN {b} = 8 THEN "
        + ts(f"6 * {DAY}")
        + f" WHEN {b} = 2 THEN "
        + ts(f"1 * {DAY}")
        + " ELSE NULL END",
        "active": f"CASE WHEN {b} BETWEEN 10 AND 299 THEN {{false}} ELSE {{true}} END",
        "confirmed_terminal": "{false}",
        "sequence": "0",
        "notify_opt_out": "{false}",
    }


def _fixed_rows(conn: Any, now_sql: str) -> None:
    conn.execute(
        text(
            f"INSERT INTO sellers (id, name, kind, settings, created_at) VALUES "
            f"('sel_bench', 'Bench', 'trading_company', '{{}}', {now_sql})"
        )
    )
    conn.execute(
        text(
            f"INSERT INTO orders (id, seller_id, order_number, customer_key, items, created_at) VALUES "
            f"('ord_bench', 'sel_bench', 'ORD', 'k', '[]', {now_sql})"
        )
    )


def seed_sqlite(url: str, n: int) -> None:
    engine = create_engine(sync_url(url))
    SQLModel.metadata.create_all(engine)
    epoch = int(NOW.timestamp())

    def ts(seconds_ago: str) -> str:
        return f"(strftime('%Y-%m-%d %H:%M:%S', {epoch} - ({seconds_ago}), 'unixepoch') || '.000000')"

    cols = _columns(ts, "i", "'{d}'")
    names = ", ".join(cols)
    exprs = ", ".join(v.format(true="1", false="0") for v in cols.values())
    with engine.begin() as conn:
        _fixed_rows(conn, "'2026-01-01 00:00:00.000000'")
        conn.execute(
            text(
                f"WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n}) "
                f"INSERT INTO shipments ({names}) SELECT {exprs} FROM g"
            )
        )
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def seed_postgresql(url: str, schema: str, n: int) -> None:
    engine = create_engine(sync_url(url), connect_args={"options": f"-csearch_path={schema}"})
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    SQLModel.metadata.create_all(engine)

    def ts(seconds_ago: str) -> str:
        return f"(TIMESTAMPTZ '{NOW.isoformat()}' - ({seconds_ago}) * INTERVAL '1 second')"

    cols = _columns(ts, "g", "DATE '{d}'")
    names = ", ".join(cols)
    exprs = ", ".join(v.format(true="true", false="false") for v in cols.values())
    with engine.begin() as conn:
        _fixed_rows(conn, "TIMESTAMPTZ '2026-01-01T00:00:00+00:00'")
        conn.execute(text(f"INSERT INTO shipments ({names}) SELECT {exprs} FROM generate_series(1, {n}) AS g"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


async def measure(db: DatabaseSettings, repeats: int) -> dict[str, float]:
    engine = engine_for(db)
    sm = create_sessionmaker(engine)
    cfg = AlertSettings(batch_size=5000)
    try:
        t0 = time.perf_counter()
        first = await alerts.scan(sm, cfg, now=NOW)
        first_s = time.perf_counter() - t0
        steady: list[float] = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            again = await alerts.scan(sm, cfg, now=NOW)
            steady.append(time.perf_counter() - t0)
            if again.total_opened or again.total_resolved:
                raise RuntimeError("a repeated scan with nothing changed must change nothing")
        floor: list[float] = []
        matched = 0
        for _ in range(repeats):
            matched = 0
            t0 = time.perf_counter()
            async with sm() as session:
                for rule in alerts.rules(cfg, NOW):
                    for branch in rule.branches:
                        matched += await alert_store.count_matching(session, branch)
            floor.append(time.perf_counter() - t0)
        async with sm() as session:
            open_alerts = int(
                (
                    await session.exec(select(func.count()).select_from(Alert).where(col(Alert.resolved_at).is_(None)))
                ).one()
            )
    finally:
        await engine.dispose()
    return {
        "first_s": first_s,
        "opened": float(first.total_opened),
        "steady_s": statistics.median(steady),
        "floor_s": statistics.median(floor),
        "examined": float(matched + open_alerts),
    }


def figures_for(backend: str, n: int, seed_s: float, r: dict[str, float]) -> list[dict[str, Any]]:
    label = f"{backend} {n:,} shipments"
    return [
        {
            "metric": f"alert scan, steady state ({label})",
            "value": round(r["steady_s"], 4),
            "unit": "s",
            "baseline": "bare indexed SELECT count(*) of every rule branch",
            "baseline_value": round(r["floor_s"], 4),
            "ratio": round(r["steady_s"] / r["floor_s"], 2) if r["floor_s"] else None,
        },
        {
            "metric": f"alert scan, first (opens {int(r['opened']):,} alerts with outbox + audit) ({label})",
            "value": round(r["first_s"], 4),
            "unit": "s",
            "baseline": "bare indexed SELECT count(*) of every rule branch",
            "baseline_value": round(r["floor_s"], 4),
            "ratio": round(r["first_s"] / r["floor_s"], 2) if r["floor_s"] else None,
        },
        {"metric": f"rows examined per scan ({label})", "value": int(r["examined"]), "unit": "rows"},
        {"metric": f"seeding ({label})", "value": round(seed_s, 2), "unit": "s"},
    ]


def run(backend: str, n: int, repeats: int) -> list[dict[str, Any]]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            t0 = time.perf_counter()
            seed_sqlite(url, n)
            seed_s = time.perf_counter() - t0
            result = asyncio.run(measure(DatabaseSettings(url=url), repeats))
    else:
        url = os.environ.get("TRACKER_BENCH_DATABASE_URL") or DEFAULT_PG
        schema = "bench_alerts_" + secrets.token_hex(4)
        try:
            t0 = time.perf_counter()
            seed_postgresql(url, schema, n)
            seed_s = time.perf_counter() - t0
            result = asyncio.run(measure(DatabaseSettings(url=url, schema_name=schema), repeats))
        finally:
            engine = create_engine(sync_url(url))
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            engine.dispose()
    print(
        f"{backend:<10} {n:>9,} shipments  seed {seed_s:6.1f} s  first scan {result['first_s']:.3f} s "
        f"(opened {int(result['opened']):,})  steady scan {result['steady_s']:.3f} s  "
        f"floor count(*) {result['floor_s']:.3f} s  rows examined {int(result['examined']):,}"
    )
    return figures_for(backend, n, seed_s, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 shipments instead of 1,000,000")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    have_pg = asyncio.run(pg_available(os.environ.get("TRACKER_BENCH_DATABASE_URL") or DEFAULT_PG))
    figures: list[dict[str, Any]] = []
    for backend in backends:
        if backend == "postgresql" and not have_pg:
            print("postgresql skipped: no server answers (set TRACKER_BENCH_DATABASE_URL)")
            continue
        figures.extend(run(backend, n, repeats=3))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"figures": figures}, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
