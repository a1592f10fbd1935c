"""Queries behind the public tracking pages.

These are the only queries that do not take a seller_id: the caller proves possession with
the unguessable public token, or with a tracking/order number plus a second factor
(destination postcode or the email the order was placed with).

A page is read with one query (the shipment, its seller, the other parcel of a
re-shipment pair and the events, joined), and re-validated with another, smaller one;
both are indexed lookups by token. `Reader` runs them.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, Select, and_, bindparam, event, func, or_
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import select as core_select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import Seller, Shipment, TrackingEvent

#: more rows than this for one number means a scan, not a customer
_MAX_CANDIDATES = 20
#: how long a read on the event loop may wait for a SQLite lock before it goes async
_SYNC_BUSY_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Related:
    """The other parcel of a re-shipment pair."""

    token: str
    tracking_number: str


@dataclass(frozen=True, slots=True)
class Version:
    """A cheap summary of everything the page shows: equal versions render equal pages."""

    fingerprint: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class PageShipment:
    """The shipment columns a page reads, including the customer's details, which are only
    used to scrub carrier texts and never shown."""

    id: str
    tracking_number: str
    carrier: str | None
    status: str
    sub_status: str
    origin_country: str | None
    dest_country: str
    eta_latest: datetime | None
    eta_latest_end: datetime | None
    delivered_at: datetime | None
    last_event_at: datetime | None
    received_confirmed_at: datetime | None
    customer_name: str | None
    customer_email: str | None
    customer_phone: str | None
    dest_address: str | None
    dest_postcode: str | None
    signed_by: str | None


@dataclass(frozen=True, slots=True)
class PageSeller:
    name: str
    logo_url: str | None
    brand_color: str | None
    support_url: str | None
    support_email: str | None


@dataclass(frozen=True, slots=True)
class PageEvent:
    occurred_at: datetime
    local_time: str
    utc_offset_minutes: int | None
    status: str
    sub_status: str
    description: str
    city: str | None
    region: str | None
    country: str | None


@dataclass(frozen=True, slots=True)
class PageState:
    """Everything the page shows, and the version it was read at."""

    shipment: PageShipment
    seller: PageSeller
    replaced_by: Related | None
    replaces: Related | None
    events: tuple[PageEvent, ...]
    version: Version


# ---------------------------------------------------------------- statements

_S = Shipment.__table__.c  # type: ignore[attr-defined]
_E = TrackingEvent.__table__.c  # type: ignore[attr-defined]
_SELLER = Seller.__table__.c  # type: ignore[attr-defined]
_R = Shipment.__table__.alias("r").c  # type: ignore[attr-defined]
_OLDER = Shipment.__table__.alias("older")  # type: ignore[attr-defined]


def _version_columns() -> list[Any]:
    """What a page's version is made of. Both statements start with these, so a version
    computed from either is the same."""
    e = TrackingEvent.__table__.alias("ev").c  # type: ignore[attr-defined]
    events = core_select(func.count()).where(e.shipment_id == _S.id)
    newer = (
        # replaces_id alone: a re-shipment always belongs to the same order (so seller), and a
        # seller_id term here makes SQLite walk the seller's whole index instead
        core_select(_R.public_token)
        .where(_R.replaces_id == _S.id)
        .order_by(_R.created_at.desc(), _R.id.desc())
        .limit(1)
    )
    return [
        _S.status,
        _S.sub_status,
        _S.carrier,
        _S.tracking_number,
        _S.origin_country,
        _S.dest_country,
        _S.eta_latest,
        _S.eta_latest_end,
        _S.delivered_at,
        _S.last_event_at,
        _S.received_confirmed_at,
        _S.updated_at,
        _S.replaces_id,
        _SELLER.name,
        _SELLER.logo_url,
        _SELLER.brand_color,
        _SELLER.support_url,
        _SELLER.support_email,
        _SELLER.created_at,
        events.scalar_subquery(),
        events.with_only_columns(func.max(e.id)).scalar_subquery(),
        events.with_only_columns(func.max(e.recorded_at)).scalar_subquery(),
        newer.scalar_subquery(),
    ]


_VERSION_WIDTH = len(_version_columns())
#: positions of the moments Last-Modified is the latest of
_MOMENTS = (9, 10, 11, 18, 21)

_SHIPMENT_COLUMNS = [
    _S.id,
    _S.tracking_number,
    _S.carrier,
    _S.status,
    _S.sub_status,
    _S.origin_country,
    _S.dest_country,
    _S.eta_latest,
    _S.eta_latest_end,
    _S.delivered_at,
    _S.last_event_at,
    _S.received_confirmed_at,
    _S.customer_name,
    _S.customer_email,
    _S.customer_phone,
    _S.dest_address,
    _S.dest_postcode,
    _S.signed_by,
]
_SELLER_COLUMNS = [_SELLER.name, _SELLER.logo_url, _SELLER.brand_color, _SELLER.support_url, _SELLER.support_email]
_EVENT_COLUMNS = [
    _E.occurred_at,
    _E.local_time,
    _E.utc_offset_minutes,
    _E.status,
    _E.sub_status,
    _E.description,
    _E.city,
    _E.region,
    _E.country,
]


def _version_query() -> Select[Any]:
    return (
        core_select(*_version_columns())
        .join_from(Shipment.__table__, Seller.__table__, _SELLER.id == _S.seller_id)  # type: ignore[attr-defined]
        .where(_S.public_token == bindparam("token"))
    )


def _page_query() -> Select[Any]:
    """One row per event (one row with empty event columns when there is none)."""
    newer = (
        core_select(_R.public_token)
        .where(
            _R.replaces_id == _S.id,
            # coalesce() keeps SQLite on the replaces_id index: a bare seller_id term makes
            # it walk the seller's whole index instead
            func.coalesce(_R.seller_id, "") == _S.seller_id,
            or_(_S.replaces_id.is_(None), _R.id != _S.replaces_id),
        )
        .order_by(_R.created_at.desc(), _R.id.desc())
        .limit(1)
    )
    older = _OLDER.c
    return (
        core_select(
            *_version_columns(),
            *_SHIPMENT_COLUMNS,
            *_SELLER_COLUMNS,
            newer.scalar_subquery(),
            newer.with_only_columns(_R.tracking_number).scalar_subquery(),
            older.public_token,
            older.tracking_number,
            _E.id,
            *_EVENT_COLUMNS,
        )
        .select_from(
            Shipment.__table__.join(Seller.__table__, _SELLER.id == _S.seller_id)  # type: ignore[attr-defined]
            .outerjoin(_OLDER, and_(older.id == _S.replaces_id, older.seller_id == _S.seller_id))
            .outerjoin(TrackingEvent.__table__, _E.shipment_id == _S.id)  # type: ignore[attr-defined]
        )
        .where(_S.public_token == bindparam("token"))
        .order_by(_E.occurred_at, _E.id)
    )


_VERSION = _version_query()
_PAGE = _page_query()


def _version_of(row: Sequence[Any]) -> Version:
    head = tuple(row[:_VERSION_WIDTH])
    moments = [_aware(head[i]) for i in _MOMENTS]
    last = max(m for m in moments if m is not None)
    return Version(fingerprint=repr(head), last_modified=last.astimezone(UTC).replace(microsecond=0))


def _aware(value: object) -> datetime | None:
    # aggregates bypass the UTCDateTime column type, so SQLite hands back text or naive values
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _related(token: str | None, number: str | None) -> Related | None:
    return Related(token, number) if token is not None and number is not None else None


def _state(rows: Sequence[Row[Any]]) -> PageState:
    first = rows[0]
    at = _VERSION_WIDTH
    shipment = PageShipment(*first[at : at + len(_SHIPMENT_COLUMNS)])
    at += len(_SHIPMENT_COLUMNS)
    seller = PageSeller(*first[at : at + len(_SELLER_COLUMNS)])
    at += len(_SELLER_COLUMNS)
    newer, older = _related(first[at], first[at + 1]), _related(first[at + 2], first[at + 3])
    at += 4
    events = tuple(PageEvent(*row[at + 1 :]) for row in rows if row[at] is not None)
    return PageState(shipment, seller, newer, older, events, _version_of(first))


# ---------------------------------------------------------------- running them


class Reader:
    """Runs the page reads. On a SQLite file they run right here, on the event loop,
    through the synchronous driver: an indexed read of a WAL database never waits for a
    writer and takes tens of microseconds, far less than handing each step of a session
    (checkout, begin, execute, fetch, rollback) to aiosqlite's thread and back. Anything
    else (PostgreSQL, an in-memory SQLite) goes through the async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sync: Engine | None = None
        url = engine.url
        memory = not url.database or url.database == ":memory:" or url.query.get("mode") == "memory"
        if url.get_backend_name() == "sqlite" and not memory:
            self._sync = create_sync_engine(
                url.set(drivername="sqlite"), connect_args={"timeout": _SYNC_BUSY_SECONDS}, pool_size=1
            )
            event.listen(self._sync, "connect", _read_only)

    async def rows(self, statement: Select[Any], params: Mapping[str, Any]) -> list[Row[Any]]:
        if self._sync is not None:
            try:
                with self._sync.connect() as conn:
                    return list(conn.execute(statement, params))
            except OperationalError:
                pass  # locked (a checkpoint, a non-WAL file): wait off the loop instead
        async with self._engine.connect() as conn:
            return list((await conn.execute(statement, params)).all())

    def close(self) -> None:
        if self._sync is not None:
            self._sync.dispose()


def _read_only(dbapi_conn: Any, _record: Any) -> None:
    # autocommit: every SELECT sees the latest commit, with no transaction left open
    dbapi_conn.isolation_level = None
    dbapi_conn.execute("PRAGMA query_only=ON")


async def version(reader: Reader, token: str) -> Version | None:
    """What re-validating a cached page costs: one indexed query, no ORM objects."""
    rows = await reader.rows(_VERSION, {"token": token})
    return _version_of(rows[0]) if rows else None


async def page_state(reader: Reader, token: str) -> PageState | None:
    """Everything the page shows, with its version: one query."""
    rows = await reader.rows(_PAGE, {"token": token})
    return _state(rows) if rows else None


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
