"""Queries for webhook endpoints and the delivery log (messages, deliveries, attempts)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage, new_id
from tracker.store import NotFoundError, Page, decode_cursor, encode_cursor
from tracker.webhooks.signing import new_secret

#: messages addressed to one endpoint on purpose; never fanned out by redeliver or replay
TARGETED_EVENT_TYPES = frozenset({"endpoint.test"})


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def active_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets a delivery is signed with: the current one, plus the previous during its overlap."""
    chosen = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and now < expires:
        chosen.append(endpoint.previous_secret)
    return chosen


def subscribes(endpoint: WebhookEndpoint, event_type: str) -> bool:
    """Whether the endpoint's filter (empty: everything) lets `event_type` through."""
    return not endpoint.event_types or event_type in endpoint.event_types


def endpoint_view(endpoint: WebhookEndpoint, *, secret: bool = False) -> dict[str, Any]:
    """The API shape of an endpoint; the secret only when just created or rotated."""
    view: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": _iso(endpoint.failing_since),
        "last_success_at": _iso(endpoint.last_success_at),
        "previous_secret_expires_at": _iso(endpoint.previous_secret_expires_at),
        "created_at": _iso(endpoint.created_at),
        "updated_at": _iso(endpoint.updated_at),
    }
    if secret:
        view["secret"] = endpoint.secret
    return view


async def create_endpoint(
    session: AsyncSession,
    seller_id: str,
    *,
    url: str,
    event_types: Sequence[str],
    description: str,
    now: datetime,
) -> WebhookEndpoint:
    """Add an endpoint with a fresh secret."""
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        seller_id=seller_id,
        url=url,
        description=description,
        event_types=list(dict.fromkeys(event_types)),
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    return endpoint


async def list_endpoints(session: AsyncSession, seller_id: str) -> list[WebhookEndpoint]:
    """Every endpoint of the seller, newest first."""
    rows = await session.exec(
        select(WebhookEndpoint).where(WebhookEndpoint.seller_id == seller_id).order_by(col(WebhookEndpoint.id).desc())
    )
    return list(rows)


async def get_endpoint(session: AsyncSession, seller_id: str, endpoint_id: str) -> WebhookEndpoint:
    """One endpoint of the seller; another seller's is `NotFoundError` like a missing one."""
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.seller_id != seller_id:
        raise NotFoundError(endpoint_id)
    return endpoint


def set_enabled(endpoint: WebhookEndpoint, enabled: bool, *, now: datetime, reason: str | None = None) -> None:
    """Enable (clearing the failure streak) or disable an endpoint."""
    endpoint.enabled = enabled
    endpoint.disabled_reason = None if enabled else reason
    if enabled:
        endpoint.failing_since = None
    endpoint.updated_at = now


def rotate_secret(endpoint: WebhookEndpoint, *, now: datetime, overlap: timedelta) -> None:
    """Replace the secret; the old one keeps signing alongside for `overlap`."""
    if overlap > timedelta(0):
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + overlap
    else:
        endpoint.previous_secret = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret = new_secret()
    endpoint.updated_at = now


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint and its delivery history; the messages stay in the log."""
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    await session.exec(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(deliveries)))
    await session.exec(delete(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint.id))
    await session.delete(endpoint)


# --- the delivery log -------------------------------------------------------------------


async def list_messages(
    session: AsyncSession,
    seller_id: str,
    *,
    event_type: str | None = None,
    since: datetime | None = None,
    shipment_id: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[WebhookMessage]:
    """The seller's messages, newest first (ids are time-ordered)."""
    query = select(WebhookMessage).where(WebhookMessage.seller_id == seller_id)
    if event_type:
        query = query.where(WebhookMessage.event_type == event_type)
    if since:
        query = query.where(WebhookMessage.created_at >= since)
    if shipment_id:
        query = query.where(WebhookMessage.shipment_id == shipment_id)
    if cursor:
        query = query.where(WebhookMessage.id < decode_cursor(cursor))
    rows = list(await session.exec(query.order_by(col(WebhookMessage.id).desc()).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page(rows[:limit], next_cursor)


async def get_message(session: AsyncSession, seller_id: str, message_id: str) -> WebhookMessage:
    message = await session.get(WebhookMessage, message_id)
    if message is None or message.seller_id != seller_id:
        raise NotFoundError(message_id)
    return message


def message_view(message: WebhookMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "event_type": message.event_type,
        "shipment_id": message.shipment_id,
        "sequence": message.sequence,
        "created_at": _iso(message.created_at),
        "payload": json.loads(message.payload),
    }


def _attempt_view(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "attempted_at": _iso(attempt.attempted_at),
        "status_code": attempt.status_code,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
        "response_excerpt": attempt.response_excerpt,
    }


async def deliveries_view(session: AsyncSession, message_id: str) -> list[dict[str, Any]]:
    """Every delivery of a message with its attempts, oldest first."""
    deliveries = list(
        await session.exec(
            select(WebhookDelivery).where(WebhookDelivery.message_id == message_id).order_by(col(WebhookDelivery.id))
        )
    )
    attempts: dict[str, list[dict[str, Any]]] = {d.id: [] for d in deliveries}
    if deliveries:
        rows = await session.exec(
            select(WebhookAttempt)
            .where(col(WebhookAttempt.delivery_id).in_(list(attempts)))
            .order_by(col(WebhookAttempt.attempted_at), col(WebhookAttempt.id))
        )
        for attempt in rows:
            attempts[attempt.delivery_id].append(_attempt_view(attempt))
    return [
        {
            "id": d.id,
            "endpoint_id": d.endpoint_id,
            "state": d.state,
            "attempt_count": d.attempts,
            "next_attempt_at": _iso(d.next_attempt_at) if d.state == "pending" else None,
            "last_status": d.last_status,
            "created_at": _iso(d.created_at),
            "completed_at": _iso(d.completed_at),
            "attempts": attempts[d.id],
        }
        for d in deliveries
    ]


async def requeue(
    session: AsyncSession, messages: Sequence[WebhookMessage], endpoint: WebhookEndpoint, *, now: datetime
) -> list[str]:
    """Make each message due again for `endpoint`: re-arm its delivery or add one.

    A re-armed delivery starts a fresh retry schedule and drops any lease, so a copy still
    in flight is recorded as an attempt but no longer decides the delivery's state.
    """
    by_message: dict[str, WebhookDelivery] = {}
    ids = [m.id for m in messages]
    for start in range(0, len(ids), 500):
        rows = await session.exec(
            select(WebhookDelivery).where(
                WebhookDelivery.endpoint_id == endpoint.id,
                col(WebhookDelivery.message_id).in_(ids[start : start + 500]),
            )
        )
        by_message.update((d.message_id, d) for d in rows)
    queued: list[str] = []
    for message in messages:
        delivery = by_message.get(message.id)
        if delivery is None:
            delivery = WebhookDelivery(
                id=new_id("dlv"),
                seller_id=message.seller_id,
                message_id=message.id,
                endpoint_id=endpoint.id,
                created_at=now,
            )
        delivery.state = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.lease_owner = None
        delivery.lease_until = None
        delivery.completed_at = None
        session.add(delivery)
        queued.append(delivery.id)
    return queued


async def redeliver(
    session: AsyncSession, message: WebhookMessage, *, now: datetime, endpoint: WebhookEndpoint | None = None
) -> list[str]:
    """Queue `message` again to `endpoint`, or to every enabled endpoint it matches now."""
    if endpoint is not None:
        return await requeue(session, [message], endpoint, now=now)
    if message.event_type in TARGETED_EVENT_TYPES:
        targets = list(
            await session.exec(
                select(WebhookEndpoint)
                .join(WebhookDelivery, col(WebhookDelivery.endpoint_id) == WebhookEndpoint.id)
                .where(WebhookDelivery.message_id == message.id, WebhookEndpoint.enabled == True)  # noqa: E712
            )
        )
    else:
        targets = [
            e
            for e in await session.exec(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.seller_id == message.seller_id,
                    WebhookEndpoint.enabled == True,  # noqa: E712
                )
            )
            if subscribes(e, message.event_type)
        ]
    queued: list[str] = []
    for target in sorted(targets, key=lambda e: e.id):
        queued += await requeue(session, [message], target, now=now)
    return queued


async def replay_since(session: AsyncSession, endpoint: WebhookEndpoint, since: datetime, *, now: datetime) -> int:
    """Queue every message since `since` that the endpoint subscribes to; return how many."""
    rows = await session.exec(
        select(WebhookMessage)
        .where(
            WebhookMessage.seller_id == endpoint.seller_id,
            WebhookMessage.created_at >= since,
            col(WebhookMessage.event_type).not_in(TARGETED_EVENT_TYPES),
        )
        .order_by(col(WebhookMessage.id))
    )
    messages = [m for m in rows if subscribes(endpoint, m.event_type)]
    return len(await requeue(session, messages, endpoint, now=now))
