"""The transactional outbox: a webhook message and its deliveries are written in the same
transaction as the change that causes them, so a change is never seen without its message."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.models import Shipment, WebhookDelivery, WebhookEndpoint, WebhookMessage, new_id
from tracker.models.types import iso_text

EVENT_TYPES: tuple[str, ...] = (
    "shipment.created",
    "shipment.updated",
    "shipment.status_changed",
    "shipment.delivered",
    "shipment.eta_changed",
    "shipment.received_confirmed",
    "alert.opened",
    "alert.resolved",
    "declaration.status_changed",
    "endpoint.disabled",
    "endpoint.test",
)


async def enabled_endpoints(session: AsyncSession, seller_id: str) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.seller_id == seller_id, col(WebhookEndpoint.enabled).is_(True)
    )
    return list(await session.exec(query))


def _iso(dt: datetime) -> str:
    # equal instants in other zones are written with their own offset: only UTC is cached
    return _utc_iso(dt) if dt.tzinfo is UTC else iso_text(dt).replace("+00:00", "Z")


# a batch's messages share one `now`
@lru_cache(maxsize=64)
def _utc_iso(dt: datetime) -> str:
    return iso_text(dt).replace("+00:00", "Z")


def subscribed(endpoints: Sequence[WebhookEndpoint], event_type: str) -> list[WebhookEndpoint]:
    return [e for e in endpoints if not e.event_types or event_type in e.event_types]


def payload(event_type: str, data: dict[str, Any], now: datetime) -> str:
    document = {"type": event_type, "timestamp": _iso(now), "data": data}
    try:
        # datetimes go through `default` as with json.dumps, so both write the same text
        return orjson.dumps(document, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()
    except orjson.JSONEncodeError:
        # what orjson refuses (integers beyond 64 bits, non-string keys) json.dumps writes
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)


def message_rows(
    *,
    seller_id: str,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    endpoints: Sequence[WebhookEndpoint],
    shipment_id: str | None = None,
    sequence: int | None = None,
    filter_by_type: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Column values of one message and its deliveries, for bulk INSERTs on hot paths."""
    if sequence is not None:
        data = {**data, "sequence": sequence}
    msg_id = new_id("msg")
    msg = {
        "id": msg_id,
        "seller_id": seller_id,
        "event_type": event_type,
        "shipment_id": shipment_id,
        "sequence": sequence,
        "payload": payload(event_type, data, now),
        "created_at": now,
    }
    deliveries = [
        {
            "id": new_id("dlv"),
            "seller_id": seller_id,
            "message_id": msg_id,
            "endpoint_id": e.id,
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for e in (subscribed(endpoints, event_type) if filter_by_type else endpoints)
    ]
    return msg, deliveries


async def enqueue(
    session: AsyncSession,
    *,
    seller_id: str,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    shipment: Shipment | None = None,
    only_endpoint_id: str | None = None,
) -> WebhookMessage:
    """Add a message and one pending delivery per enabled endpoint subscribed to it.

    Hot paths that write many messages use `message_rows` with bulk INSERTs instead."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type}")
    sequence: int | None = None
    if shipment is not None:
        shipment.sequence += 1
        sequence = shipment.sequence
        session.add(shipment)
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.seller_id == seller_id, col(WebhookEndpoint.enabled).is_(True)
    )
    if only_endpoint_id is not None:
        query = query.where(WebhookEndpoint.id == only_endpoint_id)
    endpoints = list(await session.exec(query))
    msg_row, delivery_rows = message_rows(
        seller_id=seller_id,
        event_type=event_type,
        data=data,
        now=now,
        endpoints=endpoints,
        shipment_id=shipment.id if shipment is not None else None,
        sequence=sequence,
        # a message aimed at one endpoint (a test, a redelivery) ignores its type filter
        filter_by_type=only_endpoint_id is None,
    )
    msg = WebhookMessage(**msg_row)
    session.add(msg)
    if delivery_rows:
        # the message row first: without ORM relationships the flush does not order tables by their keys
        await session.flush()
        session.add_all(WebhookDelivery(**row) for row in delivery_rows)
    return msg
