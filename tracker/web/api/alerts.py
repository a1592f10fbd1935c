"""/v1/alerts: list, read (with the audit trail), acknowledge, resolve (optionally re-shipping)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker import keys
from tracker.alerts import KINDS
from tracker.db import writing
from tracker.models import Alert
from tracker.store import ConflictError, NotFoundError
from tracker.store import alerts as store
from tracker.store import sellers as seller_store
from tracker.store import shipments as shipment_store
from tracker.store.outbox import enqueue
from tracker.store.sellers import Principal
from tracker.web import openapi
from tracker.web.api.schemas import CarrierCode, TrackingNumber
from tracker.web.auth import require
from tracker.web.problems import Problem
from tracker.web.validation import fetch_page, parse_query, read_json, validate

ACTIONS = ("reshipped", "refunded", "compensated", "found", "other")
STATES = ("open", "acknowledged", "resolved", "unresolved")
Note = Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AlertFilters(_Strict):
    state: Literal["open", "acknowledged", "resolved", "unresolved"] | None = None
    kind: Literal[KINDS] | None = None  # type: ignore[valid-type]
    shipment_id: str | None = None
    carrier: str | None = None
    opened_after: datetime | None = None
    opened_before: datetime | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


class AlertAcknowledge(_Strict):
    note: Note | None = None


class Reshipment(_Strict):
    tracking_number: TrackingNumber
    carrier: CarrierCode | None = None


class AlertResolve(_Strict):
    action: Literal["reshipped", "refunded", "compensated", "found", "other"]
    note: Note | None = None
    reshipment: Reshipment | None = None

    @model_validator(mode="after")
    def _reshipment_with_reshipped(self) -> AlertResolve:
        if self.action == "reshipped" and self.reshipment is None:
            raise ValueError("action 'reshipped' needs reshipment.tracking_number")
        if self.action != "reshipped" and self.reshipment is not None:
            raise ValueError("reshipment is only accepted with action 'reshipped'")
        return self


def _view(alert: Alert, trail: list[Any] | None = None) -> dict[str, Any]:
    view = store.alert_view(alert)
    if trail is not None:
        view["audit"] = [
            {"at": t.at.isoformat(), "actor": t.actor, "action": t.action, "details": t.details or {}} for t in trail
        ]
    return view


async def _load(session: AsyncSession, principal: Principal, alert_id: str) -> Alert:
    try:
        return await store.get_alert(session, principal.seller_id, alert_id)
    except NotFoundError as err:
        raise Problem(404, "not-found", "No such alert.") from err


async def _detail(session: AsyncSession, principal: Principal, alert: Alert) -> dict[str, Any]:
    trail = await seller_store.audit_trail(session, principal.seller_id, "alert", alert.id)
    return _view(alert, trail)


async def list_all(request: web.Request) -> web.Response:
    principal = require(request, "shipments:read")
    filters = parse_query(request, AlertFilters)
    async with request.app[keys.SESSIONMAKER]() as session:
        page = await fetch_page(store.list_alerts, session, principal.seller_id, filters)
    return web.json_response({"data": [_view(a) for a in page.items], "next_cursor": page.next_cursor})


async def get_one(request: web.Request) -> web.Response:
    principal = require(request, "shipments:read")
    async with request.app[keys.SESSIONMAKER]() as session:
        alert = await _load(session, principal, request.match_info["id"])
        return web.json_response(await _detail(session, principal, alert))


async def _optional_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    return await read_json(request)


async def acknowledge(request: web.Request) -> web.Response:
    principal = require(request, "alerts:write")
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        alert = await _load(session, principal, request.match_info["id"])
        body = validate(AlertAcknowledge, await _optional_body(request))
        try:
            changed = await store.acknowledge(session, alert, now=now, actor=principal.key_prefix, note=body.note)
        except ConflictError as err:
            raise Problem(409, err.slug, err.detail) from err
        if changed:
            await seller_store.audit(
                session,
                seller_id=principal.seller_id,
                actor=principal.key_prefix,
                action="alert.acknowledged",
                object_type="alert",
                object_id=alert.id,
                now=now,
                details={"note": body.note} if body.note else None,
            )
            await session.commit()
        alert = await _load(session, principal, alert.id)
        return web.json_response(await _detail(session, principal, alert))


async def resolve(request: web.Request) -> web.Response:
    principal = require(request, "alerts:write")
    now = request.app[keys.CLOCK]()
    public_url = request.app[keys.SETTINGS].server.public_url
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        alert = await _load(session, principal, request.match_info["id"])
        body = validate(AlertResolve, await read_json(request))
        if alert.resolved_at is not None:
            raise Problem(409, "alert-resolved", "The alert is already resolved.")
        reshipment_id: str | None = None
        details: dict[str, object] = {"action": body.action}
        if body.note:
            details["note"] = body.note
        try:
            if body.reshipment is not None:
                reshipment_id = await _reship(
                    session, principal, alert, body.reshipment, now=now, public_url=public_url
                )
                details["reshipment_id"] = reshipment_id
            resolved = await store.resolve(
                session,
                [alert.id],
                now=now,
                actor=principal.key_prefix,
                resolution=body.action,
                note=body.note,
                reshipment_id=reshipment_id,
            )
            if not resolved:
                raise ConflictError("alert-resolved", "The alert was resolved meanwhile.")
            shipments = await store.lock_shipments(session, [alert.shipment_id])
            await enqueue(
                session,
                seller_id=principal.seller_id,
                event_type="alert.resolved",
                now=now,
                shipment=shipments.get(alert.shipment_id),
                data=store.alert_view(resolved[0]),
            )
            await seller_store.audit(
                session,
                seller_id=principal.seller_id,
                actor=principal.key_prefix,
                action="alert.resolved",
                object_type="alert",
                object_id=alert.id,
                now=now,
                details=details,
            )
            await session.commit()
        except ConflictError as err:
            await session.rollback()
            raise Problem(409, err.slug, err.detail) from err
        except IntegrityError as err:
            await session.rollback()
            raise Problem(409, "conflict", "A concurrent request changed the same order; retry.") from err
        alert = await _load(session, principal, alert.id)
        return web.json_response(await _detail(session, principal, alert))


async def _reship(
    session: AsyncSession, principal: Principal, alert: Alert, body: Reshipment, *, now: datetime, public_url: str
) -> str:
    """Register the replacement parcel on the same order, linked to the one it replaces."""
    original = await shipment_store.get_shipment(session, principal.seller_id, alert.shipment_id)
    new = shipment_store.NewShipment(
        tracking_number=body.tracking_number,
        order_number=original.order_number,
        dest_country=original.dest_country,
        carrier=body.carrier or original.carrier,
        customer_name=original.customer_name,
        customer_email=original.customer_email,
        customer_phone=original.customer_phone,
        customer_locale=original.customer_locale,
        dest_postcode=original.dest_postcode,
        dest_city=original.dest_city,
        dest_address=original.dest_address,
        origin_country=original.origin_country,
        promised_delivery=None,
        replaces=original.id,
    )
    shipment = await shipment_store.create_shipment(session, principal.seller_id, new, now=now, public_url=public_url)
    await seller_store.audit(
        session,
        seller_id=principal.seller_id,
        actor=principal.key_prefix,
        action="shipment.created",
        object_type="shipment",
        object_id=shipment.id,
        now=now,
        details={"replaces": original.id, "alert_id": alert.id},
    )
    return shipment.id


_NULL_STR = {"type": ["string", "null"]}
_NULL_DT = {"type": ["string", "null"], "format": "date-time"}
_ALERT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "shipment_id", "kind", "state", "opened_at", "resolved_at", "resolution", "details"],
    "properties": {
        "id": {"type": "string"},
        "shipment_id": {"type": "string"},
        "kind": {"type": "string", "enum": list(KINDS)},
        "state": {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
        "opened_at": {"type": "string", "format": "date-time"},
        "acknowledged_at": _NULL_DT,
        "acknowledged_by": _NULL_STR,
        "resolved_at": _NULL_DT,
        "resolved_by": _NULL_STR,
        "resolution": {"type": ["string", "null"], "enum": ["auto", *ACTIONS, None]},
        "note": _NULL_STR,
        "reshipment_id": _NULL_STR,
        "details": {"type": "object"},
        "audit": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["at", "actor", "action"],
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "actor": {"type": "string"},
                    "action": {"type": "string"},
                    "details": {"type": "object"},
                },
            },
        },
    },
}


def _document() -> None:
    resolve_schema, resolve_defs = openapi.model_schema(AlertResolve)
    ack_schema, ack_defs = openapi.model_schema(AlertAcknowledge)
    schemas: dict[str, Any] = {
        "Alert": _ALERT,
        "AlertList": {
            "type": "object",
            "required": ["data", "next_cursor"],
            "properties": {
                "data": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
                "next_cursor": _NULL_STR,
            },
        },
        "AlertResolve": resolve_schema,
        "AlertAcknowledge": ack_schema,
        **resolve_defs,
        **ack_defs,
    }
    alert = openapi.ok("Alert")
    q = openapi.query_param
    openapi.document(
        "get",
        "/v1/alerts",
        openapi.operation(
            "List alerts, newest first",
            "alerts",
            {"200": openapi.ok("AlertList"), **openapi.problems(400)},
            scope="shipments:read",
            params=[
                q("state", {"type": "string", "enum": list(STATES)}),
                q("kind", {"type": "string", "enum": list(KINDS)}),
                q("shipment_id", {"type": "string"}),
                q("carrier", {"type": "string"}),
                q("opened_after", {"type": "string", "format": "date-time"}),
                q("opened_before", {"type": "string", "format": "date-time"}),
                q("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                q("cursor", {"type": "string"}),
            ],
        ),
        schemas,
    )
    openapi.document(
        "get",
        "/v1/alerts/{id}",
        openapi.operation(
            "One alert with its audit trail",
            "alerts",
            {"200": alert},
            scope="shipments:read",
            params=[openapi.path_param()],
        ),
    )
    openapi.document(
        "post",
        "/v1/alerts/{id}/acknowledge",
        openapi.operation(
            "Acknowledge an alert (someone is on it)",
            "alerts",
            {"200": alert, **openapi.problems(409)},
            scope="alerts:write",
            body=openapi.json_body("AlertAcknowledge", required=False),
            params=[openapi.path_param()],
        ),
    )
    openapi.document(
        "post",
        "/v1/alerts/{id}/resolve",
        openapi.operation(
            "Resolve an alert with an action; 'reshipped' registers the replacement parcel",
            "alerts",
            {"200": alert, **openapi.problems(409)},
            scope="alerts:write",
            body=openapi.json_body("AlertResolve"),
            params=[openapi.path_param()],
        ),
    )


_document()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/alerts", list_all)
    app.router.add_get("/v1/alerts/{id}", get_one)
    app.router.add_post("/v1/alerts/{id}/acknowledge", acknowledge)
    app.router.add_post("/v1/alerts/{id}/resolve", resolve)
