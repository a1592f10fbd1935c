"""Alerts: the scan's set-based queries and the seller API's reads and transitions.

Opening relies on the partial unique index (one open alert per kind per shipment): rows go in
with ON CONFLICT DO NOTHING ... RETURNING, so when two scans race only the winner's rows come
back and only the winner writes outbox messages. Transitions are conditional UPDATEs
(`WHERE resolved_at IS NULL`), so an automatic and a manual resolution cannot both win.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, insert, text, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import Alert, AuditLog, Shipment, WebhookDelivery, WebhookEndpoint, WebhookMessage, new_id
from tracker.store import ConflictError, NotFoundError, Page, decode_cursor, encode_cursor, outbox

_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Candidate:
    id: str
    seller_id: str
    carrier: str | None
    origin_country: str | None
    dest_country: str
    status: str
    sub_status: str


def _open_of(kind: str) -> ColumnElement[bool]:
    return exists().where(
        col(Alert.shipment_id) == Shipment.id, col(Alert.kind) == kind, col(Alert.resolved_at).is_(None)
    )


def _handled_since_last_news(kind: str) -> ColumnElement[bool]:
    """The seller resolved this kind by hand after the shipment's latest event: their decision
    (refunded, reshipped...) stands until the carrier reports something new."""
    return exists().where(
        col(Alert.shipment_id) == Shipment.id,
        col(Alert.kind) == kind,
        col(Alert.resolution) != "auto",
        col(Alert.resolved_at) >= func.coalesce(Shipment.last_event_at, Shipment.created_at),
    )


async def candidates(session: AsyncSession, kind: str, branch: ColumnElement[bool], *, limit: int) -> list[Candidate]:
    """Active shipments matching `branch` with no open alert of `kind`."""
    if limit <= 0:
        return []
    columns: list[Any] = [
        Shipment.id,
        Shipment.seller_id,
        Shipment.carrier,
        Shipment.origin_country,
        Shipment.dest_country,
        Shipment.status,
        Shipment.sub_status,
    ]
    query: Any = (
        sa_select(*columns)
        .where(col(Shipment.active) == True, branch, ~_open_of(kind), ~_handled_since_last_news(kind))  # noqa: E712  (= true uses the index)
        .limit(limit)
    )
    return [Candidate(*row) for row in await session.exec(query)]


async def count_matching(session: AsyncSession, branch: ColumnElement[bool]) -> int:
    """Active shipments matching `branch` (the benchmark's floor: the bare indexed count)."""
    query = select(func.count()).select_from(Shipment).where(col(Shipment.active) == True, branch)  # noqa: E712
    return int((await session.exec(query)).one())


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert(Alert) if dialect == "postgresql" else sqlite.insert(Alert)


async def insert_open(
    session: AsyncSession, kind: str, rows: Sequence[tuple[Candidate, dict[str, object]]], *, now: datetime
) -> list[Alert]:
    """Open one alert per candidate; those already open (a concurrent scan) are skipped."""
    out: list[Alert] = []
    for start in range(0, len(rows), _CHUNK):
        values = [
            {
                "id": new_id("alr"),
                "seller_id": c.seller_id,
                "shipment_id": c.id,
                "kind": kind,
                "state": "open",
                "opened_at": now,
                "details": details,
            }
            for c, details in rows[start : start + _CHUNK]
        ]
        stmt = (
            _insert(session)
            .on_conflict_do_nothing(index_elements=["shipment_id", "kind"], index_where=text("resolved_at IS NULL"))
            .returning(Alert)
        )
        result = await session.exec(stmt, params=values)
        out.extend(result.scalars())
    return out


async def lock_shipments(session: AsyncSession, ids: Sequence[str]) -> dict[str, Shipment]:
    """Shipments by id, row-locked on PostgreSQL so the webhook sequence we bump is current;
    locked in id order so two lockers never deadlock."""
    found: dict[str, Shipment] = {}
    for start in range(0, len(ids), _CHUNK):
        query = (
            select(Shipment)
            .where(col(Shipment.id).in_(ids[start : start + _CHUNK]))
            .order_by(col(Shipment.id))
            .with_for_update()
        )
        for shipment in await session.exec(query):
            found[shipment.id] = shipment
    return found


async def cleared(session: AsyncSession, kind: str, condition: ColumnElement[bool], *, limit: int) -> list[str]:
    """Open alerts of `kind` whose shipment no longer meets `condition`."""
    still = exists().where(col(Shipment.id) == Alert.shipment_id, condition)
    query = (
        select(Alert.id)
        .where(col(Alert.kind) == kind, col(Alert.resolved_at).is_(None), ~still)
        .order_by(col(Alert.id))
        .limit(limit)
    )
    return list(await session.exec(query))


async def resolve(
    session: AsyncSession,
    ids: Sequence[str],
    *,
    now: datetime,
    actor: str,
    resolution: str,
    note: str | None = None,
    reshipment_id: str | None = None,
) -> list[Alert]:
    """Resolve the still-unresolved alerts among `ids`; returns those this call resolved."""
    values: dict[str, Any] = {"state": "resolved", "resolved_at": now, "resolved_by": actor, "resolution": resolution}
    if note is not None:
        values["note"] = note
    if reshipment_id is not None:
        values["reshipment_id"] = reshipment_id
    out: list[Alert] = []
    for start in range(0, len(ids), _CHUNK):
        stmt = (
            update(Alert)
            .where(col(Alert.id).in_(ids[start : start + _CHUNK]), col(Alert.resolved_at).is_(None))
            .values(**values)
            .returning(Alert)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        out.extend((await session.exec(stmt)).scalars())
    return out


async def acknowledge(
    session: AsyncSession, alert: Alert, *, now: datetime, actor: str, note: str | None = None
) -> bool:
    """Mark an open alert acknowledged. False when it already was (idempotent);
    ConflictError when it is resolved."""
    values: dict[str, Any] = {"state": "acknowledged", "acknowledged_at": now, "acknowledged_by": actor}
    if note is not None:
        values["note"] = note
    stmt = (
        update(Alert)
        .where(col(Alert.id) == alert.id, col(Alert.state) == "open", col(Alert.resolved_at).is_(None))
        .values(**values)
        .returning(Alert)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    changed = (await session.exec(stmt)).scalars().first()
    if changed is not None:
        return True
    await session.refresh(alert)
    if alert.resolved_at is not None:
        raise ConflictError("alert-resolved", "The alert is already resolved.")
    return False


async def get_alert(session: AsyncSession, seller_id: str, alert_id: str) -> Alert:
    row = (await session.exec(select(Alert).where(Alert.id == alert_id, Alert.seller_id == seller_id))).first()
    if row is None:
        raise NotFoundError(alert_id)
    return row


async def list_alerts(
    session: AsyncSession,
    seller_id: str,
    *,
    state: str | None = None,
    kind: str | None = None,
    shipment_id: str | None = None,
    carrier: str | None = None,
    opened_after: datetime | None = None,
    opened_before: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Alert]:
    """Newest first. Raises ValueError on a bad cursor."""
    query = select(Alert).where(Alert.seller_id == seller_id)
    if state == "unresolved":
        query = query.where(col(Alert.resolved_at).is_(None))
    elif state:
        query = query.where(Alert.state == state)
    if kind:
        query = query.where(Alert.kind == kind)
    if shipment_id:
        query = query.where(Alert.shipment_id == shipment_id)
    if carrier:
        query = query.where(exists().where(col(Shipment.id) == Alert.shipment_id, col(Shipment.carrier) == carrier))
    if opened_after:
        query = query.where(col(Alert.opened_at) >= opened_after)
    if opened_before:
        query = query.where(col(Alert.opened_at) < opened_before)
    if cursor:
        query = query.where(col(Alert.id) < decode_cursor(cursor))
    rows = list(await session.exec(query.order_by(col(Alert.id).desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page(rows[:limit], next_cursor)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def alert_view(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id,
        "shipment_id": a.shipment_id,
        "kind": a.kind,
        "state": a.state,
        "opened_at": a.opened_at.isoformat(),
        "acknowledged_at": _iso(a.acknowledged_at),
        "acknowledged_by": a.acknowledged_by,
        "resolved_at": _iso(a.resolved_at),
        "resolved_by": a.resolved_by,
        "resolution": a.resolution,
        "note": a.note,
        "reshipment_id": a.reshipment_id,
        "details": a.details or {},
    }


async def announce(
    session: AsyncSession, alerts: Sequence[Alert], event_type: str, *, now: datetime, actor: str
) -> None:
    """The outbox message (with the shipment's next webhook sequence) and the audit row of
    each alert, as bulk INSERTs in the caller's transaction. The shipments' rows are locked
    (PostgreSQL) in id order before their sequence is read, so no other writer interleaves."""
    if not alerts:
        return
    ids = sorted({a.shipment_id for a in alerts})
    sequences: dict[str, int] = {}
    for start in range(0, len(ids), _CHUNK):
        query: Any = (
            sa_select(Shipment.id, Shipment.sequence)  # type: ignore[call-overload]
            .where(col(Shipment.id).in_(ids[start : start + _CHUNK]))
            .order_by(col(Shipment.id))
            .with_for_update()
        )
        for sid, seq in await session.exec(query):
            sequences[sid] = int(seq)
    endpoints: dict[str, list[WebhookEndpoint]] = {}
    messages: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    bumped: dict[str, int] = {}
    for alert in alerts:
        if alert.seller_id not in endpoints:
            endpoints[alert.seller_id] = await outbox.enabled_endpoints(session, alert.seller_id)
        sequence = sequences.get(alert.shipment_id, 0) + bumped.get(alert.shipment_id, 0) + 1
        bumped[alert.shipment_id] = bumped.get(alert.shipment_id, 0) + 1
        msg, dlv = outbox.message_rows(
            seller_id=alert.seller_id,
            event_type=event_type,
            data=alert_view(alert),
            now=now,
            endpoints=endpoints[alert.seller_id],
            shipment_id=alert.shipment_id,
            sequence=sequence,
        )
        messages.append(msg)
        deliveries.extend(dlv)
        details: dict[str, object] = {"kind": alert.kind}
        if alert.resolution:
            details["resolution"] = alert.resolution
        audits.append(
            {
                "seller_id": alert.seller_id,
                "actor": actor,
                "action": event_type,
                "object_type": "alert",
                "object_id": alert.id,
                "at": now,
                "details": details,
            }
        )
    for step in sorted(set(bumped.values())):
        same = [sid for sid, n in bumped.items() if n == step]
        for start in range(0, len(same), _CHUNK):
            await session.exec(
                update(Shipment)
                .where(col(Shipment.id).in_(same[start : start + _CHUNK]))
                .values(sequence=Shipment.sequence + step)
                .execution_options(synchronize_session=False)
            )
    for table, rows in ((WebhookMessage, messages), (WebhookDelivery, deliveries), (AuditLog, audits)):
        for start in range(0, len(rows), _CHUNK):
            await session.exec(insert(table), params=rows[start : start + _CHUNK])


async def refresh_statistics(sm: Any) -> None:
    """ANALYZE the alerts table on PostgreSQL. After a burst of openings the planner's row
    estimate for alerts lags until autovacuum runs, and with "1 row" it picks a nested loop
    that rescans every open alert per candidate (seconds instead of milliseconds)."""
    async with sm() as session:
        if session.get_bind().dialect.name != "postgresql":
            return
        await session.exec(text("ANALYZE alerts"))
        await session.commit()
