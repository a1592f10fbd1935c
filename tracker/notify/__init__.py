"""Customer notifications: the notifier job sends queued milestone emails once each.

A `Notification` row moves queued -> sending -> sent (or invalid, failed, cancelled):

1. claim (one short transaction): due `queued` rows, and `sending` rows whose lease ran out,
   become `sending` with a lease and one more attempt. PostgreSQL claims with
   FOR UPDATE SKIP LOCKED, SQLite inside BEGIN IMMEDIATE, so two workers never claim one row;
2. send over SMTP, outside any transaction;
3. mark (one short transaction, guarded by the lease we hold): `sent`, `invalid` (the server
   refused the recipient with 5xx; never retried), or back to `queued` with a backoff (4xx,
   connection refused, timeouts), or `failed` after the last attempt.

The unique (shipment_id, milestone) index keeps one row per milestone, so nothing is sent
twice across restarts and workers. The one window left: a process dying after the SMTP
server accepted the message but before step 3 commits. The lease then expires and the
message is sent again (at-least-once). The window is one round trip long; the Message-ID is
the notification's id on every attempt, so receiving systems can drop the duplicate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import and_, or_, update
from sqlmodel import col, select

from tracker import keys
from tracker.db import SessionMaker, write_transaction
from tracker.models import Notification, Seller, Shipment
from tracker.notify.mailer import Mailer, Outcome, SendResult, SmtpMailer, compose, render
from tracker.settings import Settings

log = logging.getLogger("tracker.notify")

PENDING_STATES = ("queued", "sending")
MAILER = "mailer"  # key in app[keys.SERVICES] for an injected Mailer


@dataclass(frozen=True, slots=True)
class NotifyPolicy:
    batch: int = 50
    lease_seconds: float = 300.0
    max_attempts: int = 8
    backoff_seconds: float = 60.0
    backoff_cap_seconds: float = 6 * 3600.0
    tick_seconds: float = 10.0

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.backoff_cap_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1)))


# -- unsubscribe links -------------------------------------------------------------------------


def _signature(shipment: Shipment) -> str:
    # keyed by the shipment's unguessable public token: no global secret to manage or leak,
    # and a link stays valid exactly as long as the shipment exists
    mac = hmac.new(shipment.public_token.encode(), f"unsubscribe:{shipment.id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode()


def unsubscribe_token(shipment: Shipment) -> str:
    return f"{shipment.id}.{_signature(shipment)}"


def token_shipment_id(token: str) -> str | None:
    shipment_id, dot, sig = token.partition(".")
    return shipment_id if dot and shipment_id and sig else None


def token_valid(token: str, shipment: Shipment) -> bool:
    return hmac.compare_digest(token.encode(), unsubscribe_token(shipment).encode())


def unsubscribe_url(public_url: str, shipment: Shipment) -> str:
    return f"{public_url}/unsubscribe/{unsubscribe_token(shipment)}"


# -- the state machine ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claim:
    id: str
    shipment_id: str
    milestone: str
    attempts: int
    lease_until: datetime


@dataclass(slots=True)
class NotifyResult:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, state: str) -> None:
        self.counts[state] = self.counts.get(state, 0) + 1


async def claim(sm: SessionMaker, *, now: datetime, policy: NotifyPolicy) -> list[Claim]:
    due = or_(
        and_(col(Notification.state) == "queued", col(Notification.next_attempt_at) <= now),
        and_(col(Notification.state) == "sending", col(Notification.lease_until) < now),
    )
    async with write_transaction(sm) as session:
        query = (
            select(Notification)
            .where(due)
            .order_by(col(Notification.next_attempt_at))
            .limit(policy.batch)
            .with_for_update(skip_locked=True)
        )
        rows = list(await session.exec(query))
        lease_until = now + timedelta(seconds=policy.lease_seconds)
        for row in rows:
            row.state = "sending"
            row.lease_until = lease_until
            row.attempts += 1
            session.add(row)
        return [Claim(r.id, r.shipment_id, r.milestone, r.attempts, lease_until) for r in rows]


async def _mark(sm: SessionMaker, c: Claim, **values: Any) -> bool:
    """Record the outcome unless our lease was lost (another worker reclaimed the row)."""
    async with write_transaction(sm) as session:
        stmt = (
            update(Notification)
            .where(
                col(Notification.id) == c.id,
                col(Notification.state) == "sending",
                col(Notification.lease_until) == c.lease_until,
            )
            .values(lease_until=None, **values)
        )
        result: Any = await session.exec(stmt)
        return bool(result.rowcount)


async def _load(sm: SessionMaker, shipment_id: str) -> tuple[Shipment, Seller] | None:
    async with sm() as session:
        shipment = await session.get(Shipment, shipment_id)
        if shipment is None:
            return None
        seller = await session.get(Seller, shipment.seller_id)
        return (shipment, seller) if seller is not None else None


async def deliver(
    sm: SessionMaker,
    settings: Settings,
    mailer: Mailer,
    *,
    clock: Callable[[], datetime],
    policy: NotifyPolicy = NotifyPolicy(),
) -> NotifyResult:
    """One notifier tick: claim due notifications, send each, record each outcome."""
    result = NotifyResult()
    public_url = settings.server.public_url
    domain = settings.email.from_address.rpartition("@")[2] or "localhost"
    for c in await claim(sm, now=clock(), policy=policy):
        loaded = await _load(sm, c.shipment_id)
        if loaded is None:
            await _mark(sm, c, state="cancelled", error="shipment gone")
            result.add("cancelled")
            continue
        shipment, seller = loaded
        if not shipment.customer_email or shipment.notify_opt_out or shipment.pii_erased_at is not None:
            await _mark(sm, c, state="cancelled", error="opted out or no address")
            result.add("cancelled")
            continue
        link = unsubscribe_url(public_url, shipment)
        try:
            rendered = render(shipment, seller, c.milestone, public_url=public_url, unsubscribe_url=link)
            message = compose(
                rendered,
                to=shipment.customer_email,
                from_address=settings.email.from_address,
                seller=seller,
                message_id=f"<{c.id}@{domain}>",
                unsubscribe_url=link,
                now=clock(),
            )
            sent = await mailer.send(message)
        except Exception as err:
            # one message that cannot be built or sent must not stop the tick: the rest of
            # the claim would wait for its lease, and this one would stop the next tick too
            log.exception("notification attempt crashed", extra={"id": c.id})
            sent = SendResult(Outcome.RETRY, f"{type(err).__name__}: {err}"[:500])
        now = clock()
        if sent.outcome is Outcome.SENT:
            state, values = "sent", {"state": "sent", "sent_at": now, "error": None}
        elif sent.outcome is Outcome.INVALID:
            state, values = "invalid", {"state": "invalid", "error": sent.detail}
        elif c.attempts >= policy.max_attempts:
            state, values = "failed", {"state": "failed", "error": sent.detail}
        else:
            state, values = (
                "queued",
                {"state": "queued", "error": sent.detail, "next_attempt_at": now + policy.backoff(c.attempts)},
            )
        if await _mark(sm, c, **values):
            result.add(state)
        else:
            log.warning("notification lease lost before its outcome was recorded", extra={"id": c.id})
    if result.counts:
        log.info("notifications", extra={"counts": result.counts})
    return result


async def opt_out(sm: SessionMaker, shipment_id: str, *, now: datetime) -> int:
    """Stop emails for a shipment: set the flag and cancel what is still pending.
    Returns how many notifications were cancelled."""
    from tracker.store import sellers as seller_store

    async with write_transaction(sm) as session:
        shipment = await session.get(Shipment, shipment_id)
        if shipment is None:
            return 0
        first_time = not shipment.notify_opt_out
        shipment.notify_opt_out = True
        session.add(shipment)
        stmt = (
            update(Notification)
            .where(col(Notification.shipment_id) == shipment_id, col(Notification.state) == "queued")
            .values(state="cancelled", error="unsubscribed")
        )
        cancelled: Any = await session.exec(stmt)
        if first_time:
            await seller_store.audit(
                session,
                seller_id=shipment.seller_id,
                actor="customer",
                action="notifications.unsubscribed",
                object_type="shipment",
                object_id=shipment.id,
                now=now,
            )
        return int(cancelled.rowcount or 0)


async def job(app: web.Application) -> None:
    """The scheduler's "notify" job."""
    settings = app[keys.SETTINGS]
    if not settings.email.enabled:
        return
    mailer: Mailer = app[keys.SERVICES].get(MAILER) or SmtpMailer(settings.email)
    await deliver(app[keys.SESSIONMAKER], settings, mailer, clock=app[keys.CLOCK])
