"""The webhook dispatcher: claim due deliveries with a lease, send them, record the outcome.

At-least-once: a delivery is leased before it is sent and settled only afterwards, so a
dispatcher that dies in between leaves a lease that expires and another dispatcher sends
the same message again, with the same `webhook-id`. Any number of dispatchers may run: on
PostgreSQL they skip each other's locked rows, on SQLite the claim holds the write lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from aiohttp import web
from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker import keys
from tracker.db import SessionMaker, write_transaction
from tracker.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from tracker.settings import WebhookSettings
from tracker.store import outbox
from tracker.store.webhooks import active_secrets
from tracker.webhooks import retry, signing
from tracker.webhooks.sender import AttemptResult, deliver, make_session
from tracker.webhooks.ssrf import Lookup

log = logging.getLogger("tracker.webhooks")

WEBHOOK_HTTP = web.AppKey("webhook_http", aiohttp.ClientSession)
WEBHOOK_OWNER = web.AppKey("webhook_owner", str)

CLAIM_LIMIT = 500
EXCERPT_CHARS = 512
# A tick keeps claiming while batches come back full, but yields to the scheduler eventually.
MAX_PASSES_PER_TICK = 20
# last_success_at moves at most this often, so a healthy endpoint is not rewritten per delivery
_SUCCESS_GRANULARITY = timedelta(minutes=1)


def lease_for(settings: WebhookSettings) -> timedelta:
    """How long a claim lasts: past the request timeout with room for recording."""
    return timedelta(seconds=settings.timeout_seconds * 2 + 30)


def new_owner() -> str:
    """A lease owner id unique to this process."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """Everything needed to send one delivery without touching the database."""

    delivery_id: str
    message_id: str
    payload: str
    url: str
    secrets: tuple[str, ...]


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        col(WebhookDelivery.state) == "pending",
        col(WebhookDelivery.next_attempt_at) <= now,
        or_(col(WebhookDelivery.lease_until).is_(None), col(WebhookDelivery.lease_until) <= now),
    )


async def _claim(
    session: AsyncSession, *, now: datetime, owner: str, settings: WebhookSettings, limit: int
) -> list[Claimed]:
    per_endpoint = settings.concurrency_per_endpoint
    # Rank within each endpoint first so one backlogged endpoint cannot fill the batch.
    ranked = (
        select(
            col(WebhookDelivery.id).label("id"),
            col(WebhookDelivery.next_attempt_at).label("due_at"),
            func.row_number()
            .over(
                partition_by=WebhookDelivery.endpoint_id,
                order_by=(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id)),
            )
            .label("rank"),
        )
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == WebhookDelivery.endpoint_id)
        .where(_due(now), WebhookEndpoint.enabled == True)  # noqa: E712
        .subquery()
    )
    picked = select(ranked.c.id).where(ranked.c.rank <= per_endpoint).order_by(ranked.c.due_at).limit(limit)
    # The due conditions are repeated so PostgreSQL re-checks them on rows another
    # dispatcher leased between the ranking and the lock.
    rows = list(
        await session.exec(
            select(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(picked), _due(now))
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
    )
    if not rows:
        return []
    endpoint_ids = sorted({d.endpoint_id for d in rows})
    # Locking the endpoints serialises claims per endpoint across dispatchers, so the
    # in-flight count below is exact (a no-op on SQLite, which is already serialised).
    await session.exec(
        select(WebhookEndpoint.id)
        .where(col(WebhookEndpoint.id).in_(endpoint_ids))
        .order_by(col(WebhookEndpoint.id))
        .with_for_update()
    )
    in_flight = Counter(
        dict(
            (
                await session.exec(
                    select(WebhookDelivery.endpoint_id, func.count())
                    .where(
                        col(WebhookDelivery.endpoint_id).in_(endpoint_ids),
                        WebhookDelivery.state == "pending",
                        col(WebhookDelivery.lease_until) > now,
                    )
                    .group_by(col(WebhookDelivery.endpoint_id))
                )
            ).all()
        )
    )
    chosen: list[str] = []
    for delivery in sorted(rows, key=lambda d: (d.next_attempt_at or now, d.id)):
        if in_flight[delivery.endpoint_id] < per_endpoint:
            in_flight[delivery.endpoint_id] += 1
            chosen.append(delivery.id)
    if not chosen:
        return []
    await session.exec(
        update(WebhookDelivery)
        .where(col(WebhookDelivery.id).in_(chosen))
        .values(lease_owner=owner, lease_until=now + lease_for(settings), attempts=WebhookDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    details = await session.exec(
        select(WebhookDelivery.id, WebhookMessage.id, WebhookMessage.payload, WebhookEndpoint)
        .join(WebhookMessage, col(WebhookMessage.id) == WebhookDelivery.message_id)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == WebhookDelivery.endpoint_id)
        .where(col(WebhookDelivery.id).in_(chosen))
    )
    return [
        Claimed(delivery_id, message_id, payload, endpoint.url, tuple(active_secrets(endpoint, now)))
        for delivery_id, message_id, payload, endpoint in details
    ]


async def _send(
    http: aiohttp.ClientSession,
    item: Claimed,
    *,
    now: datetime,
    settings: WebhookSettings,
    lookup: Lookup | None,
) -> AttemptResult:
    body = item.payload.encode("utf-8")
    headers = signing.headers(item.secrets, item.message_id, now, body)
    return await deliver(
        http,
        item.url,
        body,
        headers,
        timeout_s=settings.timeout_seconds,
        max_response_bytes=EXCERPT_CHARS,
        allow_loopback=settings.allow_loopback,
        resolver=lookup,
        clock=lambda: now,
    )


async def _disable(session: AsyncSession, endpoint: WebhookEndpoint, reason: str, *, now: datetime) -> None:
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = now
    session.add(endpoint)
    await session.flush()
    await outbox.enqueue(
        session,
        seller_id=endpoint.seller_id,
        event_type="endpoint.disabled",
        now=now,
        data={
            "id": endpoint.id,
            "url": endpoint.url,
            "reason": reason,
            "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
        },
    )
    log.warning("webhook endpoint disabled", extra={"endpoint": endpoint.id, "reason": reason})


async def _record(
    session: AsyncSession,
    results: Sequence[tuple[Claimed, AttemptResult]],
    *,
    now: datetime,
    owner: str,
    settings: WebhookSettings,
    rand: Callable[[], float],
) -> None:
    ids = [item.delivery_id for item, _ in results]
    deliveries = {
        d.id: d
        for d in await session.exec(select(WebhookDelivery).where(col(WebhookDelivery.id).in_(ids)).with_for_update())
    }
    endpoints = {
        e.id: e
        for e in await session.exec(
            select(WebhookEndpoint).where(col(WebhookEndpoint.id).in_({d.endpoint_id for d in deliveries.values()}))
        )
    }
    window = timedelta(days=settings.disable_after_days)
    for item, result in results:
        delivery = deliveries.get(item.delivery_id)
        if delivery is None:
            continue  # its endpoint was deleted meanwhile
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=result.status,
                latency_ms=result.latency_ms,
                error=result.error,
                response_excerpt=(result.response_excerpt or "")[:EXCERPT_CHARS] or None,
                details={"owner": owner},
            )
        )
        if delivery.lease_owner != owner:
            continue  # re-armed or taken over while in flight: the newer claim decides
        endpoint = endpoints[delivery.endpoint_id]
        outcome = retry.classify(result.status, result.error)
        delivery.lease_owner = None
        delivery.lease_until = None
        delivery.last_status = result.status
        if outcome is retry.Outcome.SUCCESS:
            delivery.state = "succeeded"
            delivery.completed_at = now
            endpoint.failing_since = None
            last = endpoint.last_success_at
            if last is None or now - last >= _SUCCESS_GRANULARITY:
                endpoint.last_success_at = now
            continue
        if outcome is retry.Outcome.GONE:
            delivery.state = "failed"
            delivery.completed_at = now
            if endpoint.enabled:
                await _disable(session, endpoint, "gone: the endpoint answered 410", now=now)
            continue
        endpoint.failing_since = endpoint.failing_since or now
        when = retry.next_attempt_at(delivery.attempts, now, rand(), result.retry_after)
        if when is None:
            delivery.state = "failed"
            delivery.completed_at = now
        else:
            delivery.next_attempt_at = when
        if endpoint.enabled and retry.should_disable(
            endpoint.failing_since, now, window=window, last_success_at=endpoint.last_success_at
        ):
            await _disable(session, endpoint, f"failing since {endpoint.failing_since.isoformat()}", now=now)


async def run_once(
    sessionmaker: SessionMaker,
    http_session: aiohttp.ClientSession,
    *,
    now: datetime,
    settings: WebhookSettings,
    owner: str,
    rand: Callable[[], float],
    limit: int = CLAIM_LIMIT,
    lookup: Lookup | None = None,
) -> int:
    """Claim, send and settle one batch of due deliveries; return how many were sent.

    `rand` returns uniform numbers in [0, 1] for retry jitter; `lookup` replaces DNS.
    """
    async with write_transaction(sessionmaker) as session:
        claimed = await _claim(session, now=now, owner=owner, settings=settings, limit=limit)
    if not claimed:
        return 0
    sent = await asyncio.gather(
        *(_send(http_session, item, now=now, settings=settings, lookup=lookup) for item in claimed)
    )
    async with write_transaction(sessionmaker) as session:
        await _record(
            session, list(zip(claimed, sent, strict=True)), now=now, owner=owner, settings=settings, rand=rand
        )
    return len(claimed)


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the guarded delivery session and this process's lease owner id."""
    lookup: Lookup | None = app[keys.SERVICES].get("webhook_lookup")
    session = make_session(allow_loopback=app[keys.SETTINGS].webhooks.allow_loopback, lookup=lookup)
    app[WEBHOOK_HTTP] = session
    app[WEBHOOK_OWNER] = new_owner()
    yield
    await session.close()


async def tick(app: web.Application) -> None:
    """The periodic job: drain due deliveries, a bounded number of batches per tick."""
    settings = app[keys.SETTINGS].webhooks
    for _ in range(MAX_PASSES_PER_TICK):
        sent = await run_once(
            app[keys.SESSIONMAKER],
            app[WEBHOOK_HTTP],
            now=app[keys.CLOCK](),
            settings=settings,
            owner=app[WEBHOOK_OWNER],
            rand=random.random,
            lookup=app[keys.SERVICES].get("webhook_lookup"),
        )
        if sent < CLAIM_LIMIT:
            return
