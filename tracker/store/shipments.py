"""Orders and shipments: registration, lookups, listing, updates."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import exists, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from carriers import detect
from tracker.models import Alert, Order, Shipment, TrackingEvent, new_id
from tracker.store import ConflictError, NotFoundError
from tracker.store.notifications import queue_milestone
from tracker.store.outbox import enqueue

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
    ckey = customer_key(new.customer_email, new.dest_country, new.dest_postcode, new.customer_name)
    order = (
        await session.exec(
            select(Order).where(Order.seller_id == seller_id, Order.order_number == new.order_number)
        )
    ).first()
    if order is None:
        order = Order(
            id=new_id("ord"),
            seller_id=seller_id,
            order_number=new.order_number,
            customer_key=ckey,
            items=new.items or [],
            created_at=now,
        )
        session.add(order)
    elif order.customer_key != ckey:
        raise ConflictError(
            "order-number-used",
            f"Order number {new.order_number} is already used by a different order; "
            "order numbers never repeat.",
        )
    else:
        dup = (
            await session.exec(
                select(Shipment.id).where(
                    Shipment.seller_id == seller_id,
                    Shipment.order_id == order.id,
                    Shipment.tracking_number == new.tracking_number,
                )
            )
        ).first()
        if dup is not None:
            raise ConflictError(
                "shipment-exists",
                f"Tracking number {new.tracking_number} is already registered on this order ({dup}).",
            )
    if new.replaces is not None:
        replaced = await get_shipment(session, seller_id, new.replaces)
        if replaced.order_id != order.id:
            raise ConflictError("reshipment-order-mismatch", "A re-shipment must belong to the same order.")
    candidates = candidates_for(new.tracking_number, new.carrier)
    shipment = Shipment(
        id=new_id("shp"),
        seller_id=seller_id,
        order_id=order.id,
        order_number=new.order_number,
        tracking_number=new.tracking_number,
        carrier=new.carrier,
        carrier_candidates=candidates,
        public_token=secrets.token_urlsafe(18),
        customer_name=new.customer_name,
        customer_email=new.customer_email,
        customer_phone=new.customer_phone,
        customer_locale=new.customer_locale,
        origin_country=new.origin_country,
        dest_country=new.dest_country,
        dest_postcode=new.dest_postcode,
        dest_city=new.dest_city,
        dest_address=new.dest_address,
        promised_delivery=new.promised_delivery,
        created_at=now,
        updated_at=now,
        next_poll_at=now,
        replaces_id=new.replaces,
    )
    session.add(shipment)
    await session.flush()
    await enqueue(
        session,
        seller_id=seller_id,
        event_type="shipment.created",
        now=now,
        shipment=shipment,
        data=shipment_view(shipment, [], public_url=public_url),
    )
    # the standard asks that the customer get the tracking number promptly after dispatch
    await queue_milestone(session, shipment, "shipped", now=now)
    return shipment


async def get_shipment(session: AsyncSession, seller_id: str, shipment_id: str) -> Shipment:
    row = (
        await session.exec(
            select(Shipment).where(Shipment.id == shipment_id, Shipment.seller_id == seller_id)
        )
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


@dataclass(slots=True)
class Page:
    items: list[Shipment]
    next_cursor: str | None


def encode_cursor(shipment_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": shipment_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded))["id"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError("invalid cursor") from err
    if not isinstance(value, str):
        raise ValueError("invalid cursor")
    return value


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
) -> Page:
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
        open_alert = exists().where(
            col(Alert.shipment_id) == col(Shipment.id), col(Alert.resolved_at).is_(None)
        )
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
        (
            await session.exec(
                select(func.count()).select_from(Shipment).where(Shipment.seller_id == seller_id)
            )
        ).one()
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
        "tracking_active": s.next_poll_at is not None and s.stopped_at is None,
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
