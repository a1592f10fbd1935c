"""Logistics analytics queries: one seller, one creation period, grouped by lane.

A lane is (carrier, origin country, destination country). Every figure is aggregated in
SQL over the seller's shipments created in the period, so the work stays in the database
and the answer is a handful of rows however many shipments there are. Percentiles use
`percentile_cont` on PostgreSQL; SQLite has none, so a window query numbers the ordered
values per lane and keeps only the two rows around each percentile rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Date, Float, Integer, and_, case, cast, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import Shipment, TrackingEvent

LaneKey = tuple[str, str, str]
CUSTOMS_SUB_STATUSES = ("customs_processing", "customs_held", "customs_info_required")
RETURN_SUB_STATUSES = ("returning", "returned_to_sender")
#: which percentiles of which measure the page shows
PERCENTILES: dict[str, tuple[float, ...]] = {"transit_days": (0.5, 0.9), "first_scan_hours": (0.5,)}


@dataclass(slots=True)
class LaneCounts:
    """Raw counts and sums of one lane; rates are derived in tracker.analytics."""

    shipments: int = 0
    delivered: int = 0
    with_target: int = 0
    on_time: int = 0
    exceptions: int = 0
    lost: int = 0
    returns: int = 0
    first_scanned: int = 0
    first_scan_hours_sum: float = 0.0
    customs_shipments: int = 0
    customs_hours_sum: float = 0.0
    percentiles: dict[str, dict[float, float]] = field(default_factory=dict)


def _postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _days(pg: bool, later: Any, earlier: Any) -> ColumnElement[float]:
    if pg:
        return cast(func.extract("epoch", later - earlier), Float) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def _utc_date(pg: bool, value: Any) -> ColumnElement[Any]:
    # PostgreSQL casts timestamptz to a date in the session's zone; pin it to UTC
    return cast(func.timezone("UTC", value), Date) if pg else func.date(value)


def _lane() -> list[ColumnElement[str]]:
    return [
        func.coalesce(col(Shipment.carrier), "").label("carrier"),
        func.coalesce(col(Shipment.origin_country), "").label("origin"),
        col(Shipment.dest_country).label("destination"),
    ]


def _period(seller_id: str, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(col(Shipment.seller_id) == seller_id, col(Shipment.created_at) >= start, col(Shipment.created_at) < end)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def measures(pg: bool) -> dict[str, tuple[ColumnElement[float], ColumnElement[bool]]]:
    """Each percentile measure: its value expression and when it is defined."""
    delivered = and_(col(Shipment.status) == "delivered", col(Shipment.delivered_at).is_not(None))
    return {
        "transit_days": (
            _days(pg, col(Shipment.delivered_at), col(Shipment.first_event_at)),
            and_(delivered, col(Shipment.first_event_at).is_not(None)),
        ),
        "first_scan_hours": (
            _days(pg, col(Shipment.first_event_at), col(Shipment.created_at)) * 24.0,
            col(Shipment.first_event_at).is_not(None),
        ),
    }


async def lane_counts(
    session: AsyncSession, seller_id: str, start: datetime, end: datetime
) -> dict[LaneKey, LaneCounts]:
    """Counts per lane of the seller's shipments created in [start, end)."""
    pg = _postgres(session)
    delivered = and_(col(Shipment.status) == "delivered", col(Shipment.delivered_at).is_not(None))
    target = func.coalesce(col(Shipment.eta_latest_end), col(Shipment.eta_latest))
    on_time = or_(
        and_(
            col(Shipment.promised_delivery).is_not(None),
            _utc_date(pg, col(Shipment.delivered_at)) <= col(Shipment.promised_delivery),
        ),
        and_(col(Shipment.promised_delivery).is_(None), target.is_not(None), col(Shipment.delivered_at) <= target),
    )
    has_target = or_(col(Shipment.promised_delivery).is_not(None), target.is_not(None))
    scan_hours, scanned = measures(pg)["first_scan_hours"]
    columns: list[Any] = [
        *_lane(),
        func.count().label("shipments"),
        _count_if(delivered).label("delivered"),
        _count_if(and_(delivered, has_target)).label("with_target"),
        _count_if(and_(delivered, on_time)).label("on_time"),
        _count_if(col(Shipment.status) == "exception").label("exceptions"),
        _count_if(col(Shipment.sub_status) == "lost").label("lost"),
        _count_if(or_(col(Shipment.status) == "returned", col(Shipment.sub_status).in_(RETURN_SUB_STATUSES))).label(
            "returns"
        ),
        _count_if(scanned).label("first_scanned"),
        func.coalesce(func.sum(case((scanned, scan_hours), else_=None)), 0.0).label("first_scan_hours_sum"),
    ]
    if pg:
        for name, (value, defined) in measures(pg).items():
            for p in PERCENTILES[name]:
                columns.append(
                    func.percentile_cont(p).within_group(case((defined, value), else_=None)).label(f"{name}@{p}")
                )
    stmt = select(*columns).where(_period(seller_id, start, end)).group_by(*_lane_group())
    conn = await session.connection()
    out: dict[LaneKey, LaneCounts] = {}
    for row in (await conn.execute(stmt)).mappings():
        counts = LaneCounts(
            shipments=int(row["shipments"]),
            delivered=int(row["delivered"]),
            with_target=int(row["with_target"]),
            on_time=int(row["on_time"]),
            exceptions=int(row["exceptions"]),
            lost=int(row["lost"]),
            returns=int(row["returns"]),
            first_scanned=int(row["first_scanned"]),
            first_scan_hours_sum=float(row["first_scan_hours_sum"] or 0.0),
        )
        if pg:
            for name, ps in PERCENTILES.items():
                counts.percentiles[name] = {p: float(row[f"{name}@{p}"]) for p in ps if row[f"{name}@{p}"] is not None}
        out[(row["carrier"], row["origin"], row["destination"])] = counts
    if not pg:
        for name, ps in PERCENTILES.items():
            for key, values in (await _sqlite_percentiles(session, seller_id, start, end, name, ps)).items():
                if key in out:
                    out[key].percentiles[name] = values
    for key, (n, hours) in (await customs_dwell(session, seller_id, start, end)).items():
        if key in out:
            out[key].customs_shipments, out[key].customs_hours_sum = n, hours
    return out


def _lane_group() -> list[ColumnElement[str]]:
    # the raw columns: grouping by the coalesced expressions would bind each literal twice,
    # which PostgreSQL cannot match between SELECT and GROUP BY
    return [col(Shipment.carrier), col(Shipment.origin_country), col(Shipment.dest_country)]  # type: ignore[list-item]


async def _sqlite_percentiles(
    session: AsyncSession, seller_id: str, start: datetime, end: datetime, name: str, ps: Sequence[float]
) -> dict[LaneKey, dict[float, float]]:
    """percentile_cont by linear interpolation between the two ranks around p*(n-1)."""
    value, defined = measures(False)[name]
    lane = _lane()
    group = [c.name for c in lane]
    # the value is computed once per row here; the window below only sorts it
    values = select(*lane, value.label("v")).where(_period(seller_id, start, end), defined).subquery()
    keys_ = [values.c[g] for g in group]
    ranked = select(
        *keys_,
        values.c.v,
        (func.row_number().over(partition_by=keys_, order_by=values.c.v) - 1).label("rn"),
        func.count().over(partition_by=keys_).label("n"),
    ).subquery()
    columns: list[Any] = [*(ranked.c[g] for g in group), func.max(ranked.c.n).label("n")]
    for i, p in enumerate(ps):
        pos = literal(p) * (ranked.c.n - 1)
        low = cast(pos, Integer)
        high = low + case((pos > low, 1), else_=0)
        columns.append(func.min(case((ranked.c.rn == low, ranked.c.v), else_=None)).label(f"lo{i}"))
        columns.append(func.min(case((ranked.c.rn == high, ranked.c.v), else_=None)).label(f"hi{i}"))
    keep = or_(
        *(
            ranked.c.rn.between(
                cast(literal(p) * (ranked.c.n - 1), Integer), cast(literal(p) * (ranked.c.n - 1), Integer) + 1
            )
            for p in ps
        )
    )
    stmt = select(*columns).where(keep).group_by(*(ranked.c[g] for g in group))
    conn = await session.connection()
    out: dict[LaneKey, dict[float, float]] = {}
    for row in (await conn.execute(stmt)).mappings():
        n = int(row["n"])
        found: dict[float, float] = {}
        for i, p in enumerate(ps):
            lo, hi = row[f"lo{i}"], row[f"hi{i}"]
            if lo is None or hi is None:
                continue
            rank = p * (n - 1)
            found[p] = float(lo) + (float(hi) - float(lo)) * (rank - int(rank))
        out[(row["carrier"], row["origin"], row["destination"])] = found
    return out


async def customs_dwell(
    session: AsyncSession, seller_id: str, start: datetime, end: datetime
) -> dict[LaneKey, tuple[int, float]]:
    """Per lane: shipments that passed customs and the sum of their hours in customs.

    A shipment's customs time is the sum of the intervals from each customs event
    (processing, held, information required) to the event after it; an interval still
    open at the last event is not counted yet.
    """
    pg = _postgres(session)
    events = (
        select(
            *_lane(),
            col(TrackingEvent.shipment_id).label("shipment_id"),
            col(TrackingEvent.sub_status).label("sub_status"),
            col(TrackingEvent.occurred_at).label("at"),
            func.lead(col(TrackingEvent.occurred_at))
            .over(
                partition_by=col(TrackingEvent.shipment_id),
                order_by=(col(TrackingEvent.occurred_at), col(TrackingEvent.id)),
            )
            .label("next_at"),
        )
        .join(Shipment, col(Shipment.id) == col(TrackingEvent.shipment_id))
        .where(_period(seller_id, start, end))
        .subquery()
    )
    per_shipment = (
        select(
            events.c.carrier,
            events.c.origin,
            events.c.destination,
            func.sum(_days(pg, events.c.next_at, events.c.at) * 24.0).label("hours"),
        )
        .where(events.c.sub_status.in_(CUSTOMS_SUB_STATUSES), events.c.next_at.is_not(None))
        .group_by(events.c.shipment_id, events.c.carrier, events.c.origin, events.c.destination)
        .subquery()
    )
    stmt = select(
        per_shipment.c.carrier,
        per_shipment.c.origin,
        per_shipment.c.destination,
        func.count().label("n"),
        func.sum(per_shipment.c.hours).label("hours"),
    ).group_by(per_shipment.c.carrier, per_shipment.c.origin, per_shipment.c.destination)
    conn = await session.connection()
    return {
        (row.carrier, row.origin, row.destination): (int(row.n), float(row.hours or 0.0))
        for row in await conn.execute(stmt)
    }


async def count_in_period(session: AsyncSession, seller_id: str, start: datetime, end: datetime) -> int:
    """A bare indexed count over the same rows (the benchmark's baseline)."""
    conn = await session.connection()
    stmt = select(func.count()).select_from(Shipment).where(_period(seller_id, start, end))
    return int((await conn.execute(stmt)).scalar_one())
