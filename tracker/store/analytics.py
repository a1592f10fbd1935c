"""Logistics analytics queries: one seller, one creation period, grouped by lane.

A lane is (carrier, origin country, destination country). Every count is aggregated in
SQL over the seller's shipments created in the period, in a single pass. On SQLite that
pass reads only `ix_shipments_seller_lane`, which holds every column the aggregate needs
in lane order, so it touches no table row and the grouping streams without a sort.

Percentiles are exact (`percentile_cont`, interpolating between the two ranks around
p*(n-1)) but not ordered-set aggregates: the same pass hands back each lane's values
(an array on PostgreSQL, round-trip decimal text on SQLite) and they are sorted per lane
here. Ordering the whole period in the database, by a window or WITHIN GROUP, costs
several times more. Customs dwell is a second query that looks only at customs events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Date, Float, and_, case, cast, func, literal_column, or_, select
from sqlalchemy.sql import Executable, operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import Shipment, TrackingEvent
from tracker.models.shipment import CUSTOMS_WAITING as CUSTOMS_SUB_STATUSES

LaneKey = tuple[str, str, str]
RETURN_SUB_STATUSES = ("returning", "returned_to_sender")
#: which percentiles of which measure the page shows
PERCENTILES: dict[str, tuple[float, ...]] = {"transit_days": (0.5, 0.9), "first_scan_hours": (0.5,)}
#: SQLite's default REAL to text conversion keeps 15 digits; 17 round-trip exactly
_EXACT_REAL = "%!.17g"


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
        # date_part is double precision; extract() goes through numeric, several times slower
        return func.date_part("epoch", later - earlier, type_=Float) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def _utc_date(pg: bool, value: Any) -> ColumnElement[Any]:
    # PostgreSQL casts timestamptz to a date in the session's zone; pin it to UTC
    return cast(func.timezone("UTC", value), Date) if pg else func.date(value)


def _not_indexed(pg: bool, value: Any) -> Any:
    """SQLite's unary plus: the same value, but the planner may not use it to pick an index.

    With statistics, SQLite would otherwise skip-scan the lane index on the created_at
    range, which loses the lane order and sorts every row for the GROUP BY.
    """
    return value if pg else UnaryExpression(value, operator=operators.custom_op("+"), type_=value.type)


def _lane() -> list[ColumnElement[str]]:
    return [
        func.coalesce(col(Shipment.carrier), "").label("carrier"),
        func.coalesce(col(Shipment.origin_country), "").label("origin"),
        col(Shipment.dest_country).label("destination"),
    ]


def _lane_group() -> list[ColumnElement[str]]:
    # the raw columns, in the lane index's order: grouping by the coalesced expressions
    # would bind each literal twice, which PostgreSQL cannot match between SELECT and GROUP BY
    return [col(Shipment.carrier), col(Shipment.origin_country), col(Shipment.dest_country)]  # type: ignore[list-item]


def _period(pg: bool, seller_id: str, start: datetime, end: datetime) -> ColumnElement[bool]:
    created = _not_indexed(pg, col(Shipment.created_at))
    return and_(col(Shipment.seller_id) == seller_id, created >= start, created < end)


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _in(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    # inline constants: a partial index is only provably usable against literal values
    return column.in_([literal_column(f"'{v}'") for v in values])  # type: ignore[no-any-return]


def _any_of(column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """`column = v1 OR column = v2 ...` with inline constants: on SQLite, the expression
    `ix_events_customs` is defined with (see `CUSTOMS_WAITING_SQLITE`)."""
    return or_(*(column == literal_column(f"'{v}'") for v in values))


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


def percentile_cont(ordered: Sequence[float], p: float) -> float:
    """Linear interpolation between the two ranks around p*(n-1), as `percentile_cont`."""
    rank = p * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _value_columns(pg: bool) -> list[Any]:
    """Each lane's values of each percentile measure, in no particular order.

    Ordered-set aggregates force PostgreSQL to sort every row by lane first (or walk the
    lane index and fetch each heap row until vacuum has marked the pages visible); plain
    aggregates hash. SQLite has no arrays, so it concatenates the exact decimal texts.
    """
    out: list[Any] = []
    for name, (value, defined) in measures(pg).items():
        if pg:
            out.append(func.array_agg(value).filter(defined).label(name))
        else:
            text = func.printf(_EXACT_REAL, value)
            out.append(func.group_concat(case((defined, text), else_=None), ",").label(name))
    return out


def _percentiles(pg: bool, row: Any) -> dict[str, dict[float, float]]:
    out: dict[str, dict[float, float]] = {}
    for name, ps in PERCENTILES.items():
        values = row[name]
        if not values:
            out[name] = {}
            continue
        ordered = sorted(values if pg else map(float, values.split(",")))
        out[name] = {p: percentile_cont(ordered, p) for p in ps}
    return out


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
        *_value_columns(pg),
    ]
    stmt = select(*columns).where(_period(pg, seller_id, start, end)).group_by(*_lane_group())
    conn = await session.connection()
    out: dict[LaneKey, LaneCounts] = {}
    for row in (await conn.execute(stmt)).mappings():
        out[(row["carrier"], row["origin"], row["destination"])] = LaneCounts(
            shipments=int(row["shipments"]),
            delivered=int(row["delivered"]),
            with_target=int(row["with_target"]),
            on_time=int(row["on_time"]),
            exceptions=int(row["exceptions"]),
            lost=int(row["lost"]),
            returns=int(row["returns"]),
            first_scanned=int(row["first_scanned"]),
            first_scan_hours_sum=float(row["first_scan_hours_sum"] or 0.0),
            percentiles=_percentiles(pg, row),
        )
    if out:
        for key, (n, hours) in (await customs_dwell(session, seller_id, start, end)).items():
            if key in out:
                out[key].customs_shipments, out[key].customs_hours_sum = n, hours
    return out


async def customs_dwell(
    session: AsyncSession, seller_id: str, start: datetime, end: datetime
) -> dict[LaneKey, tuple[int, float]]:
    """Per lane: shipments that passed customs and the sum of their hours in customs.

    A shipment's customs time is the sum of the intervals from each customs event
    (processing, held, information required) to the event after it, in (occurred_at, id)
    order; an interval still open at the last event is not counted yet.
    """
    stmt = _customs_postgres(seller_id, start, end) if _postgres(session) else _customs_sqlite(seller_id, start, end)
    conn = await session.connection()
    return {
        (row.carrier, row.origin, row.destination): (int(row.n), float(row.hours or 0.0))
        for row in await conn.execute(stmt)
    }


def _customs_postgres(seller_id: str, start: datetime, end: datetime) -> Executable:
    """Number the events of only the shipments that have a customs event, with a window;
    PostgreSQL hashes the joins and sorts once, faster than a probe per customs event."""
    event = TrackingEvent.__table__.alias("event")  # type: ignore[attr-defined]
    customs = TrackingEvent.__table__.alias("customs")  # type: ignore[attr-defined]
    with_customs = select(customs.c.shipment_id).where(_in(customs.c.sub_status, CUSTOMS_SUB_STATUSES))
    events = (
        select(
            *_lane(),
            event.c.shipment_id,
            event.c.sub_status,
            event.c.occurred_at.label("at"),
            func.lead(event.c.occurred_at)
            .over(partition_by=event.c.shipment_id, order_by=(event.c.occurred_at, event.c.id))
            .label("next_at"),
        )
        .select_from(event)
        .join(Shipment, col(Shipment.id) == event.c.shipment_id)
        .where(_period(True, seller_id, start, end), event.c.shipment_id.in_(with_customs))
        .subquery()
    )
    lane = (events.c.carrier, events.c.origin, events.c.destination)
    return (
        select(
            *lane,
            func.count(func.distinct(events.c.shipment_id)).label("n"),
            func.sum(_days(True, events.c.next_at, events.c.at) * 24.0).label("hours"),
        )
        .where(_in(events.c.sub_status, CUSTOMS_SUB_STATUSES), events.c.next_at.is_not(None))
        .group_by(*lane)
    )


def _customs_sqlite(seller_id: str, start: datetime, end: datetime) -> Executable:
    """Walk the customs events and find each one's successor with a probe of the
    (shipment, time) index: SQLite's window would sort every event of the period."""
    customs = TrackingEvent.__table__.alias("customs")  # type: ignore[attr-defined]
    after = TrackingEvent.__table__.alias("after")  # type: ignore[attr-defined]
    nxt = TrackingEvent.__table__.alias("nxt")  # type: ignore[attr-defined]
    successor = (
        select(after.c.id)
        .where(
            after.c.shipment_id == customs.c.shipment_id,
            after.c.occurred_at >= customs.c.occurred_at,
            or_(after.c.occurred_at > customs.c.occurred_at, after.c.id > customs.c.id),
        )
        .order_by(after.c.occurred_at, after.c.id)
        .limit(1)
        .scalar_subquery()
    )
    # with the shipment side unindexable, the planner walks the (small) customs index and
    # looks each shipment up by id, rather than probing the events of every shipment in
    # the period, which is several times slower
    created = _not_indexed(False, col(Shipment.created_at))
    seller = _not_indexed(False, col(Shipment.seller_id))
    return (
        select(
            *_lane(),
            func.count(func.distinct(col(Shipment.id))).label("n"),
            func.sum(_days(False, nxt.c.occurred_at, customs.c.occurred_at) * 24.0).label("hours"),
        )
        .select_from(customs)
        .join(Shipment, col(Shipment.id) == customs.c.shipment_id)
        .join(nxt, nxt.c.id == successor)
        .where(
            _any_of(customs.c.sub_status, CUSTOMS_SUB_STATUSES),
            seller == seller_id,
            created >= start,
            created < end,
        )
        .group_by(*_lane_group())
    )


async def count_in_period(session: AsyncSession, seller_id: str, start: datetime, end: datetime) -> int:
    """A bare indexed count over the same rows (the benchmark's baseline)."""
    conn = await session.connection()
    period = and_(
        col(Shipment.seller_id) == seller_id, col(Shipment.created_at) >= start, col(Shipment.created_at) < end
    )
    stmt = select(func.count()).select_from(Shipment).where(period)
    return int((await conn.execute(stmt)).scalar_one())
