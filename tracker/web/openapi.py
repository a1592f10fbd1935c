"""The OpenAPI 3.1 document of the HTTP API, built from the request models and the
response schemas below. A test checks every route is documented and every response in the
test suite conforms."""

from __future__ import annotations

from copy import deepcopy
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from carriers import ADAPTERS
from carriers.status import Status, SubStatus
from tracker.web.api.schemas import ShipmentCreate, ShipmentUpdate

PROBLEM = {"$ref": "#/components/schemas/Problem"}
_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_DT = {"type": ["string", "null"], "format": "date-time"}

_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "message"],
                    "properties": {
                        "path": {"type": "string"},
                        "message": {"type": "string"},
                        "type": {"type": "string"},
                    },
                },
            },
        },
    },
    "Location": {
        "type": "object",
        "properties": {
            "city": _NULLABLE_STR,
            "region": _NULLABLE_STR,
            "country": _NULLABLE_STR,
            "postcode": _NULLABLE_STR,
        },
    },
    "Event": {
        "type": "object",
        "required": ["occurred_at", "status", "sub_status", "description", "location"],
        "properties": {
            "occurred_at": {"type": "string", "format": "date-time"},
            "local_time": {"type": "string"},
            "time_basis": {
                "type": "string",
                "enum": ["offset_given", "utc_given", "zone_from_location", "zone_assumed"],
            },
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "sub_status": {"type": "string", "enum": [s.value for s in SubStatus]},
            "description": {"type": "string"},
            "raw_code": {"type": "string"},
            "provider": {"type": "string"},
            "location": {"$ref": "#/components/schemas/Location"},
        },
    },
    "Shipment": {
        "type": "object",
        "required": ["id", "tracking_number", "carrier", "status", "sub_status", "public_url", "events"],
        "properties": {
            "id": {"type": "string"},
            "tracking_number": {"type": "string"},
            "carrier": {"type": ["string", "null"], "enum": [*sorted(ADAPTERS), None]},
            "carrier_candidates": {"type": "array", "items": {"type": "string"}},
            "status": {"type": "string", "enum": [s.value for s in Status]},
            "sub_status": {"type": "string", "enum": [s.value for s in SubStatus]},
            "order_number": {"type": "string"},
            "public_url": {"type": "string", "format": "uri"},
            "customer": {
                "type": "object",
                "properties": {
                    "name": _NULLABLE_STR,
                    "email": _NULLABLE_STR,
                    "phone": _NULLABLE_STR,
                    "locale": {"type": "string"},
                },
            },
            "destination": {
                "type": "object",
                "properties": {
                    "country": {"type": "string"},
                    "postcode": _NULLABLE_STR,
                    "city": _NULLABLE_STR,
                    "address": _NULLABLE_STR,
                },
            },
            "origin_country": _NULLABLE_STR,
            "promised_delivery": {"type": ["string", "null"], "format": "date"},
            "eta": {
                "type": "object",
                "properties": {
                    "first": _NULLABLE_DT,
                    "latest": _NULLABLE_DT,
                    "latest_end": _NULLABLE_DT,
                    "source": _NULLABLE_STR,
                },
            },
            "signed_by": _NULLABLE_STR,
            "tracking_active": {"type": "boolean"},
            "stop_reason": _NULLABLE_STR,
            "replaces": _NULLABLE_STR,
            "received_confirmed_at": _NULLABLE_DT,
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "last_event_at": _NULLABLE_DT,
            "open_alerts": {"type": "array", "items": {"type": "string"}},
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
        },
    },
    "ShipmentList": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Shipment"}},
            "next_cursor": _NULLABLE_STR,
        },
    },
    "ShipmentBatchResult": {
        "type": "object",
        "required": ["shipments"],
        "properties": {"shipments": {"type": "array", "items": {"$ref": "#/components/schemas/Shipment"}}},
    },
    "ShipmentBatch": {
        "type": "object",
        "required": ["shipments"],
        "additionalProperties": False,
        "properties": {
            "shipments": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {"$ref": "#/components/schemas/ShipmentCreate"},
            }
        },
    },
    "RefreshAccepted": {
        "type": "object",
        "required": ["id", "next_poll_at"],
        "properties": {"id": {"type": "string"}, "next_poll_at": {"type": "string", "format": "date-time"}},
    },
}

#: operations added by other modules through `document()`
_EXTRA: list[tuple[str, str, dict[str, Any]]] = []
_EXTRA_SCHEMAS: dict[str, Any] = {}


def document(method: str, path: str, operation: dict[str, Any], schemas: dict[str, Any] | None = None) -> None:
    """Register an operation (used by route modules that live outside this file)."""
    _EXTRA.append((method.lower(), path, operation))
    if schemas:
        _EXTRA_SCHEMAS.update(schemas)
    build_spec.cache_clear()


def model_schema(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A pydantic model's JSON schema with its $defs lifted into components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return schema, defs


def json_body(ref: str, required: bool = True) -> dict[str, Any]:
    return {
        "required": required,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def ok(ref: str | None, description: str = "OK", *, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if ref is None and schema is None:
        return {"description": description}
    body_schema = schema if schema is not None else {"$ref": f"#/components/schemas/{ref}"}
    return {"description": description, "content": {"application/json": {"schema": body_schema}}}


def problems(*codes: int) -> dict[str, Any]:
    desc = {
        400: "Malformed request",
        401: "Missing, unknown or revoked API key",
        403: "Missing scope",
        404: "Not found (also another seller's object)",
        409: "Conflict",
        413: "Body too large",
        415: "Not JSON",
        422: "Validation error",
        429: "Rate limited",
        503: "Unavailable",
    }
    return {
        str(c): {
            "description": desc.get(c, "Error"),
            "content": {"application/problem+json": {"schema": PROBLEM}},
        }
        for c in codes
    }


AUTHED = (401, 403)
WRITE = (400, 401, 403, 413, 415, 422)


def _op(
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    scope: str | None = None,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    params = list(params or [])
    if scope:
        op["security"] = [{"apiKey": []}]
        op["description"] = f"Requires scope `{scope}`."
        # any authenticated call can fail authentication, lack the scope, or name a
        # merchant (Tracker-Seller) the key may not act for
        for code, resp in problems(401, 403, 404).items():
            op["responses"].setdefault(code, resp)
        params.append(ACT_AS)
    if body:
        op["requestBody"] = body
        for code, resp in problems(400, 413, 415, 422).items():
            op["responses"].setdefault(code, resp)
    if params:
        op["parameters"] = params
    return op


operation = _op


def path_param(name: str = "id") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def query_param(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


ACT_AS = {
    "name": "Tracker-Seller",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "A platform's key acts for one of its merchants by naming the merchant's seller id.",
}
IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


@lru_cache(maxsize=4)
def build_spec(server_url: str) -> dict[str, Any]:
    schemas = deepcopy(_SCHEMAS)
    for model, name in ((ShipmentCreate, "ShipmentCreate"), (ShipmentUpdate, "ShipmentUpdate")):
        schema, defs = model_schema(model)
        schemas[name] = schema
        schemas.update(defs)
    schemas.update(deepcopy(_EXTRA_SCHEMAS))
    shipment = ok("Shipment")
    paths: dict[str, dict[str, Any]] = {
        "/healthz": {"get": _op("Liveness", "ops", {"200": ok(None, schema={"type": "object"})})},
        "/readyz": {
            "get": _op(
                "Readiness (database reachable)",
                "ops",
                {
                    "200": ok(None, schema={"type": "object"}),
                    "503": ok(None, "Not ready", schema={"type": "object"}),
                },
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics",
                "ops",
                {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/openapi.json": {"get": _op("This document", "ops", {"200": ok(None, schema={"type": "object"})})},
        "/v1/shipments": {
            "post": _op(
                "Register a shipment",
                "shipments",
                {"201": ok("Shipment", "Created"), **problems(*WRITE, 409)},
                scope="shipments:write",
                body=json_body("ShipmentCreate"),
                params=[IDEMPOTENCY],
            ),
            "get": _op(
                "List shipments",
                "shipments",
                {"200": ok("ShipmentList"), **problems(400, *AUTHED)},
                scope="shipments:read",
                params=[
                    query_param("status", {"type": "string"}),
                    query_param("carrier", {"type": "string"}),
                    query_param("has_open_alert", {"type": "boolean"}),
                    query_param("created_after", {"type": "string", "format": "date-time"}),
                    query_param("created_before", {"type": "string", "format": "date-time"}),
                    query_param("order_number", {"type": "string"}),
                    query_param("tracking_number", {"type": "string"}),
                    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
                    query_param("cursor", {"type": "string"}),
                ],
            ),
        },
        "/v1/shipments/batch": {
            "post": _op(
                "Register up to 100 shipments, all or nothing",
                "shipments",
                {"201": ok("ShipmentBatchResult", "Created"), **problems(*WRITE, 409)},
                scope="shipments:write",
                body=json_body("ShipmentBatch"),
                params=[IDEMPOTENCY],
            ),
        },
        "/v1/shipments/{id}": {
            "get": _op(
                "One shipment with its timeline",
                "shipments",
                {"200": shipment, **problems(*AUTHED, 404)},
                scope="shipments:read",
                params=[path_param()],
            ),
            "patch": _op(
                "Correct the carrier or the promised delivery date",
                "shipments",
                {"200": shipment, **problems(*WRITE, 404)},
                scope="shipments:write",
                body=json_body("ShipmentUpdate"),
                params=[path_param()],
            ),
        },
        "/v1/shipments/{id}/stop": {
            "post": _op(
                "Stop tracking",
                "shipments",
                {"200": shipment, **problems(*AUTHED, 404)},
                scope="shipments:write",
                params=[path_param()],
            ),
        },
        "/v1/shipments/{id}/refresh": {
            "post": _op(
                "Poll the carrier as soon as possible",
                "shipments",
                {"202": ok("RefreshAccepted", "Accepted"), **problems(*AUTHED, 404, 409)},
                scope="shipments:write",
                params=[path_param()],
            ),
        },
    }
    for method, path, operation in _EXTRA:
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cbec-tracker API",
            "version": "1.0.0",
            "description": "Tracking and customs documents for cross-border e-commerce sellers.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key created with `tracker key create`.",
                }
            },
        },
    }
