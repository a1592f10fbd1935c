"""Queries of the tracking engine: claiming due shipments, timelines, lane statistics.

Claims are the coordination point between worker processes: on PostgreSQL rows are taken
with `FOR UPDATE SKIP LOCKED`; on SQLite the caller holds the write lock from the start of
the transaction (`tracker.db.write_transaction`), so two processes never claim one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import Shipment, TrackingEvent, WebhookDelivery, WebhookMessage

#: most recent delivered shipments a lane's statistics are computed from
LANE_SAMPLE_LIMIT = 500


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def claim_due(
    session: AsyncSession, *, now: datetime, owner: str, lease_until: datetime, limit: int
) -> list[Shipment]:
    """Lease up to `limit` shipments due at `now` whose lease is free or expired."""
    query = (
        select(Shipment)
        .where(
            col(Shipment.next_poll_at).is_not(None),
            col(Shipment.next_poll_at) <= now,
            or_(col(Shipment.lease_until).is_(None), col(Shipment.lease_until) < now),
        )
        .order_by(col(Shipment.next_poll_at))
        .limit(limit)
    )
    if _is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    rows = list(await session.exec(query))
    if not rows:
        return rows
    ids = [r.id for r in rows]
    await session.exec(
        update(Shipment)
        .where(col(Shipment.id).in_(ids))
        .values(lease_owner=owner, lease_until=lease_until)
        .execution_options(synchronize_session=False)
    )
    for row in rows:
        row.lease_owner = owner
        row.lease_until = lease_until
    return rows


async def lock_leased(session: AsyncSession, ids: Sequence[str], owner: str | None) -> list[Shipment]:
    """Re-read shipments inside the writing transaction (row-locked on PostgreSQL).

    With `owner`, only rows whose lease this worker still holds: a worker that lost its
    lease (it stalled past expiry and another took over) must not write stale results.
    """
    if not ids:
        return []
    query = select(Shipment).where(col(Shipment.id).in_(list(ids)))
    if owner is not None:
        query = query.where(Shipment.lease_owner == owner)
    if _is_postgres(session):
        query = query.with_for_update()
    return list(await session.exec(query.execution_options(populate_existing=True)))


async def events_by_shipment(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[TrackingEvent]]:
    out: dict[str, list[TrackingEvent]] = {i: [] for i in ids}
    if not ids:
        return out
    rows = await session.exec(select(TrackingEvent).where(col(TrackingEvent.shipment_id).in_(list(ids))))
    for row in rows:
        out[row.shipment_id].append(row)
    return out


async def insert_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert event rows in one statement; a fingerprint already stored is skipped."""
    if not rows:
        return
    dialect = postgresql if _is_postgres(session) else sqlite
    stmt = dialect.insert(TrackingEvent).on_conflict_do_nothing(index_elements=["shipment_id", "fingerprint"])
    await session.exec(stmt, params=rows)  # type: ignore[call-overload]


async def insert_outbox(
    session: AsyncSession, messages: list[dict[str, Any]], deliveries: list[dict[str, Any]]
) -> None:
    """Bulk-insert outbox messages and their deliveries (rows from `outbox.message_rows`)."""
    if messages:
        await session.exec(insert(WebhookMessage), params=messages)  # type: ignore[call-overload]
    if deliveries:
        await session.exec(insert(WebhookDelivery), params=deliveries)  # type: ignore[call-overload]


async def reschedule(
    session: AsyncSession, plans: Iterable[tuple[str, datetime | None, bool]], *, owner: str, now: datetime
) -> None:
    """Set next_poll_at and release this worker's lease, without results (errors, rate limits).

    `plans` holds (shipment id, next poll, whether the attempt failed).
    """
    for shipment_id, at, failed in plans:
        values: dict[str, Any] = {"next_poll_at": at, "lease_owner": None, "lease_until": None}
        if failed:
            values["poll_errors"] = Shipment.poll_errors + 1
        await session.exec(
            update(Shipment)
            .where(col(Shipment.id) == shipment_id, col(Shipment.lease_owner) == owner)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


async def release_leases(session: AsyncSession, owner: str) -> int:
    """Free every lease `owner` holds (graceful shutdown); the shipments stay due."""
    result = await session.exec(
        update(Shipment)
        .where(col(Shipment.lease_owner) == owner)
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


async def shipments_by_number(session: AsyncSession, numbers: Sequence[str]) -> list[Shipment]:
    """Every seller's shipments with one of `numbers` (pushes name a number, not a seller)."""
    if not numbers:
        return []
    return list(await session.exec(select(Shipment).where(col(Shipment.tracking_number).in_(list(numbers)))))


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
                "next_poll_at": now,
                "poll_count": 0,
                "poll_errors": 0,
                "confirmed_terminal": False,
                "sequence": 0,
                "notify_opt_out": False,
            }
        )
    for start in range(0, len(ships), 2000):
        await session.exec(insert(Order), params=orders[start : start + 2000])  # type: ignore[call-overload]
        await session.exec(insert(Shipment), params=ships[start : start + 2000])  # type: ignore[call-overload]
    return [s["id"] for s in ships]
