"""Analytics figures on a seeded data set, checked against plain Python over the same rows."""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.dialects import sqlite as sqlite_dialect

from tests.conftest import create_schema
from tracker import analytics
from tracker.db import create_sessionmaker, engine_for
from tracker.models import Order, Seller, Shipment, TrackingEvent, new_id
from tracker.settings import DatabaseSettings

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 2, 1, tzinfo=UTC)
LANES = [("dhl", "CN", "DE"), ("ups", "CN", "US"), (None, "HK", "FR")]
CUSTOMS = ("customs_processing", "customs_held", "customs_info_required")


@dataclass
class Seeded:
    shipments: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def _shipment(rng: random.Random, seller_id: str, order_id: str, n: int, created: datetime) -> dict[str, Any]:
    carrier, origin, dest = rng.choice(LANES)
    status = rng.choice(["delivered"] * 5 + ["in_transit", "exception", "returned", "pending"])
    sub = {"exception": rng.choice(["lost", "damaged"]), "returned": "returned_to_sender"}.get(status, "other")
    if status == "in_transit" and rng.random() < 0.3:
        sub = "returning"
    first = created + timedelta(hours=rng.uniform(1, 90)) if status != "pending" else None
    delivered = first + timedelta(days=rng.uniform(3, 20)) if status == "delivered" and first else None
    promised = (created + timedelta(days=rng.randint(5, 18))).date() if rng.random() < 0.5 else None
    eta = created + timedelta(days=rng.uniform(6, 16)) if rng.random() < 0.6 else None
    eta_end = eta + timedelta(days=2) if eta and rng.random() < 0.3 else None
    return {
        "id": new_id("shp"),
        "seller_id": seller_id,
        "order_id": order_id,
        "order_number": f"A-{n}",
        "tracking_number": f"TN{n:08d}",
        "carrier": carrier,
        "carrier_candidates": [],
        "status": status,
        "sub_status": sub,
        "public_token": new_id("tok"),
        "customer_locale": "en",
        "origin_country": origin,
        "dest_country": dest,
        "promised_delivery": promised,
        "eta_latest": eta,
        "eta_latest_end": eta_end,
        "created_at": created,
        "updated_at": created,
        "first_event_at": first,
        "delivered_at": delivered,
        "active": True,
        "confirmed_terminal": False,
        "sequence": 0,
        "notify_opt_out": False,
    }


def _events(rng: random.Random, s: dict[str, Any]) -> list[dict[str, Any]]:
    if s["first_event_at"] is None:
        return []
    at = s["first_event_at"]
    subs = ["picked_up", "departed"]
    if rng.random() < 0.5:
        subs += [rng.choice(CUSTOMS)] + (["customs_held"] if rng.random() < 0.3 else []) + ["customs_released"]
    if rng.random() < 0.2:
        subs += ["customs_processing"]  # still open: not counted yet
    rows = []
    for i, sub in enumerate(subs):
        rows.append(
            {
                "shipment_id": s["id"],
                "fingerprint": f"{s['id']}-{i}",
                "occurred_at": at,
                "time_basis": "utc_given",
                "local_time": at.isoformat(),
                "status": "in_transit",
                "sub_status": sub,
                "raw_code": sub,
                "description": sub,
                "provider": "test",
                "recorded_at": at,
            }
        )
        at += timedelta(hours=rng.uniform(2, 60))
    return rows


async def seed(db: DatabaseSettings) -> tuple[str, Seeded]:
    rng = random.Random(20260101)
    engine = engine_for(db)
    seeded = Seeded()
    sellers = [new_id("sel"), new_id("sel")]
    orders: list[dict[str, Any]] = []
    for i in range(260):
        seller_id = sellers[0] if i % 5 else sellers[1]
        # a few fall outside the period on either side
        created = START + timedelta(hours=rng.uniform(-72, 31 * 24 + 72))
        order_id = new_id("ord")
        orders.append(
            {
                "id": order_id,
                "seller_id": seller_id,
                "order_number": f"A-{i}",
                "customer_key": "k",
                "items": [],
                "created_at": created,
            }
        )
        s = _shipment(rng, seller_id, order_id, i, created)
        seeded.shipments.append(s)
        seeded.events += _events(rng, s)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Seller),
            [
                {"id": sid, "name": sid, "kind": "trading_company", "settings": {}, "created_at": START}
                for sid in sellers
            ],
        )
        await conn.execute(insert(Order), orders)
        await conn.execute(insert(Shipment), seeded.shipments)
        await conn.execute(insert(TrackingEvent), seeded.events)
    await engine.dispose()
    return sellers[0], seeded


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    # the inclusive method is percentile_cont's linear interpolation
    return statistics.quantiles(values, n=10, method="inclusive")[int(p * 10) - 1]


def expected(seller_id: str, seeded: Seeded) -> dict[tuple[str, str, str], dict[str, Any]]:
    lanes: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for s in seeded.shipments:
        if s["seller_id"] == seller_id and START <= s["created_at"] < END:
            lanes.setdefault((s["carrier"] or "", s["origin_country"], s["dest_country"]), []).append(s)
    events: dict[str, list[dict[str, Any]]] = {}
    for e in seeded.events:
        events.setdefault(e["shipment_id"], []).append(e)
    out = {}
    for key, rows in lanes.items():
        delivered = [s for s in rows if s["status"] == "delivered"]
        targeted, on_time = 0, 0
        for s in delivered:
            target = s["eta_latest_end"] or s["eta_latest"]
            if s["promised_delivery"] is not None:
                targeted += 1
                on_time += s["delivered_at"].date() <= s["promised_delivery"]
            elif target is not None:
                targeted += 1
                on_time += s["delivered_at"] <= target
        transit = sorted((s["delivered_at"] - s["first_event_at"]).total_seconds() / 86400 for s in delivered)
        scans = sorted(
            (s["first_event_at"] - s["created_at"]).total_seconds() / 3600 for s in rows if s["first_event_at"]
        )
        dwell = []
        for s in rows:
            evs = sorted(events.get(s["id"], []), key=lambda e: e["occurred_at"])
            spans = [
                (b["occurred_at"] - a["occurred_at"]).total_seconds() / 3600
                for a, b in itertools.pairwise(evs)
                if a["sub_status"] in CUSTOMS
            ]
            if spans:
                dwell.append(sum(spans))
        out[key] = {
            "shipments": len(rows),
            "delivered": len(delivered),
            "on_time_rate": on_time / targeted if targeted else None,
            "transit_p50_days": _pct(transit, 0.5),
            "transit_p90_days": _pct(transit, 0.9),
            "first_scan_mean_hours": statistics.fmean(scans) if scans else None,
            "first_scan_p50_hours": _pct(scans, 0.5),
            "exception_rate": sum(s["status"] == "exception" for s in rows) / len(rows),
            "lost_rate": sum(s["sub_status"] == "lost" for s in rows) / len(rows),
            "return_rate": sum(
                s["status"] == "returned" or s["sub_status"] in ("returning", "returned_to_sender") for s in rows
            )
            / len(rows),
            "customs_shipments": len(dwell),
            "customs_mean_hours": statistics.fmean(dwell) if dwell else None,
        }
    return out


async def test_lane_reports_match_an_independent_computation(database: DatabaseSettings) -> None:
    seller_id, seeded = await seed(database)
    want = expected(seller_id, seeded)
    engine = engine_for(database)
    try:
        async with create_sessionmaker(engine)() as session:
            reports = await analytics.lane_reports(session, seller_id, START, END)
    finally:
        await engine.dispose()
    got = {(r.carrier, r.origin, r.destination): r for r in reports}
    assert set(got) == set(want)
    assert len(want) == 3
    for key, figures in want.items():
        for name, value in figures.items():
            actual = getattr(got[key], name)
            if value is None or isinstance(value, int):
                assert actual == value, (key, name)
            else:
                assert actual == pytest.approx(value, rel=1e-6, abs=1e-6), (key, name)
    # the busiest lane comes first
    assert [r.shipments for r in reports] == sorted((r.shipments for r in reports), reverse=True)


async def test_csv_has_a_row_per_lane(database: DatabaseSettings) -> None:
    seller_id, seeded = await seed(database)
    engine = engine_for(database)
    try:
        async with create_sessionmaker(engine)() as session:
            reports = await analytics.lane_reports(session, seller_id, START, END)
    finally:
        await engine.dispose()
    lines = analytics.to_csv(reports).splitlines()
    assert lines[0].split(",") == list(analytics.CSV_COLUMNS)
    assert len(lines) == 1 + len(expected(seller_id, seeded))


async def test_empty_period_has_no_lanes(database: DatabaseSettings) -> None:
    seller_id, _ = await seed(database)
    engine = engine_for(database)
    try:
        async with create_sessionmaker(engine)() as session:
            assert await analytics.lane_reports(session, seller_id, date_start(2030), date_start(2031)) == []
    finally:
        await engine.dispose()


def date_start(year: int) -> datetime:
    return datetime.combine(date(year, 1, 1), datetime.min.time(), tzinfo=UTC)


async def test_sqlite_customs_dwell_walks_the_customs_index(tmp_path: Path) -> None:
    """SQLite uses a partial index only for a query that repeats its predicate exactly:
    the customs query must keep matching `ix_events_customs` (written with OR there)."""
    from sqlalchemy import text

    from tracker.store.analytics import _customs_sqlite

    database = DatabaseSettings(url=f"sqlite:///{tmp_path / 'analytics.db'}")
    await create_schema(database)
    seller_id, _ = await seed(database)
    compiled = _customs_sqlite(seller_id, START, END).compile(dialect=sqlite_dialect.dialect())
    params = tuple(str(compiled.params[name]) for name in compiled.positiontup or ())
    engine = engine_for(database)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            plan = [row[3] for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, params)]
    finally:
        await engine.dispose()
    assert "SCAN customs USING COVERING INDEX ix_events_customs" in plan, plan
