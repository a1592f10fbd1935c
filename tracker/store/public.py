"""Queries behind the public tracking pages.

These are the only queries that do not take a seller_id: the caller proves possession with
the unguessable public token, or with a tracking/order number plus a second factor
(destination postcode or the email the order was placed with).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, or_
from sqlalchemy import select as core_select
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
    """Everything the page shows except the events themselves."""

    shipment: Shipment
    seller: Seller
    replaced_by: Related | None
    replaces: Related | None


@dataclass(frozen=True, slots=True)
class Version:
    """A cheap summary of everything the page shows: equal versions render equal pages."""

    fingerprint: str
    last_modified: datetime


def _version_query() -> Select[Any]:
    s, e, r = Shipment.__table__.c, TrackingEvent.__table__.c, Shipment.__table__.alias("r").c  # type: ignore[attr-defined]
    seller = Seller.__table__.c  # type: ignore[attr-defined]
    events = core_select(func.count(), func.max(e.id), func.max(e.recorded_at)).where(e.shipment_id == s.id)
    newer = (
        # replaces_id alone: a re-shipment always belongs to the same order (so seller), and a
        # seller_id term here makes SQLite walk the seller's whole index instead
        core_select(r.public_token).where(r.replaces_id == s.id).order_by(r.created_at.desc(), r.id.desc()).limit(1)
    )
    return (
        core_select(
            s.status,
            s.sub_status,
            s.carrier,
            s.tracking_number,
            s.origin_country,
            s.dest_country,
            s.eta_latest,
            s.eta_latest_end,
            s.delivered_at,
            s.last_event_at,
            s.received_confirmed_at,
            s.updated_at,
            s.replaces_id,
            seller.name,
            seller.logo_url,
            seller.brand_color,
            seller.support_url,
            seller.support_email,
            seller.created_at,
            events.with_only_columns(func.count()).scalar_subquery(),
            events.with_only_columns(func.max(e.id)).scalar_subquery(),
            events.with_only_columns(func.max(e.recorded_at)).scalar_subquery(),
            newer.scalar_subquery(),
        )
        .join_from(Shipment.__table__, Seller.__table__, seller.id == s.seller_id)  # type: ignore[attr-defined]
        .where(s.public_token == bindparam("token"))
    )


_VERSION = _version_query()


async def version(session: AsyncSession, token: str) -> Version | None:
    """One indexed query, no ORM objects: what re-validating a cached page costs."""
    row = (await session.execute(_VERSION, {"token": token})).first()
    if row is None:
        return None
    moments = [row[i] for i in (9, 10, 11, 18)] + [_aware(row[21])]
    last = max(m for m in moments if m is not None)
    return Version(fingerprint=repr(tuple(row)), last_modified=last.astimezone(UTC).replace(microsecond=0))


async def page_state(session: AsyncSession, token: str) -> PageState | None:
    """The shipment, its seller and the other parcel of a re-shipment pair: two queries."""
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
    related = list(
        await session.exec(
            select(Shipment.id, Shipment.public_token, Shipment.tracking_number, Shipment.seller_id)
            .where(or_(col(Shipment.replaces_id) == shipment.id, col(Shipment.id) == shipment.replaces_id))
            .order_by(col(Shipment.created_at).desc(), col(Shipment.id).desc())
        )
    )
    same_seller = [r for r in related if r[3] == shipment.seller_id]
    newer = next((Related(r[1], r[2]) for r in same_seller if r[0] != shipment.replaces_id), None)
    older = next((Related(r[1], r[2]) for r in same_seller if r[0] == shipment.replaces_id), None)
    return PageState(shipment=shipment, seller=seller, replaced_by=newer, replaces=older)


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
