"""Queries behind the public tracking pages.

These are the only queries that do not take a seller_id: the caller proves possession with
the unguessable public token, or with a tracking/order number plus a second factor
(destination postcode or the email the order was placed with).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import Seller, Shipment, TrackingEvent

#: more rows than this for one number means a scan, not a customer
_MAX_CANDIDATES = 20


@dataclass(frozen=True, slots=True)
class Related:
    """The other parcel of a re-shipment pair."""

    token: str
    tracking_number: str


@dataclass(frozen=True, slots=True)
class PageState:
    """Everything the page shows except the events themselves, plus a summary of the
    events precise enough to notice any change (for ETags)."""

    shipment: Shipment
    seller: Seller
    event_count: int
    last_event_id: int
    last_recorded_at: datetime | None
    replaced_by: Related | None
    replaces: Related | None


async def page_state(session: AsyncSession, token: str) -> PageState | None:
    row = (
        await session.exec(
            select(Shipment, Seller)
            .join(Seller, col(Seller.id) == col(Shipment.seller_id))
            .where(Shipment.public_token == token)
        )
    ).first()
    if row is None:
        return None
    shipment, seller = row
    count, last_id, last_recorded = (
        await session.exec(
            select(func.count(), func.max(TrackingEvent.id), func.max(TrackingEvent.recorded_at)).where(
                TrackingEvent.shipment_id == shipment.id
            )
        )
    ).one()
    newer = (
        await session.exec(
            select(Shipment.public_token, Shipment.tracking_number)
            .where(Shipment.replaces_id == shipment.id, Shipment.seller_id == shipment.seller_id)
            .order_by(col(Shipment.created_at).desc(), col(Shipment.id).desc())
            .limit(1)
        )
    ).first()
    older = None
    if shipment.replaces_id is not None:
        older = (
            await session.exec(
                select(Shipment.public_token, Shipment.tracking_number).where(
                    Shipment.id == shipment.replaces_id, Shipment.seller_id == shipment.seller_id
                )
            )
        ).first()
    return PageState(
        shipment=shipment,
        seller=seller,
        event_count=int(count or 0),
        last_event_id=int(last_id or 0),
        last_recorded_at=_aware(last_recorded),
        replaced_by=Related(*newer) if newer else None,
        replaces=Related(*older) if older else None,
    )


def _aware(value: object) -> datetime | None:
    # aggregates bypass the UTCDateTime column type, so SQLite hands back text or naive values
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


async def events(session: AsyncSession, shipment_id: str) -> list[TrackingEvent]:
    rows = await session.exec(
        select(TrackingEvent)
        .where(TrackingEvent.shipment_id == shipment_id)
        .order_by(col(TrackingEvent.occurred_at), col(TrackingEvent.id))
    )
    return list(rows)


def normalize_number(value: str) -> str:
    return "".join(value.split()).upper()


def normalize_postcode(value: str) -> str:
    return "".join(ch for ch in value if ch.isalnum()).upper()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def second_factor_matches(shipment: Shipment, postcode: str, email: str) -> bool:
    ok = False
    if postcode and shipment.dest_postcode:
        ok |= _same(normalize_postcode(postcode), normalize_postcode(shipment.dest_postcode))
    if email and shipment.customer_email:
        ok |= _same(email.strip().casefold(), shipment.customer_email.strip().casefold())
    return ok


async def lookup(session: AsyncSession, number: str, *, postcode: str = "", email: str = "") -> str | None:
    """The public token of the newest shipment whose tracking or order number is `number`
    and whose destination postcode or customer email matches; None otherwise (the caller
    cannot tell an unknown number from a wrong second factor)."""
    tracking = normalize_number(number)
    order = number.strip()
    if not tracking or not (postcode.strip() or email.strip()):
        return None
    rows = await session.exec(
        select(Shipment)
        .where(or_(col(Shipment.tracking_number) == tracking, col(Shipment.order_number) == order))
        .order_by(col(Shipment.created_at).desc(), col(Shipment.id).desc())
        .limit(_MAX_CANDIDATES)
    )
    found: str | None = None
    # every candidate is checked, so the time taken does not depend on which one matches
    for shipment in rows:
        if second_factor_matches(shipment, postcode, email) and found is None:
            found = shipment.public_token
    return found


async def confirm_received(session: AsyncSession, token: str, *, now: datetime) -> Shipment | None:
    """Mark receipt confirmed once; returns the shipment when this call recorded it."""
    shipment = (await session.exec(select(Shipment).where(Shipment.public_token == token))).first()
    if shipment is None or shipment.received_confirmed_at is not None:
        return None
    shipment.received_confirmed_at = now
    shipment.updated_at = now
    session.add(shipment)
    return shipment


async def token_exists(session: AsyncSession, token: str) -> bool:
    return (await session.exec(select(Shipment.id).where(Shipment.public_token == token))).first() is not None
