"""Retention and erasure.

Records are kept `retention.months` (36 by default, never below 12: the standard the
product follows keeps orders at least 12 months). The purge deletes whole shipments
older than that with everything hanging off them. Erasure on a customer's request
pseudonymizes their personal data but keeps the shipment record and its timeline.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import Delete, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from sqlmodel import select as sm_select

from tracker.clock import utc_now
from tracker.db import SessionMaker, create_sessionmaker, engine_for
from tracker.models import (
    Alert,
    Declaration,
    DeclarationLine,
    IdempotencyRecord,
    Notification,
    Order,
    PollSchedule,
    Shipment,
    TrackingEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookMessage,
)
from tracker.settings import Settings
from tracker.store import sellers as seller_store

IDEMPOTENCY_TTL = timedelta(days=7)
_PII_FIELDS = ("customer_name", "customer_email", "customer_phone", "dest_address", "dest_postcode")


def months_before(now: datetime, months: int) -> datetime:
    """The same wall-clock instant `months` calendar months earlier (day clamped to month end)."""
    year, month = divmod(now.year * 12 + (now.month - 1) - months, 12)
    month += 1
    for day in (now.day, 30, 29, 28):
        try:
            return now.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass
class PurgeReport:
    cutoff: str
    shipments: int = 0
    events: int = 0
    orders: int = 0
    webhook_messages: int = 0
    declarations: int = 0
    idempotency_keys: int = 0
    dry_run: bool = False


async def purge(
    sessionmaker: SessionMaker, *, now: datetime, months: int, batch: int = 1000, dry_run: bool = False
) -> PurgeReport:
    cutoff = months_before(now, months)
    report = PurgeReport(cutoff=cutoff.isoformat(), dry_run=dry_run)
    too_old = col(Shipment.created_at) < cutoff
    while True:
        async with sessionmaker() as session:
            conn = await session.connection()
            if dry_run:
                report.shipments = int(
                    (await conn.execute(select(func.count()).select_from(Shipment).where(too_old))).scalar_one()
                )
                break
            ids = list(
                (
                    await conn.execute(select(col(Shipment.id)).where(too_old).order_by(col(Shipment.id)).limit(batch))
                ).scalars()
            )
            if not ids:
                break
            report.shipments += len(ids)
            report.events += await _delete_count(
                conn, delete(TrackingEvent).where(col(TrackingEvent.shipment_id).in_(ids))
            )
            msg_ids = select(col(WebhookMessage.id)).where(col(WebhookMessage.shipment_id).in_(ids))
            dlv_ids = select(col(WebhookDelivery.id)).where(col(WebhookDelivery.message_id).in_(msg_ids))
            await conn.execute(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(dlv_ids)))
            await conn.execute(delete(WebhookDelivery).where(col(WebhookDelivery.message_id).in_(msg_ids)))
            report.webhook_messages += await _delete_count(
                conn, delete(WebhookMessage).where(col(WebhookMessage.shipment_id).in_(ids))
            )
            await conn.execute(delete(Alert).where(col(Alert.shipment_id).in_(ids)))
            await conn.execute(delete(Notification).where(col(Notification.shipment_id).in_(ids)))
            decl_ids = select(col(Declaration.id)).where(col(Declaration.shipment_id).in_(ids))
            await conn.execute(delete(DeclarationLine).where(col(DeclarationLine.declaration_id).in_(decl_ids)))
            report.declarations += await _delete_count(
                conn, delete(Declaration).where(col(Declaration.shipment_id).in_(ids))
            )
            # a re-shipment may point at a purged parcel
            await conn.execute(update(Shipment).where(col(Shipment.replaces_id).in_(ids)).values(replaces_id=None))
            await conn.execute(delete(PollSchedule).where(col(PollSchedule.shipment_id).in_(ids)))
            await conn.execute(delete(Shipment).where(col(Shipment.id).in_(ids)))
            await session.commit()
    async with sessionmaker() as session:
        conn = await session.connection()
        has_shipment = select(col(Shipment.id)).where(col(Shipment.order_id) == col(Order.id)).exists()
        orphan_orders = select(col(Order.id)).where(col(Order.created_at) < cutoff).where(~has_shipment)
        if dry_run:
            report.orders = int(
                (await conn.execute(select(func.count()).select_from(orphan_orders.subquery()))).scalar_one()
            )
        else:
            report.orders = await _delete_count(conn, delete(Order).where(col(Order.id).in_(orphan_orders)))
            report.idempotency_keys = await _delete_count(
                conn,
                delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < now - IDEMPOTENCY_TTL),
            )
            await session.commit()
    return report


async def _delete_count(conn: AsyncConnection, stmt: Delete) -> int:
    result = await conn.execute(stmt)
    return int(result.rowcount or 0)


@dataclass
class EraseReport:
    shipments: int
    messages_scrubbed: int


def _scrub_payload(payload: str) -> str:
    data = json.loads(payload)
    inner = data.get("data", {})
    if isinstance(inner.get("customer"), dict):
        inner["customer"] = {
            "name": None,
            "email": None,
            "phone": None,
            "locale": inner["customer"].get("locale"),
        }
    if isinstance(inner.get("destination"), dict):
        inner["destination"]["address"] = None
        inner["destination"]["postcode"] = None
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


async def erase_customer(
    sessionmaker: SessionMaker,
    *,
    seller_id: str,
    now: datetime,
    shipment_id: str | None = None,
    email: str | None = None,
    actor: str = "operator",
) -> EraseReport:
    """Pseudonymize a customer's personal data on their shipments (and in stored webhook
    payloads); the shipments, their timelines and orders stay for the retention period."""
    async with sessionmaker() as session:
        query = sm_select(Shipment).where(col(Shipment.seller_id) == seller_id)
        if shipment_id:
            query = query.where(col(Shipment.id) == shipment_id)
        elif email:
            query = query.where(func.lower(col(Shipment.customer_email)) == email.lower())
        else:
            raise ValueError("name a shipment or an email address")
        shipments = list(await session.exec(query))
        scrubbed = 0
        for s in shipments:
            for field in _PII_FIELDS:
                setattr(s, field, None)
            s.pii_erased_at = now
            s.notify_opt_out = True
            session.add(s)
            for msg in await session.exec(sm_select(WebhookMessage).where(col(WebhookMessage.shipment_id) == s.id)):
                msg.payload = _scrub_payload(msg.payload)
                session.add(msg)
                scrubbed += 1
            await seller_store.audit(
                session,
                seller_id=seller_id,
                actor=actor,
                action="customer.erased",
                object_type="shipment",
                object_id=s.id,
                now=now,
            )
        await session.commit()
    return EraseReport(shipments=len(shipments), messages_scrubbed=scrubbed)


def run_purge_cli(settings: Settings, *, dry_run: bool, as_json: bool) -> int:
    async def go() -> PurgeReport:
        engine = engine_for(settings.database)
        try:
            return await purge(
                create_sessionmaker(engine),
                now=utc_now(),
                months=settings.retention.months,
                batch=settings.retention.purge_batch,
                dry_run=dry_run,
            )
        finally:
            await engine.dispose()

    report = asyncio.run(go())
    if as_json:
        print(json.dumps(asdict(report)))
    else:
        verb = "would purge" if dry_run else "purged"
        print(
            f"{verb} {report.shipments} shipments created before {report.cutoff} "
            f"({report.events} events, {report.orders} orders)"
        )
    return 0


def run_erase_cli(
    settings: Settings, *, seller_id: str, shipment_id: str | None, email: str | None, as_json: bool
) -> int:
    async def go() -> EraseReport:
        engine = engine_for(settings.database)
        try:
            return await erase_customer(
                create_sessionmaker(engine),
                seller_id=seller_id,
                now=utc_now(),
                shipment_id=shipment_id,
                email=email,
            )
        finally:
            await engine.dispose()

    report = asyncio.run(go())
    print(json.dumps(asdict(report)) if as_json else f"erased personal data on {report.shipments} shipments")
    return 0
