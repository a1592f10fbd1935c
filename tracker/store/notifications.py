"""Customer notification rows: at most one per milestone per shipment (a unique index),
queued in the same transaction as the change that reaches the milestone."""

from __future__ import annotations

from datetime import datetime

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


async def queue_milestone(session: AsyncSession, shipment: Shipment, milestone: str, *, now: datetime) -> bool:
    """Queue `milestone` for `shipment` unless already queued (or the customer cannot or
    does not want to be emailed). Returns whether a row was added."""
    if not shipment.customer_email or shipment.notify_opt_out or shipment.pii_erased_at is not None:
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


def queue_new_shipment_notice(session: AsyncSession, shipment: Shipment, *, now: datetime) -> bool:
    """The "your parcel has shipped" email of a shipment being created (nothing to check:
    a new shipment has no notifications yet)."""
    if not shipment.customer_email or shipment.notify_opt_out:
        return False
    session.add(
        Notification(
            id=new_id("ntf"),
            seller_id=shipment.seller_id,
            shipment_id=shipment.id,
            milestone="shipped",
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
