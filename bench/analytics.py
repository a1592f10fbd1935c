"""Analytics page cost at scale: 1,000,000 shipments (--quick: 100,000) on SQLite and PostgreSQL.

Rows are generated inside the database (recursive CTE / generate_series) so seeding stays
fast. The figure is the time of everything the analytics page computes (tracker.analytics
.lane_reports over a 90-day period); the in-run baseline is a bare indexed count of the
same rows.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import SQLModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import DEFAULT_PG, figure, pg_available, pg_schema, write
from tracker import analytics
from tracker.db import create_engine, create_sessionmaker
from tracker.store import analytics as store

SELLER, OTHER = "sel_bench", "sel_other"
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 90
CARRIERS = ("dhl", "ups", "fedex", "usps", "sf_express", "yanwen")
ORIGINS = ("CN", "HK", "VN")
DESTS = (
    "US",
    "DE",
    "FR",
    "GB",
    "ES",
    "IT",
    "NL",
    "PL",
    "SE",
    "CA",
    "AU",
    "JP",
    "KR",
    "BR",
    "MX",
    "AT",
    "BE",
    "CH",
    "DK",
    "IE",
)


def _pick(values: tuple[str, ...], expr: str) -> str:
    cases = " ".join(f"WHEN {i} THEN '{v}'" for i, v in enumerate(values))
    return f"CASE ({expr}) % {len(values)} {cases} END"


def seed_sql(dialect: str, n: int) -> list[str]:
    """Orders, shipments (all statuses, ~10% outside the period, 1 in 10 another seller's)
    and two customs events for every fifth shipment."""
    if dialect == "sqlite":
        series = f"WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n})"

        def at(seconds: str) -> str:
            return f"(datetime('2026-01-01', '-9 days', '+' || ({seconds}) || ' seconds') || '.000000')"

        def day(days: str) -> str:
            return f"date('2026-01-01', '+' || ({days}) || ' days')"

        src = "FROM g"
    else:
        series = ""

        def at(seconds: str) -> str:
            return f"(timestamptz '2025-12-23 00:00:00+00' + ({seconds}) * interval '1 second')"

        def day(days: str) -> str:
            return f"(date '2026-01-01' + ({days})::int)"

        src = f"FROM generate_series(1, {n}) AS g(i)"
    span = (DAYS + 18) * 86400
    # bigint: i * 7919 leaves PostgreSQL's int4 at a million rows
    created = f"((i * 7919) % {span})" if dialect == "sqlite" else f"((i::bigint * 7919) % {span})"
    status = _pick(("delivered",) * 6 + ("in_transit", "exception", "returned", "pending"), "i / 3")
    seller = f"CASE WHEN i % 10 = 0 THEN '{OTHER}' ELSE '{SELLER}' END"
    orders = (
        f"{series} INSERT INTO orders (id, seller_id, order_number, customer_key, items, created_at) "
        f"SELECT 'o' || i, {seller}, 'B-' || i, 'k', '[]', {at(created)} {src}"
    )
    first = f"{created} + 3600 + (i % 72) * 3600"
    delivered = f"{first} + (3 + i % 17) * 86400"
    shipments = (
        f"{series} INSERT INTO shipments (id, seller_id, order_id, order_number, tracking_number, carrier, "
        "carrier_candidates, status, sub_status, public_token, customer_locale, origin_country, dest_country, "
        "promised_delivery, eta_latest, created_at, updated_at, first_event_at, delivered_at, active, "
        "confirmed_terminal, sequence, notify_opt_out) "
        f"SELECT 's' || i, {seller}, 'o' || i, 'B-' || i, 'TN' || i, {_pick(CARRIERS, 'i')}, '[]', "
        f"{status}, CASE WHEN i % 37 = 0 THEN 'lost' ELSE 'other' END, 'tok' || i, 'en', "
        f"{_pick(ORIGINS, 'i / 7')}, {_pick(DESTS, 'i / 11')}, "
        f"CASE WHEN i % 2 = 0 THEN {day(f'{created} / 86400 + 3 + i % 14')} END, "
        f"CASE WHEN i % 2 = 1 THEN {at(f'{created} + (8 + i % 10) * 86400')} END, "
        f"{at(created)}, {at(created)}, "
        f"CASE WHEN ({status}) <> 'pending' THEN {at(first)} END, "
        f"CASE WHEN ({status}) = 'delivered' THEN {at(delivered)} END, "
        f"{'1' if dialect == 'sqlite' else 'true'}, {'0' if dialect == 'sqlite' else 'false'}, 0, "
        f"{'0' if dialect == 'sqlite' else 'false'} {src}"
    )
    events = []
    for k, (sub, offset) in enumerate(
        (("customs_processing", "86400"), ("customs_released", "86400 + (i % 50) * 3600"))
    ):
        events.append(
            f"{series} INSERT INTO tracking_events (shipment_id, fingerprint, occurred_at, time_basis, local_time, "
            "status, sub_status, raw_code, description, provider, recorded_at) "
            f"SELECT 's' || i, 'f{k}', {at(f'{first} + {offset}')}, 'utc_given', '', 'in_transit', '{sub}', "
            f"'{sub}', '{sub}', 'bench', {at(created)} {src} WHERE i % 5 = 0"
        )
    sellers = (
        "INSERT INTO sellers (id, name, kind, settings, created_at) VALUES "
        f"('{SELLER}', 'Bench', 'trading_company', '{{}}', {at('0')}), "
        f"('{OTHER}', 'Other', 'trading_company', '{{}}', {at('0')})"
    )
    return [sellers, orders, shipments, *events]


async def measure(url: str, n: int, *, schema: str = "") -> tuple[float, float, float, int]:
    engine = create_engine(url, schema=schema)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    t0 = time.perf_counter()
    async with engine.begin() as conn:
        for sql in seed_sql(engine.dialect.name, n):
            await conn.execute(text(sql))
        if engine.dialect.name == "postgresql":
            await conn.execute(text("ANALYZE"))
        else:
            await conn.execute(text("ANALYZE"))
    seeded = time.perf_counter() - t0
    sm = create_sessionmaker(engine)
    start, end = START, START + timedelta(days=DAYS)
    page, base = [], []
    lanes = 0
    for _ in range(3):
        async with sm() as session:
            t = time.perf_counter()
            reports = await analytics.lane_reports(session, SELLER, start, end)
            page.append(time.perf_counter() - t)
            lanes = len(reports)
            t = time.perf_counter()
            await store.count_in_period(session, SELLER, start, end)
            base.append(time.perf_counter() - t)
    await engine.dispose()
    return statistics.median(page), statistics.median(base), seeded, lanes


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100,000 shipments instead of 1,000,000")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        page, base, seeded, lanes = await measure(f"sqlite:///{tmp}/bench.db", n)
    print(f"sqlite: {n:,} shipments seeded in {seeded:.1f} s; {lanes} lanes")
    figures.append(
        figure(
            f"analytics page, sqlite, {n:,} shipments",
            page,
            "s",
            baseline="indexed count over the same period",
            baseline_value=base,
        )
    )
    if await pg_available():
        async with pg_schema() as schema:
            page, base, seeded, lanes = await measure(DEFAULT_PG, n, schema=schema)
        print(f"postgresql: {n:,} shipments seeded in {seeded:.1f} s; {lanes} lanes")
        figures.append(
            figure(
                f"analytics page, postgresql, {n:,} shipments",
                page,
                "s",
                baseline="indexed count over the same period",
                baseline_value=base,
            )
        )
    else:
        print("postgresql not reachable: skipped")
    write("analytics", figures, shipments=n, period_days=DAYS)


if __name__ == "__main__":
    asyncio.run(main())
