"""Queries of the tracking engine: claiming due shipments, timelines, lane statistics.

Claims are the coordination point between worker processes: on PostgreSQL rows of
`poll_schedule` are taken with `FOR UPDATE SKIP LOCKED`; on SQLite the caller holds the
write lock from the start of the transaction (`tracker.db.write_transaction`), so two
processes never claim one row.

The poll path works on Core rows (`Due`, `PollState`), not ORM objects: a batch is read
with one query per table and written back with one executemany per table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from carriers.base import CarrierEvent, Location, TimeBasis
from carriers.status import Status, SubStatus
from tracker.models import (
    Notification,
    PollSchedule,
    Shipment,
    TrackingEvent,
    WebhookDelivery,
    WebhookMessage,
)
from tracker.models.types import utc_from_stored
from tracker.store import bulk

#: most recent delivered shipments a lane's statistics are computed from
LANE_SAMPLE_LIMIT = 500
#: ids per IN (...) list; well under SQLite's and asyncpg's bound-parameter limits
IN_CHUNK = 2000

SHIPMENTS = cast(Table, Shipment.__table__)  # type: ignore[attr-defined]
SCHEDULE = cast(Table, PollSchedule.__table__)  # type: ignore[attr-defined]
EVENTS = cast(Table, TrackingEvent.__table__)  # type: ignore[attr-defined]
NOTIFICATIONS = cast(Table, Notification.__table__)  # type: ignore[attr-defined]
MESSAGES = cast(Table, WebhookMessage.__table__)  # type: ignore[attr-defined]
DELIVERIES = cast(Table, WebhookDelivery.__table__)  # type: ignore[attr-defined]


def _is_postgres(session: AsyncSession | AsyncConnection) -> bool:
    bind = session.get_bind() if isinstance(session, AsyncSession) else session
    return bind.dialect.name == "postgresql"


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield list(ids[start : start + IN_CHUNK])


@dataclass(slots=True)
class Due:
    """A shipment to poll: what routing a carrier call needs."""

    id: str
    seller_id: str
    tracking_number: str
    carrier: str | None
    carrier_candidates: list[str]
    created_at: datetime
    poll_errors: int
    stopped_at: datetime | None


_DUE_COLUMNS = tuple(f.name for f in fields(Due))
#: the columns a poll reads from `poll_schedule`; the rest come from `shipments`
SCHEDULE_COLUMNS = frozenset(c.name for c in SCHEDULE.c if c.name != "shipment_id")


def _polling_column(name: str) -> Any:
    return SCHEDULE.c[name] if name in SCHEDULE_COLUMNS else SHIPMENTS.c[name]


def _joined() -> Any:
    # PostgreSQL locks a joined row's tables in FROM order (FOR UPDATE): shipments first,
    # as the API's writes do (`set_next_poll`), so the two never wait on each other in a cycle
    return SHIPMENTS.join(SCHEDULE, SCHEDULE.c.shipment_id == SHIPMENTS.c.id)


def _due(row: Any) -> Due:
    # the query selects `_DUE_COLUMNS`, which are the fields in order
    due = Due(*row)
    due.carrier_candidates = list(due.carrier_candidates or [])
    return due


@dataclass(slots=True)
class PollState:
    """The columns a poll reads and writes, changed in memory then written back in bulk."""

    id: str
    seller_id: str
    tracking_number: str
    order_number: str
    carrier: str | None
    status: str
    sub_status: str
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime | None
    first_event_at: datetime | None
    last_event_at: datetime | None
    customs_since: datetime | None
    delivered_at: datetime | None
    signed_by: str | None
    origin_country: str | None
    dest_country: str
    eta_first: datetime | None
    eta_latest: datetime | None
    eta_latest_end: datetime | None
    eta_source: str | None
    stopped_at: datetime | None
    stop_reason: str | None
    poll_digest: str | None
    confirmed_terminal: bool
    active: bool
    next_poll_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None
    poll_count: int
    poll_errors: int
    last_polled_at: datetime | None
    sequence: int
    customer_email: str | None
    customer_locale: str
    notify_opt_out: bool
    pii_erased_at: datetime | None
    #: the `WRITTEN_COLUMNS` values as read, to write back only what changed
    loaded: tuple[Any, ...] = field(default=(), repr=False, compare=False)


_STATE_COLUMNS = tuple(f.name for f in fields(PollState) if f.name != "loaded")
#: what a poll may change; the rest of `PollState` is read-only context
WRITTEN_COLUMNS: tuple[str, ...] = (
    "carrier",
    "status",
    "sub_status",
    "updated_at",
    "status_changed_at",
    "first_event_at",
    "last_event_at",
    "customs_since",
    "delivered_at",
    "signed_by",
    "origin_country",
    "eta_first",
    "eta_latest",
    "eta_latest_end",
    "eta_source",
    "stop_reason",
    "poll_digest",
    "confirmed_terminal",
    "active",
    "sequence",
)
#: what a poll writes to its `poll_schedule` row: every poll changes them
WRITTEN_SCHEDULE: tuple[str, ...] = (
    "next_poll_at",
    "lease_owner",
    "lease_until",
    "poll_count",
    "poll_errors",
    "last_polled_at",
)
_written = attrgetter(*WRITTEN_COLUMNS)
_written_schedule = attrgetter(*WRITTEN_SCHEDULE)
_loaded = itemgetter(*(_STATE_COLUMNS.index(name) for name in WRITTEN_COLUMNS))


async def claim_due(
    session: AsyncSession, *, now: datetime, owner: str, lease_until: datetime, limit: int
) -> list[Due]:
    """Lease up to `limit` shipments due at `now` whose lease is free or expired."""
    p = SCHEDULE.c
    query = (
        core_select(*(_polling_column(name) for name in _DUE_COLUMNS))
        .select_from(_joined())
        .where(
            p.next_poll_at.is_not(None),
            p.next_poll_at <= now,
            or_(p.lease_until.is_(None), p.lease_until < now),
        )
        .order_by(p.next_poll_at)
        .limit(limit)
    )
    conn = await session.connection()
    if _is_postgres(conn):
        # the shipment rows are only read: another transaction may be writing one
        query = query.with_for_update(skip_locked=True, of=SCHEDULE)
    rows = [_due(r) for r in await conn.execute(query)]
    for chunk in _chunks([r.id for r in rows]):
        await conn.execute(
            update(SCHEDULE).where(p.shipment_id.in_(chunk)).values(lease_owner=owner, lease_until=lease_until)
        )
    return rows


async def lock_leased(conn: AsyncConnection, ids: Sequence[str], owner: str | None) -> list[PollState]:
    """Re-read shipments inside the writing transaction (row-locked on PostgreSQL).

    With `owner`, only rows whose lease this worker still holds: a worker that lost its
    lease (it stalled past expiry and another took over) must not write stale results.
    """
    out: list[PollState] = []
    for chunk in _chunks(ids):
        query = (
            core_select(*(_polling_column(name) for name in _STATE_COLUMNS))
            .select_from(_joined())
            .where(SCHEDULE.c.shipment_id.in_(chunk))
        )
        if owner is not None:
            query = query.where(SCHEDULE.c.lease_owner == owner)
        if _is_postgres(conn):
            query = query.with_for_update()
        # columns are selected in field order
        for row in await conn.execute(query):
            values = cast(tuple[Any, ...], row)
            state = PollState(*values)
            state.loaded = _loaded(values)
            out.append(state)
    return out


async def update_polled(conn: AsyncConnection, states: Sequence[PollState]) -> None:
    """Write back what polls changed: every schedule row, and the shipments whose tracking
    changed (most polls find what is already stored, and leave their shipment alone).

    PostgreSQL: one statement writing every written column of the changed shipments (an
    UPDATE rewrites the whole row there anyway). SQLite maintains only the indexes that
    cover a column in the SET list, so there rows are grouped by the columns that really
    changed, one executemany a group: a status index is touched only when a status changed.
    """
    if not states:
        return
    schedule = [{"shipment_id": s.id, **dict(zip(WRITTEN_SCHEDULE, _written_schedule(s), strict=True))} for s in states]
    await bulk.update_rows(conn, SCHEDULE, schedule, key="shipment_id")
    postgres = _is_postgres(conn)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for s in states:
        values = _written(s)
        if values == s.loaded:
            continue
        if postgres:
            row = {"id": s.id, **dict(zip(WRITTEN_COLUMNS, values, strict=True))}
        else:
            row = {"id": s.id}
            for name, value, was in zip(WRITTEN_COLUMNS, values, s.loaded, strict=True):
                if value != was:
                    row[name] = value
        groups.setdefault(tuple(row), []).append(row)
    for rows in groups.values():
        await bulk.update_rows(conn, SHIPMENTS, rows, key="id")


_TIME_BASES = {b.value: b for b in TimeBasis}
#: members by stored value: a dict lookup, where `Status(value)` runs Enum's Python-level lookup
STATUSES = {s.value: s for s in Status}
SUB_STATUSES = {s.value: s for s in SubStatus}
# events of a route share a handful of places; a Location is immutable, so one is shared
# instead of building a frozen dataclass per stored event
_location = lru_cache(maxsize=4096)(Location)
_TIMELINE_COLUMNS = (
    "shipment_id",
    "fingerprint",
    "occurred_at",
    "time_basis",
    "local_time",
    "utc_offset_minutes",
    "status",
    "sub_status",
    "raw_code",
    "description",
    "city",
    "region",
    "country",
    "postcode",
    "provider",
)


def _timeline_sql(conn: AsyncConnection, count: int) -> str:
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(c) for c in _TIMELINE_COLUMNS)
    head = f"SELECT {columns} FROM {quote(EVENTS.name)}"
    if _is_postgres(conn):
        return f"{head} WHERE shipment_id = ANY($1::VARCHAR[])"
    return f"{head} WHERE shipment_id IN ({', '.join('?' * count)})"


async def timelines(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, dict[str, CarrierEvent]]:
    """Each shipment's stored events keyed by their stored fingerprint (one query per chunk).

    A routine poll reads a dozen stored events to find that none is new, so rows come as
    the driver's tuples and are turned into events here, instant and enums by lookup:
    through SQLAlchemy's result processing the read cost several times as much.
    `tests/integration/test_bulk_writes.py` compares the events with an ORM read.
    """
    out: dict[str, dict[str, CarrierEvent]] = {i: {} for i in ids}
    postgres = _is_postgres(conn)
    new_event = CarrierEvent
    for chunk in _chunks(ids):
        params: Any = (chunk,) if postgres else tuple(chunk)
        result = await conn.exec_driver_sql(_timeline_sql(conn, len(chunk)), params)
        for (
            shipment_id,
            fingerprint,
            occurred_at,
            time_basis,
            local_time,
            offset,
            status,
            sub_status,
            raw_code,
            description,
            city,
            region,
            country,
            postcode,
            provider,
        ) in cast(Iterable[tuple[Any, ...]], result):
            out[shipment_id][fingerprint] = new_event(
                utc_from_stored(occurred_at),
                _TIME_BASES[time_basis],
                local_time,
                STATUSES[status],
                SUB_STATUSES[sub_status],
                raw_code,
                description,
                _location(city, region, country, postcode) if city or region or country or postcode else None,
                provider,
                offset,
            )
    return out


#: the values of a new event row, in the order `insert_events` takes them
EVENT_COLUMNS = tuple(c.name for c in EVENTS.c if c.name != "id")


async def insert_events(conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert event rows (values in `EVENT_COLUMNS` order) in one statement; a fingerprint
    already stored is skipped."""
    await bulk.insert_tuples(conn, EVENTS, EVENT_COLUMNS, rows, skip_conflicts_on=("shipment_id", "fingerprint"))


async def insert_outbox(
    conn: AsyncConnection, messages: list[dict[str, Any]], deliveries: list[dict[str, Any]]
) -> None:
    """Bulk-insert outbox messages and their deliveries (rows from `outbox.message_rows`)."""
    await bulk.insert_rows(conn, MESSAGES, messages)
    await bulk.insert_rows(conn, DELIVERIES, deliveries)


async def queued_milestones(conn: AsyncConnection, shipment_ids: Sequence[str]) -> set[tuple[str, str]]:
    """(shipment id, milestone) of the notifications already queued for these shipments."""
    n = NOTIFICATIONS.c
    out: set[tuple[str, str]] = set()
    for chunk in _chunks(shipment_ids):
        rows = await conn.execute(core_select(n.shipment_id, n.milestone).where(n.shipment_id.in_(chunk)))
        out.update((r.shipment_id, r.milestone) for r in rows)
    return out


async def insert_notifications(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await bulk.insert_rows(conn, NOTIFICATIONS, rows)


async def reschedule(
    session: AsyncSession, plans: Iterable[tuple[str, datetime | None, bool]], *, owner: str, now: datetime
) -> None:
    """Set next_poll_at and release this worker's lease, without results (errors, rate limits).

    `plans` holds (shipment id, next poll, whether the attempt failed).
    """
    p = SCHEDULE.c
    params: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for shipment_id, at, failed in plans:
        params[failed].append({"b_id": shipment_id, "b_owner": owner, "next_poll_at": at})
    conn = await session.connection()
    for failed, rows in params.items():
        if not rows:
            continue
        values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
        if failed:
            values["poll_errors"] = p.poll_errors + 1
        stmt = (
            update(SCHEDULE)
            .where(p.shipment_id == bindparam("b_id"), p.lease_owner == bindparam("b_owner"))
            .values(values)
        )
        await conn.execute(stmt, rows)


async def set_next_poll(session: AsyncSession, shipment: Shipment, at: datetime | None) -> None:
    """Poll `shipment` at `at` (None: no more), and mark it active or not to match."""
    shipment.active = at is not None
    session.add(shipment)
    # the shipment row's changes first: rows are locked shipments first (`_joined`)
    await session.flush()
    p = SCHEDULE.c
    await session.exec(update(SCHEDULE).where(p.shipment_id == shipment.id).values(next_poll_at=at))  # type: ignore[call-overload]


async def release_leases(session: AsyncSession, owner: str) -> int:
    """Free every lease `owner` holds (graceful shutdown); the shipments stay due."""
    result = await session.exec(
        update(PollSchedule)
        .where(col(PollSchedule.lease_owner) == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def lane_transit_days(
    session: AsyncSession, carrier: str, origin: str, destination: str, *, limit: int = LANE_SAMPLE_LIMIT
) -> list[float]:
    """Transit days (first scan to delivery) of recent delivered shipments on one lane."""
    rows = await session.exec(
        select(Shipment.first_event_at, Shipment.delivered_at)
        .where(
            Shipment.carrier == carrier,
            Shipment.origin_country == origin,
            Shipment.dest_country == destination,
            col(Shipment.delivered_at).is_not(None),
            col(Shipment.first_event_at).is_not(None),
        )
        .order_by(col(Shipment.delivered_at).desc())
        .limit(limit)
    )
    return [(d - f).total_seconds() / 86400 for f, d in rows if f is not None and d is not None]


async def shipments_by_number(session: AsyncSession, numbers: Sequence[str]) -> list[Due]:
    """Every seller's shipments with one of `numbers` (pushes name a number, not a seller)."""
    t = SHIPMENTS.c
    conn = await session.connection()
    out: list[Due] = []
    for chunk in _chunks(numbers):
        query = (
            core_select(*(_polling_column(name) for name in _DUE_COLUMNS))
            .select_from(_joined())
            .where(t.tracking_number.in_(chunk))
        )
        out.extend(_due(r) for r in await conn.execute(query))
    return out


async def insert_bulk_shipments(
    session: AsyncSession,
    seller_id: str,
    items: Sequence[tuple[str, str | None, list[str], str]],
    *,
    now: datetime,
) -> list[str]:
    """Register many shipments at once, due now: (tracking number, carrier, candidates,
    destination country). For demos and benchmarks; the API path is `shipments.create_shipment`,
    which also queues the "shipped" email and `shipment.created` message."""
    import secrets

    from tracker.models import Order, new_id

    orders: list[dict[str, Any]] = []
    ships: list[dict[str, Any]] = []
    for number, carrier, candidates, dest in items:
        order_id = new_id("ord")
        orders.append(
            {
                "id": order_id,
                "seller_id": seller_id,
                "order_number": f"BULK-{order_id[4:]}",
                "customer_key": "bulk",
                "items": [],
                "created_at": now,
            }
        )
        ships.append(
            {
                "id": new_id("shp"),
                "seller_id": seller_id,
                "order_id": order_id,
                "order_number": f"BULK-{order_id[4:]}",
                "tracking_number": number,
                "carrier": carrier,
                "carrier_candidates": candidates,
                "status": "pending",
                "sub_status": "other",
                "public_token": secrets.token_urlsafe(18),
                "customer_locale": "en",
                "dest_country": dest,
                "created_at": now,
                "updated_at": now,
                "active": True,
                "confirmed_terminal": False,
                "sequence": 0,
                "notify_opt_out": False,
            }
        )
    for start in range(0, len(ships), 2000):
        part = ships[start : start + 2000]
        await session.exec(insert(Order), params=orders[start : start + 2000])  # type: ignore[call-overload]
        await session.exec(insert(Shipment), params=part)  # type: ignore[call-overload]
        await session.exec(insert(PollSchedule), params=[schedule_row(s["id"], now) for s in part])  # type: ignore[call-overload]
    return [s["id"] for s in ships]


def schedule_row(shipment_id: str, due: datetime | None) -> dict[str, Any]:
    """The `poll_schedule` row of a new shipment, first polled at `due`."""
    return {"shipment_id": shipment_id, "next_poll_at": due, "poll_count": 0, "poll_errors": 0}
