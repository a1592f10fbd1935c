"""Orders and shipments: registration, lookups, listing, updates."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import exists, func, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from carriers import detect
from tracker.models import (
    Alert,
    Notification,
    Order,
    PollSchedule,
    Shipment,
    TrackingEvent,
    WebhookDelivery,
    WebhookMessage,
    new_id,
)
from tracker.store import ConflictError, NotFoundError, Page, decode_cursor, encode_cursor
from tracker.store.notifications import notification_row
from tracker.store.outbox import enabled_endpoints, message_rows
from tracker.store.tracking import schedule_row

AGGREGATOR = "17track"


def customer_key(email: str | None, country: str, postcode: str | None, name: str | None) -> str:
    """Who an order belongs to, for the never-repeat rule. Only a hash is stored on the order."""
    basis = "|".join(
        [
            (email or "").casefold(),
            country.upper(),
            (postcode or "").replace(" ", "").upper(),
            (name or "").casefold().strip(),
        ]
    )
    return hashlib.sha256(basis.encode()).hexdigest()


@dataclass(slots=True)
class NewShipment:
    tracking_number: str
    order_number: str
    dest_country: str
    carrier: str | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    customer_phone: str | None = None
    customer_locale: str = "en"
    dest_postcode: str | None = None
    dest_city: str | None = None
    dest_address: str | None = None
    origin_country: str | None = None
    promised_delivery: date | None = None
    items: list[dict[str, Any]] | None = None
    replaces: str | None = None


def candidates_for(number: str, carrier: str | None) -> list[str]:
    if carrier:
        return [carrier]
    found = [c for c in detect(number)]
    if AGGREGATOR not in found:
        # the aggregator detects carriers we have no adapter for
        found.append(AGGREGATOR)
    return found


async def create_shipment(
    session: AsyncSession, seller_id: str, new: NewShipment, *, now: datetime, public_url: str
) -> Shipment:
    """Register one shipment (and its order when new). Raises ConflictError, NotFoundError."""
    [shipment] = await create_shipments(session, seller_id, [new], now=now, public_url=public_url)
    return shipment


async def create_shipments(
    session: AsyncSession, seller_id: str, items: Sequence[NewShipment], *, now: datetime, public_url: str
) -> list[Shipment]:
    """Register shipments (and their orders when new) in the caller's transaction.

    Raises ConflictError (naming `shipments[i]` when there are several) or NotFoundError.
    Reads what it must check in a few set-based queries, so a batch of 100 costs a handful
    of round trips rather than several per shipment.
    """

    def where(i: int) -> str:
        return f"shipments[{i}]: " if len(items) > 1 else ""

    numbers = {n.order_number for n in items}
    orders = {
        o.order_number: o
        for o in await session.exec(
            select(Order).where(Order.seller_id == seller_id, col(Order.order_number).in_(numbers))
        )
    }
    known_ids = [o.id for o in orders.values()]
    taken: set[tuple[str, str]] = set()
    if known_ids:
        pairs = await session.exec(
            select(Shipment.order_id, Shipment.tracking_number).where(
                Shipment.seller_id == seller_id, col(Shipment.order_id).in_(known_ids)
            )
        )
        taken = {(order_id, number) for order_id, number in pairs}
    replaced_ids = {n.replaces for n in items if n.replaces}
    replaced: dict[str, Shipment] = {}
    if replaced_ids:
        replaced = {
            s.id: s
            for s in await session.exec(
                select(Shipment).where(Shipment.seller_id == seller_id, col(Shipment.id).in_(replaced_ids))
            )
        }
    endpoints = await enabled_endpoints(session, seller_id)
    new_orders: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for i, new in enumerate(items):
        ckey = customer_key(new.customer_email, new.dest_country, new.dest_postcode, new.customer_name)
        order = orders.get(new.order_number)
        if order is None:
            order = Order.model_construct(id=new_id("ord"), order_number=new.order_number, customer_key=ckey)
            orders[new.order_number] = order
            new_orders.append(
                {
                    "id": order.id,
                    "seller_id": seller_id,
                    "order_number": new.order_number,
                    "customer_key": ckey,
                    "items": new.items or [],
                    "created_at": now,
                }
            )
        elif order.customer_key != ckey:
            raise ConflictError(
                "order-number-used",
                f"{where(i)}Order number {new.order_number} is already used by a different order; "
                "order numbers never repeat.",
            )
        if (order.id, new.tracking_number) in taken:
            raise ConflictError(
                "shipment-exists",
                f"{where(i)}Tracking number {new.tracking_number} is already registered on this order.",
            )
        taken.add((order.id, new.tracking_number))
        if new.replaces is not None:
            original = replaced.get(new.replaces)
            if original is None:
                raise NotFoundError(new.replaces)
            if original.order_id != order.id:
                raise ConflictError(
                    "reshipment-order-mismatch", f"{where(i)}A re-shipment must belong to the same order."
                )
        rows.append(_new_row(seller_id, order.id, new, now))
    # Core INSERTs, parents first: building ORM objects costs more than the database here
    conn = await session.connection()
    if new_orders:
        await conn.execute(insert(Order), new_orders)
    await conn.execute(insert(Shipment), rows)
    await conn.execute(insert(PollSchedule), [schedule_row(row["id"], now) for row in rows])
    messages: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    notices: list[dict[str, Any]] = []
    created = [Shipment.model_construct(**row) for row in rows]
    for shipment in created:
        msg, dlv = message_rows(
            seller_id=seller_id,
            event_type="shipment.created",
            now=now,
            endpoints=endpoints,
            data=shipment_view(shipment, [], public_url=public_url),
            shipment_id=shipment.id,
            sequence=1,
        )
        messages.append(msg)
        deliveries += dlv
        # the standard asks that the customer get the tracking number promptly after dispatch
        if shipment.customer_email:
            notices.append(
                notification_row(
                    seller_id=seller_id,
                    shipment_id=shipment.id,
                    milestone="shipped",
                    locale=shipment.customer_locale,
                    now=now,
                )
            )
    await conn.execute(insert(WebhookMessage), messages)
    if deliveries:
        await conn.execute(insert(WebhookDelivery), deliveries)
    if notices:
        await conn.execute(insert(Notification), notices)
    return [await _attached(session, s) for s in created] if len(created) == 1 else created


async def _attached(session: AsyncSession, shipment: Shipment) -> Shipment:
    """The persistent instance, for callers that go on to change the one shipment they made."""
    loaded = await session.get(Shipment, shipment.id)
    assert loaded is not None
    return loaded


def _new_row(seller_id: str, order_id: str, new: NewShipment, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("shp"),
        "seller_id": seller_id,
        "order_id": order_id,
        "order_number": new.order_number,
        "tracking_number": new.tracking_number,
        "carrier": new.carrier,
        "carrier_candidates": candidates_for(new.tracking_number, new.carrier),
        "status": "pending",
        "sub_status": "other",
        "public_token": secrets.token_urlsafe(18),
        "customer_name": new.customer_name,
        "customer_email": new.customer_email,
        "customer_phone": new.customer_phone,
        "customer_locale": new.customer_locale,
        "origin_country": new.origin_country,
        "dest_country": new.dest_country,
        "dest_postcode": new.dest_postcode,
        "dest_city": new.dest_city,
        "dest_address": new.dest_address,
        "promised_delivery": new.promised_delivery,
        "created_at": now,
        "updated_at": now,
        "active": True,
        "confirmed_terminal": False,
        "replaces_id": new.replaces,
        # the shipment.created message below is sequence 1
        "sequence": 1,
        "notify_opt_out": False,
    }


async def get_shipment(session: AsyncSession, seller_id: str, shipment_id: str) -> Shipment:
    row = (
        await session.exec(select(Shipment).where(Shipment.id == shipment_id, Shipment.seller_id == seller_id))
    ).first()
    if row is None:
        raise NotFoundError(shipment_id)
    return row


async def events_of(session: AsyncSession, shipment_id: str) -> list[TrackingEvent]:
    rows = await session.exec(
        select(TrackingEvent)
        .where(TrackingEvent.shipment_id == shipment_id)
        .order_by(col(TrackingEvent.occurred_at), col(TrackingEvent.id))
    )
    return list(rows)


async def list_shipments(
    session: AsyncSession,
    seller_id: str,
    *,
    status: str | None = None,
    carrier: str | None = None,
    has_open_alert: bool | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    order_number: str | None = None,
    tracking_number: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Shipment]:
    query = select(Shipment).where(Shipment.seller_id == seller_id)
    if status:
        query = query.where(Shipment.status == status)
    if carrier:
        query = query.where(Shipment.carrier == carrier)
    if created_after:
        query = query.where(Shipment.created_at >= created_after)
    if created_before:
        query = query.where(Shipment.created_at < created_before)
    if order_number:
        query = query.where(Shipment.order_number == order_number)
    if tracking_number:
        query = query.where(Shipment.tracking_number == tracking_number)
    if has_open_alert is not None:
        open_alert = exists().where(col(Alert.shipment_id) == col(Shipment.id), col(Alert.resolved_at).is_(None))
        query = query.where(open_alert if has_open_alert else ~open_alert)
    if cursor:
        query = query.where(Shipment.id < decode_cursor(cursor))
    rows = list(await session.exec(query.order_by(col(Shipment.id).desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page(rows[:limit], next_cursor)


async def open_alert_kinds(session: AsyncSession, shipment_ids: list[str]) -> dict[str, list[str]]:
    if not shipment_ids:
        return {}
    rows = await session.exec(
        select(Alert.shipment_id, Alert.kind).where(
            col(Alert.shipment_id).in_(shipment_ids), col(Alert.resolved_at).is_(None)
        )
    )
    out: dict[str, list[str]] = {}
    for sid, kind in rows:
        out.setdefault(sid, []).append(kind)
    return out


async def count_shipments(session: AsyncSession, seller_id: str) -> int:
    return int(
        (await session.exec(select(func.count()).select_from(Shipment).where(Shipment.seller_id == seller_id))).one()
    )


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def event_view(e: TrackingEvent) -> dict[str, Any]:
    return {
        "occurred_at": e.occurred_at.isoformat(),
        "local_time": e.local_time,
        "time_basis": e.time_basis,
        "status": e.status,
        "sub_status": e.sub_status,
        "description": e.description,
        "raw_code": e.raw_code,
        "provider": e.provider,
        "location": {"city": e.city, "region": e.region, "country": e.country, "postcode": e.postcode},
    }


def shipment_view(
    s: Shipment, events: list[TrackingEvent], *, public_url: str, open_alerts: list[str] | None = None
) -> dict[str, Any]:
    """The seller API's representation (DESIGN §14): the seller's own data, in full."""
    view: dict[str, Any] = {
        "id": s.id,
        "tracking_number": s.tracking_number,
        "carrier": s.carrier,
        "carrier_candidates": s.carrier_candidates,
        "status": s.status,
        "sub_status": s.sub_status,
        "order_number": s.order_number,
        "public_url": f"{public_url}/t/{s.public_token}",
        "customer": {
            "name": s.customer_name,
            "email": s.customer_email,
            "phone": s.customer_phone,
            "locale": s.customer_locale,
        },
        "destination": {
            "country": s.dest_country,
            "postcode": s.dest_postcode,
            "city": s.dest_city,
            "address": s.dest_address,
        },
        "origin_country": s.origin_country,
        "promised_delivery": s.promised_delivery.isoformat() if s.promised_delivery else None,
        "eta": {
            "first": _iso(s.eta_first),
            "latest": _iso(s.eta_latest),
            "latest_end": _iso(s.eta_latest_end),
            "source": s.eta_source,
        },
        "signed_by": s.signed_by,
        "tracking_active": s.active and s.stopped_at is None,
        "stop_reason": s.stop_reason,
        "replaces": s.replaces_id,
        "received_confirmed_at": _iso(s.received_confirmed_at),
        "created_at": s.created_at.isoformat(),
        "updated_at": s.updated_at.isoformat(),
        "last_event_at": _iso(s.last_event_at),
        "events": [event_view(e) for e in events],
    }
    if open_alerts is not None:
        view["open_alerts"] = open_alerts
    return view
