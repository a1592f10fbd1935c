"""Ops endpoints, the OpenAPI document, metrics and request logs."""

from __future__ import annotations

import io
import json
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from tests.conftest import Account, shipment_body
from tracker.logs import JsonFormatter, JsonLinesHandler


async def test_openapi_is_valid_and_documents_every_route(client: TestClient, app: web.Application) -> None:  # type: ignore[type-arg]
    resp = await client.get("/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    validate(spec)
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "OPTIONS"):
            continue
        template = resource.canonical
        if template.startswith(("/v1", "/api", "/healthz", "/readyz", "/metrics", "/openapi")):
            assert template in spec["paths"], template
            assert route.method.lower() in spec["paths"][template], (route.method, template)


async def test_conformance_checker_catches_wrong_responses(aiohttp_client, settings, clock) -> None:  # type: ignore[no-untyped-def]
    from tests.openapi_check import Conformance
    from tracker.app import create_app
    from tracker.web import openapi

    checker = Conformance()
    app = create_app(settings, clock=clock)
    app.middlewares.insert(0, checker.middleware())

    async def wrong_shape(request: web.Request) -> web.Response:
        return web.json_response({"data": "not a list", "next_cursor": 3})

    async def undocumented(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/api/shape-test", wrong_shape)
    app.router.add_get("/v1/undocumented", undocumented)
    openapi.document(
        "get", "/api/shape-test", openapi.operation("t", "t", {"200": openapi.ok("ShipmentList")})
    )
    try:
        client = await aiohttp_client(app)
        await client.get("/healthz")
        assert checker.failures == []
        await client.get("/v1/undocumented")
        await client.get("/api/shape-test")
    finally:
        openapi._EXTRA.pop()
        openapi.build_spec.cache_clear()
    joined = "\n".join(checker.failures)
    assert "GET /v1/undocumented: route not in the OpenAPI document" in joined
    assert "GET /api/shape-test 200: data: 'not a list' is not of type 'array'" in joined
    assert "next_cursor: 3 is not of type" in joined


async def test_health_and_ready(client: TestClient) -> None:  # type: ignore[type-arg]
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["database"] == "ok"


async def test_readyz_reports_a_dead_database(aiohttp_client, tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings
    from tracker.app import create_app
    from tracker.settings import DatabaseSettings

    bad = make_settings(DatabaseSettings(url=f"sqlite:///{tmp_path}/no/such/dir/x.db"))
    client = await aiohttp_client(create_app(bad, clock=clock))
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["status"] == "unavailable"


async def test_metrics_count_requests_by_route_and_status(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    await client.post("/v1/shipments", json=shipment_body(1), headers=seller.headers)
    await client.get("/v1/shipments/shp_nope", headers=seller.headers)
    text = await (await client.get("/metrics")).text()
    assert 'tracker_http_requests_total{method="POST",route="/v1/shipments",status="201"} 1.0' in text
    assert 'tracker_http_requests_total{method="GET",route="/v1/shipments/{id}",status="404"} 1.0' in text
    assert "tracker_http_request_duration_seconds_bucket" in text


async def test_request_log_has_id_and_no_secrets(
    client: TestClient, seller: Account, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[type-arg]
    caplog.set_level(logging.INFO)
    body = shipment_body(1)
    resp = await client.post(
        "/v1/shipments", json=body, headers={**seller.headers, "X-Request-Id": "req-12345678"}
    )
    assert resp.headers["X-Request-Id"] == "req-12345678"
    created = await resp.json()
    await client.get(f"/t/{created['public_url'].rsplit('/', 1)[1]}")
    lines = [JsonFormatter().format(r) for r in caplog.records]
    access = [json.loads(line) for line in lines if '"request"' in line and "tracker.access" in line]
    assert any(
        a["request_id"] == "req-12345678" and a["route"] == "/v1/shipments" and a["status"] == 201
        for a in access
    )
    everything = "\n".join(lines)
    for secret in (
        seller.api_key,
        "jane1@example.com",
        "Jane Customer",
        "+1 415 555 0100",
        "1 Market St",
        created["public_url"].rsplit("/", 1)[1],
    ):
        assert secret not in everything


def test_formatter_redacts_secrets_in_messages_and_fields() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "key trk_0123abcd_SECRETsecret and whsec_AAAAbbbb= for bob@example.com "
            "call +86 138 0013 8000",
            "customer_email": "x@y.example",
            "levelname": "INFO",
            "name": "t",
        }
    )
    out = JsonFormatter().format(record)
    for leaked in ("SECRETsecret", "whsec_AAAAbbbb", "bob@example.com", "138 0013 8000", "x@y.example"):
        assert leaked not in out


def test_request_ids_are_never_mistaken_for_phone_numbers() -> None:
    record = logging.makeLogRecord({"msg": "request", "request_id": "4151234567890abc", "levelname": "INFO",
                                    "name": "tracker.access"})
    assert json.loads(JsonFormatter().format(record))["request_id"] == "4151234567890abc"


async def test_request_log_written_directly_has_id_and_no_secrets(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    """With the service's handler the only listener, lines skip the record and are gathered
    per turn of the loop: still one per request, with its id, and nothing personal."""
    out = io.StringIO()
    handler = JsonLinesHandler(out)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tracker.access")
    saved = (list(log.handlers), log.propagate, log.level)
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        resp = await client.post(
            "/v1/shipments", json=shipment_body(1), headers={**seller.headers, "X-Request-Id": "req-12345678"}
        )
        created = await resp.json()
        token = created["public_url"].rsplit("/", 1)[1]
        page = await client.get(f"/t/{token}")
        handler.flush()
    finally:
        log.handlers[:], log.propagate, log.level = saved
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["route"], x["status"]) for x in lines] == [("/v1/shipments", 201), ("/t/{token}", 200)]
    assert lines[0]["request_id"] == "req-12345678"
    assert seller.api_key.startswith(lines[0]["key_prefix"] + "_")
    assert lines[1]["request_id"] == page.headers["X-Request-Id"]
    for secret in (seller.api_key, "jane1@example.com", "Jane Customer", "+1 415 555 0100", "1 Market St", token):
        assert secret not in out.getvalue()
