"""Queries the seller dashboard needs beyond the other stores' public functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import Alert, Declaration, Notification, Order, Shipment, WebhookEndpoint, WebhookMessage

#: dossiers that still need someone: the seller (draft, rejected) or the clerk
AWAITING = ("draft", "validated", "approved", "submitted", "rejected")
_CHUNK = 500


@dataclass(slots=True)
class Registered:
    pairs: set[tuple[str, str]]  # (order number, tracking number)
    customers: dict[str, str]  # order number -> customer key of the stored order


async def registered_pairs(session: AsyncSession, seller_id: str, order_numbers: Iterable[str]) -> Registered:
    """What of these orders is already registered, for import de-duplication."""
    numbers = sorted(set(order_numbers))
    out = Registered(set(), {})
    for start in range(0, len(numbers), _CHUNK):
        chunk = numbers[start : start + _CHUNK]
        orders = await session.exec(
            select(Order.order_number, Order.customer_key).where(
                Order.seller_id == seller_id, col(Order.order_number).in_(chunk)
            )
        )
        out.customers.update(dict(orders.all()))
        rows = await session.exec(
            select(Shipment.order_number, Shipment.tracking_number).where(
                Shipment.seller_id == seller_id, col(Shipment.order_number).in_(chunk)
            )
        )
        out.pairs.update((o, t) for o, t in rows)
    return out


async def status_counts(session: AsyncSession, seller_id: str) -> dict[str, int]:
    rows = await session.exec(
        select(Shipment.status, func.count()).where(Shipment.seller_id == seller_id).group_by(col(Shipment.status))
    )
    return {status: int(n) for status, n in rows}


async def find_shipment_ids(session: AsyncSession, seller_id: str, text: str, *, limit: int = 50) -> list[str]:
    """Shipments whose tracking or order number is exactly `text` (indexed lookups)."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum())
    rows = await session.exec(
        select(Shipment.id)
        .where(
            Shipment.seller_id == seller_id,
            or_(
                col(Shipment.tracking_number) == cleaned,
                col(Shipment.order_number) == text.strip(),
            ),
        )
        .order_by(col(Shipment.id).desc())
        .limit(limit)
    )
    return list(rows)


async def shipments_by_ids(session: AsyncSession, seller_id: str, ids: list[str]) -> list[Shipment]:
    if not ids:
        return []
    rows = await session.exec(
        select(Shipment)
        .where(Shipment.seller_id == seller_id, col(Shipment.id).in_(ids))
        .order_by(col(Shipment.id).desc())
    )
    return list(rows)


async def notifications_of(session: AsyncSession, seller_id: str, shipment_id: str) -> list[Notification]:
    rows = await session.exec(
        select(Notification)
        .where(Notification.seller_id == seller_id, Notification.shipment_id == shipment_id)
        .order_by(col(Notification.created_at))
    )
    return list(rows)


async def open_alerts_of(session: AsyncSession, seller_id: str, shipment_id: str) -> list[Alert]:
    rows = await session.exec(
        select(Alert).where(Alert.seller_id == seller_id, Alert.shipment_id == shipment_id).order_by(col(Alert.id))
    )
    return list(rows)


async def awaiting_declarations(session: AsyncSession, seller_id: str, *, limit: int = 200) -> list[Declaration]:
    rows = await session.exec(
        select(Declaration)
        .where(Declaration.seller_id == seller_id, col(Declaration.status).in_(AWAITING))
        .order_by(col(Declaration.updated_at).desc())
        .limit(limit)
    )
    return list(rows)


async def shipment_numbers(session: AsyncSession, seller_id: str, ids: Iterable[str]) -> dict[str, str]:
    """Shipment id -> tracking number, for labelling lists of other objects."""
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = await session.exec(
        select(Shipment.id, Shipment.tracking_number).where(
            Shipment.seller_id == seller_id, col(Shipment.id).in_(wanted)
        )
    )
    return dict(rows.all())


async def endpoint_names(session: AsyncSession, seller_id: str) -> dict[str, str]:
    rows = await session.exec(
        select(WebhookEndpoint.id, WebhookEndpoint.url).where(WebhookEndpoint.seller_id == seller_id)
    )
    return dict(rows.all())


async def messages_of(
    session: AsyncSession, seller_id: str, shipment_id: str, *, limit: int = 50
) -> list[WebhookMessage]:
    rows = await session.exec(
        select(WebhookMessage)
        .where(WebhookMessage.seller_id == seller_id, WebhookMessage.shipment_id == shipment_id)
        .order_by(col(WebhookMessage.id).desc())
        .limit(limit)
    )
    return list(rows)
