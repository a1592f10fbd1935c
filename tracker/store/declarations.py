"""Declaration dossiers and their lines. Every query takes seller_id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import ApiKey, Declaration, DeclarationLine, Order, Shipment, TrackingEvent, new_id
from tracker.store import NotFoundError

LINE_FIELDS = (
    "hs_code",
    "description",
    "description_en",
    "quantity",
    "unit",
    "unit_price",
    "total",
    "net_weight_kg",
    "gross_weight_kg",
    "origin_country",
)
RELEASED_SUB_STATUS = "customs_released"


@dataclass(frozen=True, slots=True)
class Loaded:
    declaration: Declaration
    lines: list[DeclarationLine]


def line_dict(line: DeclarationLine) -> dict[str, Any]:
    out: dict[str, Any] = {k: getattr(line, k) for k in LINE_FIELDS}
    out.update(line.extra or {})
    return out


def _line_row(declaration_id: str, no: int, data: dict[str, Any]) -> DeclarationLine:
    extra = {k: v for k, v in data.items() if k not in LINE_FIELDS and v is not None}
    return DeclarationLine(
        declaration_id=declaration_id,
        line_no=no,
        hs_code=str(data.get("hs_code") or ""),
        description=str(data.get("description") or ""),
        description_en=data.get("description_en"),
        quantity=str(data.get("quantity") or "0"),
        unit=str(data.get("unit") or ""),
        unit_price=str(data.get("unit_price") or "0"),
        total=str(data.get("total") or "0"),
        net_weight_kg=None if data.get("net_weight_kg") is None else str(data["net_weight_kg"]),
        gross_weight_kg=None if data.get("gross_weight_kg") is None else str(data["gross_weight_kg"]),
        origin_country=data.get("origin_country"),
        extra=extra,
    )


def _total(lines: list[dict[str, Any]]) -> str:
    total = Decimal(0)
    for line in lines:
        try:
            total += Decimal(str(line.get("total") or 0))
        except ArithmeticError:
            continue
    return str(total)


async def create(
    session: AsyncSession,
    seller_id: str,
    *,
    header: dict[str, Any],
    lines: list[dict[str, Any]],
    currency: str,
    shipment_id: str | None,
    now: datetime,
) -> Loaded:
    decl = Declaration(
        id=new_id("dcl"),
        seller_id=seller_id,
        shipment_id=shipment_id,
        status="draft",
        header=header,
        currency=currency,
        total_value=_total(lines),
        created_at=now,
        updated_at=now,
    )
    session.add(decl)
    await session.flush()
    rows = [_line_row(decl.id, i + 1, line) for i, line in enumerate(lines)]
    session.add_all(rows)
    await session.flush()
    return Loaded(decl, rows)


async def get(session: AsyncSession, seller_id: str, declaration_id: str, *, for_update: bool = False) -> Loaded:
    query = select(Declaration).where(Declaration.id == declaration_id, Declaration.seller_id == seller_id)
    if for_update:
        query = query.with_for_update()
    decl = (await session.exec(query)).first()
    if decl is None:
        raise NotFoundError(declaration_id)
    rows = await session.exec(
        select(DeclarationLine).where(DeclarationLine.declaration_id == decl.id).order_by(col(DeclarationLine.line_no))
    )
    return Loaded(decl, list(rows))


async def replace_lines(session: AsyncSession, decl: Declaration, lines: list[dict[str, Any]]) -> list[DeclarationLine]:
    await session.exec(delete(DeclarationLine).where(col(DeclarationLine.declaration_id) == decl.id))  # type: ignore[call-overload]
    await session.flush()
    rows = [_line_row(decl.id, i + 1, line) for i, line in enumerate(lines)]
    session.add_all(rows)
    decl.total_value = _total(lines)
    session.add(decl)
    await session.flush()
    return rows


async def list_for(
    session: AsyncSession,
    seller_id: str,
    *,
    statuses: tuple[str, ...] | None = None,
    limit: int = 50,
    after: str | None = None,
) -> list[Declaration]:
    query = select(Declaration).where(Declaration.seller_id == seller_id)
    if statuses:
        query = query.where(col(Declaration.status).in_(statuses))
    if after:
        query = query.where(col(Declaration.id) < after)
    query = query.order_by(col(Declaration.id).desc()).limit(limit)
    return list(await session.exec(query))


async def shipment_and_order(session: AsyncSession, seller_id: str, shipment_id: str) -> tuple[Shipment, Order]:
    shipment = (
        await session.exec(select(Shipment).where(Shipment.id == shipment_id, Shipment.seller_id == seller_id))
    ).first()
    if shipment is None:
        raise NotFoundError(shipment_id)
    order = (
        await session.exec(select(Order).where(Order.id == shipment.order_id, Order.seller_id == seller_id))
    ).first()
    if order is None:
        raise NotFoundError(shipment.order_id)
    return shipment, order


async def customs_release(session: AsyncSession, shipment_id: str | None) -> TrackingEvent | None:
    """The carrier's customs-released event on the linked shipment, if any (latest)."""
    if shipment_id is None:
        return None
    rows = await session.exec(
        select(TrackingEvent)
        .where(TrackingEvent.shipment_id == shipment_id, TrackingEvent.sub_status == RELEASED_SUB_STATUS)
        .order_by(col(TrackingEvent.occurred_at).desc())
        .limit(1)
    )
    return rows.first()


async def live_key(session: AsyncSession, prefix: str) -> ApiKey | None:
    """The unrevoked key with this visible prefix (clerk page sessions re-check it on every request)."""
    row = (await session.exec(select(ApiKey).where(ApiKey.prefix == prefix))).first()
    return row if row is not None and row.revoked_at is None else None
