"""/v1/shipments: register, batch-register, read, list, update, stop, refresh."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker import keys
from tracker.db import writing
from tracker.store import ConflictError, NotFoundError
from tracker.store import idempotency as idem
from tracker.store import sellers as seller_store
from tracker.store import shipments as store
from tracker.store import tracking as tracking_store
from tracker.store.outbox import enqueue
from tracker.store.sellers import Principal
from tracker.web.api.schemas import ListFilters, ShipmentBatch, ShipmentCreate, ShipmentUpdate
from tracker.web.auth import require
from tracker.web.problems import Problem
from tracker.web.validation import fetch_page, parse_query, read_json, validate

MAX_IDEMPOTENCY_KEY = 255


def _public_url(request: web.Request) -> str:
    return request.app[keys.SETTINGS].server.public_url


async def _idempotent(
    request: web.Request,
    principal: Principal,
    produce: Callable[[AsyncSession], Awaitable[tuple[int, Any]]],
) -> web.Response:
    """Run `produce` in one transaction, remembering its answer under the Idempotency-Key."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise Problem(400, "bad-idempotency-key", f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters.")
    raw = await request.read()
    req_hash = idem.request_hash(request.method, request.path, raw)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        if key is not None:
            try:
                replay = await idem.lookup(session, principal.seller_id, key, req_hash)
            except idem.KeyReused as err:
                raise Problem(
                    422,
                    "idempotency-key-reused",
                    "This Idempotency-Key was used with a different request body.",
                ) from err
            if replay is not None:
                return web.Response(
                    status=replay.status,
                    text=replay.body,
                    content_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
        try:
            status, payload = await produce(session)
        except ConflictError as err:
            await session.rollback()
            raise Problem(409, err.slug, err.detail) from err
        except NotFoundError as err:
            await session.rollback()
            raise Problem(
                422,
                "unknown-reference",
                f"No such shipment: {err}",
                errors=[{"path": "replaces", "message": "no such shipment", "type": "reference"}],
            ) from err
        text = json.dumps(payload, ensure_ascii=False)
        if key is not None:
            idem.remember(session, principal.seller_id, key, req_hash, status, text, now=now)
        try:
            await session.commit()
        except IntegrityError as err:
            # a concurrent request registered the same order number or used the same key
            await session.rollback()
            raise Problem(
                409, "conflict", "A concurrent request changed the same order or Idempotency-Key; retry."
            ) from err
    return web.Response(status=status, text=text, content_type="application/json")


async def create(request: web.Request) -> web.Response:
    principal = require(request, "shipments:write")
    data = await read_json(request)
    body = validate(ShipmentCreate, data)
    now = request.app[keys.CLOCK]()

    async def produce(session: AsyncSession) -> tuple[int, Any]:
        shipment = await store.create_shipment(
            session, principal.seller_id, body.to_new_shipment(), now=now, public_url=_public_url(request)
        )
        await seller_store.audit(
            session,
            seller_id=principal.seller_id,
            actor=principal.key_prefix,
            action="shipment.created",
            object_type="shipment",
            object_id=shipment.id,
            now=now,
        )
        return 201, store.shipment_view(shipment, [], public_url=_public_url(request))

    return await _idempotent(request, principal, produce)


async def create_batch(request: web.Request) -> web.Response:
    principal = require(request, "shipments:write")
    batch = validate(ShipmentBatch, await read_json(request))
    items: list[ShipmentCreate] = []
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(batch.shipments):
        try:
            items.append(validate(ShipmentCreate, item, prefix=f"shipments[{i}]"))
        except Problem as p:
            errors.extend(p.errors)
    if errors:
        raise Problem(
            422,
            "validation-error",
            "Some shipments in the batch are not valid; none was created.",
            errors=errors,
        )
    now = request.app[keys.CLOCK]()

    async def produce(session: AsyncSession) -> tuple[int, Any]:
        shipments = await store.create_shipments(
            session,
            principal.seller_id,
            [item.to_new_shipment() for item in items],
            now=now,
            public_url=_public_url(request),
        )
        created = [store.shipment_view(s, [], public_url=_public_url(request)) for s in shipments]
        await seller_store.audit(
            session,
            seller_id=principal.seller_id,
            actor=principal.key_prefix,
            action="shipments.batch_created",
            object_type="batch",
            object_id=str(len(created)),
            now=now,
        )
        return 201, {"shipments": created}

    return await _idempotent(request, principal, produce)


async def get_one(request: web.Request) -> web.Response:
    principal = require(request, "shipments:read")
    async with request.app[keys.SESSIONMAKER]() as session:
        try:
            shipment = await store.get_shipment(session, principal.seller_id, request.match_info["id"])
        except NotFoundError as err:
            raise Problem(404, "not-found", "No such shipment.") from err
        events = await store.events_of(session, shipment.id)
        alerts = await store.open_alert_kinds(session, [shipment.id])
    return web.json_response(
        store.shipment_view(shipment, events, public_url=_public_url(request), open_alerts=alerts.get(shipment.id, []))
    )


async def list_all(request: web.Request) -> web.Response:
    principal = require(request, "shipments:read")
    filters = parse_query(request, ListFilters)
    async with request.app[keys.SESSIONMAKER]() as session:
        page = await fetch_page(store.list_shipments, session, principal.seller_id, filters)
        alerts = await store.open_alert_kinds(session, [s.id for s in page.items])
    return web.json_response(
        {
            "data": [
                store.shipment_view(s, [], public_url=_public_url(request), open_alerts=alerts.get(s.id, []))
                for s in page.items
            ],
            "next_cursor": page.next_cursor,
        }
    )


async def update(request: web.Request) -> web.Response:
    principal = require(request, "shipments:write")
    data = await read_json(request)
    body = validate(ShipmentUpdate, data)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        try:
            shipment = await store.get_shipment(session, principal.seller_id, request.match_info["id"])
        except NotFoundError as err:
            raise Problem(404, "not-found", "No such shipment.") from err
        changes: dict[str, Any] = {}
        if "carrier" in body.model_fields_set and body.carrier and body.carrier != shipment.carrier:
            changes["carrier"] = [shipment.carrier, body.carrier]
            shipment.carrier = body.carrier
            shipment.carrier_candidates = [body.carrier]
            if shipment.stopped_at is None:
                # the new carrier may know what the old one did not, whatever the status
                await tracking_store.set_next_poll(session, shipment, now)
        if "promised_delivery" in body.model_fields_set and body.promised_delivery != shipment.promised_delivery:
            changes["promised_delivery"] = [str(shipment.promised_delivery), str(body.promised_delivery)]
            shipment.promised_delivery = body.promised_delivery
        if changes:
            shipment.updated_at = now
            session.add(shipment)
            await enqueue(
                session,
                seller_id=principal.seller_id,
                event_type="shipment.updated",
                now=now,
                shipment=shipment,
                data={"id": shipment.id, "changes": changes},
            )
            await seller_store.audit(
                session,
                seller_id=principal.seller_id,
                actor=principal.key_prefix,
                action="shipment.updated",
                object_type="shipment",
                object_id=shipment.id,
                now=now,
                details=changes,
            )
            await session.commit()
        events = await store.events_of(session, shipment.id)
    return web.json_response(store.shipment_view(shipment, events, public_url=_public_url(request)))


async def stop(request: web.Request) -> web.Response:
    principal = require(request, "shipments:write")
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        try:
            shipment = await store.get_shipment(session, principal.seller_id, request.match_info["id"])
        except NotFoundError as err:
            raise Problem(404, "not-found", "No such shipment.") from err
        if shipment.stopped_at is None:
            shipment.stopped_at = now
            shipment.stop_reason = "stopped_by_seller"
            shipment.updated_at = now
            await tracking_store.set_next_poll(session, shipment, None)
            await seller_store.audit(
                session,
                seller_id=principal.seller_id,
                actor=principal.key_prefix,
                action="shipment.stopped",
                object_type="shipment",
                object_id=shipment.id,
                now=now,
            )
            await session.commit()
    return web.json_response(store.shipment_view(shipment, [], public_url=_public_url(request)))


async def refresh(request: web.Request) -> web.Response:
    principal = require(request, "shipments:write")
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        try:
            shipment = await store.get_shipment(session, principal.seller_id, request.match_info["id"])
        except NotFoundError as err:
            raise Problem(404, "not-found", "No such shipment.") from err
        if shipment.stopped_at is not None:
            raise Problem(409, "tracking-stopped", "Tracking of this shipment was stopped.")
        await tracking_store.set_next_poll(session, shipment, now)
        await session.commit()
    return web.json_response({"id": shipment.id, "next_poll_at": now.isoformat()}, status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/shipments", create)
    app.router.add_get("/v1/shipments", list_all)
    app.router.add_post("/v1/shipments/batch", create_batch)
    app.router.add_get("/v1/shipments/{id}", get_one)
    app.router.add_patch("/v1/shipments/{id}", update)
    app.router.add_post("/v1/shipments/{id}/stop", stop)
    app.router.add_post("/v1/shipments/{id}/refresh", refresh)
