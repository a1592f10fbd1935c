"""Customer notification rows: at most one per milestone per shipment (a unique index),
queued in the same transaction as the change that reaches the milestone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import Notification, Shipment, new_id

#: status -> customer milestone ("shipped" is queued at registration)
MILESTONES: dict[str, str] = {
    "out_for_delivery": "out_for_delivery",
    "available_for_pickup": "available_for_pickup",
    "delivered": "delivered",
    "failed_attempt": "exception",
    "exception": "exception",
}


def can_email(customer_email: str | None, notify_opt_out: bool, pii_erased_at: datetime | None) -> bool:
    """Whether a customer may be emailed at all: an address, not unsubscribed, not erased."""
    return bool(customer_email) and not notify_opt_out and pii_erased_at is None


def notification_row(*, seller_id: str, shipment_id: str, milestone: str, locale: str, now: datetime) -> dict[str, Any]:
    """Column values of one queued notification, for the bulk INSERTs of hot paths."""
    return {
        "id": new_id("ntf"),
        "seller_id": seller_id,
        "shipment_id": shipment_id,
        "milestone": milestone,
        "channel": "email",
        "locale": locale,
        "state": "queued",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def queue_milestone(session: AsyncSession, shipment: Shipment, milestone: str, *, now: datetime) -> bool:
    """Queue `milestone` for `shipment` unless already queued (or the customer cannot or
    does not want to be emailed). Returns whether a row was added."""
    if not can_email(shipment.customer_email, shipment.notify_opt_out, shipment.pii_erased_at):
        return False
    existing = (
        await session.exec(
            select(Notification.id).where(Notification.shipment_id == shipment.id, Notification.milestone == milestone)
        )
    ).first()
    if existing is not None:
        return False
    session.add(
        Notification(
            id=new_id("ntf"),
            seller_id=shipment.seller_id,
            shipment_id=shipment.id,
            milestone=milestone,
            locale=shipment.customer_locale,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return True


async def on_status_change(session: AsyncSession, shipment: Shipment, new_status: str, *, now: datetime) -> None:
    milestone = MILESTONES.get(new_status)
    if milestone is not None:
        await queue_milestone(session, shipment, milestone, now=now)
