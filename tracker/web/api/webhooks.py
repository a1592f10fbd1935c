"""/v1/webhook-endpoints and /v1/webhook-messages: endpoints, the delivery log and recovery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from aiohttp import web
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker import keys
from tracker.db import writing
from tracker.models import WebhookEndpoint
from tracker.store import NotFoundError
from tracker.store import sellers as seller_store
from tracker.store import webhooks as store
from tracker.store.outbox import EVENT_TYPES, enqueue
from tracker.store.sellers import Principal
from tracker.web.auth import require
from tracker.web.openapi import document, json_body, ok, operation, path_param, problems, query_param
from tracker.web.problems import Problem
from tracker.web.validation import fetch_page, parse_query, read_json, validate
from tracker.webhooks.ssrf import Lookup, ResolutionFailed, UnsafeUrl, resolve_and_check

SCOPE = "webhooks:manage"


def _event_type(value: str) -> str:
    if value not in EVENT_TYPES:
        raise ValueError(f"unknown event type; known: {', '.join(EVENT_TYPES)}")
    return value


EventType = Annotated[str, AfterValidator(_event_type), WithJsonSchema({"type": "string", "enum": list(EVENT_TYPES)})]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
Description = Annotated[str, StringConstraints(max_length=500, strip_whitespace=True)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointCreate(_Strict):
    url: Url
    event_types: list[EventType] = Field(default_factory=list, max_length=len(EVENT_TYPES))
    description: Description = ""


class EndpointUpdate(_Strict):
    url: Url | None = None
    event_types: list[EventType] | None = Field(default=None, max_length=len(EVENT_TYPES))
    description: Description | None = None


class Replay(_Strict):
    since: AwareDatetime


class MessageFilters(_Strict):
    event_type: str | None = None
    since: AwareDatetime | None = None
    shipment_id: str | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = None


class RedeliverQuery(_Strict):
    endpoint_id: str | None = None


async def _check_url(request: web.Request, url: str) -> str:
    """Refuse a URL the delivery guard would refuse, naming the reason, before storing it."""
    settings = request.app[keys.SETTINGS].webhooks
    lookup: Lookup | None = request.app[keys.SERVICES].get("webhook_lookup")
    try:
        target = await resolve_and_check(url, allow_loopback=settings.allow_loopback, resolver=lookup)
    except UnsafeUrl as err:
        reason, detail = (
            err.reason,
            f"The webhook URL is refused ({err.reason}{': ' + err.detail if err.detail else ''}).",
        )
    except ResolutionFailed as err:
        reason, detail = "dns_error", f"The webhook URL's host does not resolve ({err})."
    else:
        return target.url
    raise Problem(
        422,
        "unsafe-webhook-url",
        detail,
        reason=reason,
        errors=[{"path": "url", "message": detail, "type": f"unsafe_url.{reason}"}],
    )


def _not_found(kind: str) -> Problem:
    return Problem(404, "not-found", f"No such {kind}.")


async def _endpoint(session: AsyncSession, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
    try:
        return await store.get_endpoint(session, principal.seller_id, endpoint_id)
    except NotFoundError as err:
        raise _not_found("webhook endpoint") from err


def _require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise Problem(409, "endpoint-disabled", "The webhook endpoint is disabled; enable it first.")


async def _audit(session: AsyncSession, principal: Principal, action: str, object_id: str, now: datetime) -> None:
    await seller_store.audit(
        session,
        seller_id=principal.seller_id,
        actor=principal.key_prefix,
        action=action,
        object_type="webhook_endpoint",
        object_id=object_id,
        now=now,
    )


async def create(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    body = validate(EndpointCreate, await read_json(request))
    url = await _check_url(request, body.url)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        endpoint = await store.create_endpoint(
            session,
            principal.seller_id,
            url=url,
            event_types=body.event_types,
            description=body.description,
            now=now,
        )
        await _audit(session, principal, "webhook_endpoint.created", endpoint.id, now)
        await session.commit()
    return web.json_response(store.endpoint_view(endpoint, secret=True), status=201)


async def list_all(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    async with request.app[keys.SESSIONMAKER]() as session:
        endpoints = await store.list_endpoints(session, principal.seller_id)
    return web.json_response({"data": [store.endpoint_view(e) for e in endpoints]})


async def get_one(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    async with request.app[keys.SESSIONMAKER]() as session:
        endpoint = await _endpoint(session, principal, request.match_info["id"])
    return web.json_response(store.endpoint_view(endpoint))


async def update(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    body = validate(EndpointUpdate, await read_json(request))
    url = await _check_url(request, body.url) if body.url is not None else None
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        endpoint = await _endpoint(session, principal, request.match_info["id"])
        if url is not None:
            endpoint.url = url
        if body.event_types is not None:
            endpoint.event_types = list(dict.fromkeys(body.event_types))
        if body.description is not None:
            endpoint.description = body.description
        endpoint.updated_at = now
        session.add(endpoint)
        await _audit(session, principal, "webhook_endpoint.updated", endpoint.id, now)
        await session.commit()
    return web.json_response(store.endpoint_view(endpoint))


def _change(
    action: str, apply: Callable[[WebhookEndpoint, datetime, web.Request], None], *, secret: bool = False
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        principal = require(request, SCOPE)
        now = request.app[keys.CLOCK]()
        async with writing(request.app[keys.SESSIONMAKER]) as session:
            endpoint = await _endpoint(session, principal, request.match_info["id"])
            apply(endpoint, now, request)
            session.add(endpoint)
            await _audit(session, principal, action, endpoint.id, now)
            await session.commit()
        return web.json_response(store.endpoint_view(endpoint, secret=secret))

    return handler


def _rotate(endpoint: WebhookEndpoint, now: datetime, request: web.Request) -> None:
    hours = request.app[keys.SETTINGS].webhooks.rotation_overlap_hours
    store.rotate_secret(endpoint, now=now, overlap=timedelta(hours=hours))


disable = _change(
    "webhook_endpoint.disabled",
    lambda e, now, _r: store.set_enabled(e, False, now=now, reason="disabled_by_seller"),
)
enable = _change("webhook_endpoint.enabled", lambda e, now, _r: store.set_enabled(e, True, now=now))
rotate = _change("webhook_endpoint.secret_rotated", _rotate, secret=True)


async def remove(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        endpoint = await _endpoint(session, principal, request.match_info["id"])
        await store.delete_endpoint(session, endpoint)
        await _audit(session, principal, "webhook_endpoint.deleted", endpoint.id, now)
        await session.commit()
    return web.Response(status=204)


async def send_test(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        endpoint = await _endpoint(session, principal, request.match_info["id"])
        _require_enabled(endpoint)
        message = await enqueue(
            session,
            seller_id=principal.seller_id,
            event_type="endpoint.test",
            now=now,
            data={"endpoint_id": endpoint.id, "note": "A test message sent on request."},
            only_endpoint_id=endpoint.id,
        )
        await session.commit()
    return web.json_response(store.message_view(message), status=202)


async def replay(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        # another seller's endpoint answers 404 whatever the body says
        endpoint = await _endpoint(session, principal, request.match_info["id"])
        body = validate(Replay, await read_json(request))
        _require_enabled(endpoint)
        queued = await store.replay_since(session, endpoint, body.since, now=now)
        await _audit(session, principal, "webhook_endpoint.replayed", endpoint.id, now)
        await session.commit()
    return web.json_response(
        {"endpoint_id": endpoint.id, "since": body.since.isoformat(), "queued": queued}, status=202
    )


async def list_messages(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    filters: MessageFilters = parse_query(request, MessageFilters)
    async with request.app[keys.SESSIONMAKER]() as session:
        page = await fetch_page(store.list_messages, session, principal.seller_id, filters)
    return web.json_response({"data": [store.message_view(m) for m in page.items], "next_cursor": page.next_cursor})


async def get_message(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    async with request.app[keys.SESSIONMAKER]() as session:
        try:
            message = await store.get_message(session, principal.seller_id, request.match_info["id"])
        except NotFoundError as err:
            raise _not_found("webhook message") from err
        deliveries = await store.deliveries_view(session, message.id)
    return web.json_response({**store.message_view(message), "deliveries": deliveries})


async def redeliver(request: web.Request) -> web.Response:
    principal = require(request, SCOPE)
    query: RedeliverQuery = parse_query(request, RedeliverQuery)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        try:
            message = await store.get_message(session, principal.seller_id, request.match_info["id"])
        except NotFoundError as err:
            raise _not_found("webhook message") from err
        endpoint = None
        if query.endpoint_id is not None:
            endpoint = await _endpoint(session, principal, query.endpoint_id)
            _require_enabled(endpoint)
        queued = await store.redeliver(session, message, now=now, endpoint=endpoint)
        await session.commit()
    return web.json_response({"message_id": message.id, "delivery_ids": queued}, status=202)


def add_routes(app: web.Application) -> None:
    base = "/v1/webhook-endpoints"
    app.router.add_post(base, create)
    app.router.add_get(base, list_all)
    app.router.add_get(base + "/{id}", get_one)
    app.router.add_patch(base + "/{id}", update)
    app.router.add_delete(base + "/{id}", remove)
    app.router.add_post(base + "/{id}/disable", disable)
    app.router.add_post(base + "/{id}/enable", enable)
    app.router.add_post(base + "/{id}/rotate", rotate)
    app.router.add_post(base + "/{id}/test", send_test)
    app.router.add_post(base + "/{id}/replay", replay)
    app.router.add_get("/v1/webhook-messages", list_messages)
    app.router.add_get("/v1/webhook-messages/{id}", get_message)
    app.router.add_post("/v1/webhook-messages/{id}/redeliver", redeliver)


# --- OpenAPI ----------------------------------------------------------------------------

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_NDT = {"type": ["string", "null"], "format": "date-time"}
_DT = {"type": "string", "format": "date-time"}
_ENDPOINT_PROPS: dict[str, Any] = {
    "id": _STR,
    "url": {"type": "string", "format": "uri"},
    "description": _STR,
    "event_types": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
    "enabled": {"type": "boolean"},
    "disabled_reason": _NSTR,
    "failing_since": _NDT,
    "last_success_at": _NDT,
    "previous_secret_expires_at": _NDT,
    "created_at": _DT,
    "updated_at": _DT,
}
_ENDPOINT_REQUIRED = ["id", "url", "description", "event_types", "enabled", "created_at", "updated_at"]
_MESSAGE_PROPS: dict[str, Any] = {
    "id": _STR,
    "event_type": {"type": "string", "enum": list(EVENT_TYPES)},
    "shipment_id": _NSTR,
    "sequence": {"type": ["integer", "null"]},
    "created_at": _DT,
    "payload": {"type": "object", "required": ["type", "timestamp", "data"]},
}
_SCHEMAS: dict[str, Any] = {
    "WebhookEndpoint": {"type": "object", "required": _ENDPOINT_REQUIRED, "properties": _ENDPOINT_PROPS},
    "WebhookEndpointWithSecret": {
        "type": "object",
        "required": [*_ENDPOINT_REQUIRED, "secret"],
        "properties": {**_ENDPOINT_PROPS, "secret": {"type": "string", "pattern": "^whsec_"}},
    },
    "WebhookEndpointList": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookEndpoint"}}},
    },
    "WebhookEndpointCreate": EndpointCreate.model_json_schema(),
    "WebhookEndpointUpdate": EndpointUpdate.model_json_schema(),
    "WebhookReplay": Replay.model_json_schema(),
    "WebhookReplayQueued": {
        "type": "object",
        "required": ["endpoint_id", "since", "queued"],
        "properties": {"endpoint_id": _STR, "since": _DT, "queued": {"type": "integer", "minimum": 0}},
    },
    "WebhookMessage": {"type": "object", "required": list(_MESSAGE_PROPS), "properties": _MESSAGE_PROPS},
    "WebhookMessageList": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookMessage"}},
            "next_cursor": _NSTR,
        },
    },
    "WebhookAttempt": {
        "type": "object",
        "required": ["attempted_at", "status_code", "latency_ms", "error"],
        "properties": {
            "attempted_at": _DT,
            "status_code": {"type": ["integer", "null"]},
            "latency_ms": {"type": ["number", "null"]},
            "error": _NSTR,
            "response_excerpt": _NSTR,
        },
    },
    "WebhookDelivery": {
        "type": "object",
        "required": ["id", "endpoint_id", "state", "attempt_count", "attempts"],
        "properties": {
            "id": _STR,
            "endpoint_id": _STR,
            "state": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
            "attempt_count": {"type": "integer"},
            "next_attempt_at": _NDT,
            "last_status": {"type": ["integer", "null"]},
            "created_at": _DT,
            "completed_at": _NDT,
            "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookAttempt"}},
        },
    },
    "WebhookMessageDetail": {
        "type": "object",
        "required": [*_MESSAGE_PROPS, "deliveries"],
        "properties": {
            **_MESSAGE_PROPS,
            "deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/WebhookDelivery"}},
        },
    },
    "WebhookRedelivery": {
        "type": "object",
        "required": ["message_id", "delivery_ids"],
        "properties": {"message_id": _STR, "delivery_ids": {"type": "array", "items": _STR}},
    },
}


def _document() -> None:
    tag, one = "webhooks", [path_param()]
    endpoint, authed = ok("WebhookEndpoint"), problems(401, 403, 404)
    conflict = problems(409)
    ops: list[tuple[str, str, dict[str, Any]]] = [
        (
            "post",
            "/v1/webhook-endpoints",
            operation(
                "Register a webhook endpoint (the secret is shown only here and on rotate)",
                tag,
                {"201": ok("WebhookEndpointWithSecret", "Created")},
                scope=SCOPE,
                body=json_body("WebhookEndpointCreate"),
            ),
        ),
        (
            "get",
            "/v1/webhook-endpoints",
            operation("List webhook endpoints", tag, {"200": ok("WebhookEndpointList")}, scope=SCOPE),
        ),
        (
            "get",
            "/v1/webhook-endpoints/{id}",
            operation("One webhook endpoint", tag, {"200": endpoint, **authed}, scope=SCOPE, params=one),
        ),
        (
            "patch",
            "/v1/webhook-endpoints/{id}",
            operation(
                "Change the URL, event types or description",
                tag,
                {"200": endpoint},
                scope=SCOPE,
                body=json_body("WebhookEndpointUpdate"),
                params=one,
            ),
        ),
        (
            "delete",
            "/v1/webhook-endpoints/{id}",
            operation(
                "Delete an endpoint and its delivery history",
                tag,
                {"204": ok(None, "Deleted")},
                scope=SCOPE,
                params=one,
            ),
        ),
        (
            "post",
            "/v1/webhook-endpoints/{id}/disable",
            operation("Stop deliveries to an endpoint", tag, {"200": endpoint}, scope=SCOPE, params=one),
        ),
        (
            "post",
            "/v1/webhook-endpoints/{id}/enable",
            operation("Resume deliveries (pending ones continue)", tag, {"200": endpoint}, scope=SCOPE, params=one),
        ),
        (
            "post",
            "/v1/webhook-endpoints/{id}/rotate",
            operation(
                "Rotate the secret; the old one keeps signing during the overlap",
                tag,
                {"200": ok("WebhookEndpointWithSecret")},
                scope=SCOPE,
                params=one,
            ),
        ),
        (
            "post",
            "/v1/webhook-endpoints/{id}/test",
            operation(
                "Send an endpoint.test message to this endpoint",
                tag,
                {"202": ok("WebhookMessage", "Queued"), **conflict},
                scope=SCOPE,
                params=one,
            ),
        ),
        (
            "post",
            "/v1/webhook-endpoints/{id}/replay",
            operation(
                "Queue again every message since a time for this endpoint",
                tag,
                {"202": ok("WebhookReplayQueued", "Queued"), **conflict},
                scope=SCOPE,
                body=json_body("WebhookReplay"),
                params=one,
            ),
        ),
        (
            "get",
            "/v1/webhook-messages",
            operation(
                "The delivery log: messages, newest first",
                tag,
                {"200": ok("WebhookMessageList"), **problems(400)},
                scope=SCOPE,
                params=[
                    query_param("event_type", {"type": "string"}),
                    query_param("since", {"type": "string", "format": "date-time"}),
                    query_param("shipment_id", {"type": "string"}),
                    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                    query_param("cursor", {"type": "string"}),
                ],
            ),
        ),
        (
            "get",
            "/v1/webhook-messages/{id}",
            operation(
                "One message with its deliveries and attempts",
                tag,
                {"200": ok("WebhookMessageDetail")},
                scope=SCOPE,
                params=one,
            ),
        ),
        (
            "post",
            "/v1/webhook-messages/{id}/redeliver",
            operation(
                "Queue a message again to every matching endpoint, or to one",
                tag,
                {"202": ok("WebhookRedelivery", "Queued"), **problems(400), **conflict},
                scope=SCOPE,
                params=[*one, query_param("endpoint_id", {"type": "string"})],
            ),
        ),
    ]
    for index, (method, path, op) in enumerate(ops):
        document(method, path, op, _SCHEMAS if index == 0 else None)


_document()
