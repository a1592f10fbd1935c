"""/v1/webhook-endpoints and /v1/webhook-messages through HTTP."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import Account, FakeClock, make_account, make_settings, shipment_body
from tests.openapi_check import Conformance
from tracker.app import create_app
from tracker.settings import DatabaseSettings

HOOK = "http://127.0.0.1:8000/hooks"
EP = "/v1/webhook-endpoints"

Client = TestClient[web.Request, web.Application]


async def _create(client: Client, who: Account, **body: Any) -> dict[str, Any]:
    resp = await client.post(EP, json={"url": HOOK, **body}, headers=who.headers)
    assert resp.status == 201, await resp.text()
    created: dict[str, Any] = await resp.json()
    return created


async def _message(client: Client, who: Account, message_id: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/webhook-messages/{message_id}", headers=who.headers)
    assert resp.status == 200
    detail: dict[str, Any] = await resp.json()
    return detail


async def test_endpoint_lifecycle(client: Client, seller: Account, clock: FakeClock) -> None:
    created = await _create(client, seller, event_types=["shipment.delivered"], description="orders")
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["shipment.delivered"]
    assert created["enabled"] is True
    eid = created["id"]

    listed = await (await client.get(EP, headers=seller.headers)).json()
    assert [e["id"] for e in listed["data"]] == [eid]
    assert "secret" not in listed["data"][0]
    one = await (await client.get(f"{EP}/{eid}", headers=seller.headers)).json()
    assert "secret" not in one
    assert one["description"] == "orders"

    clock.advance(minutes=1)
    patched = await client.patch(
        f"{EP}/{eid}",
        headers=seller.headers,
        json={"url": "http://127.0.0.1:8001/v2", "event_types": [], "description": "all"},
    )
    assert patched.status == 200
    body = await patched.json()
    assert (body["url"], body["event_types"], body["description"]) == ("http://127.0.0.1:8001/v2", [], "all")
    assert body["updated_at"] != created["updated_at"]

    disabled = await (await client.post(f"{EP}/{eid}/disable", headers=seller.headers)).json()
    assert (disabled["enabled"], disabled["disabled_reason"]) == (False, "disabled_by_seller")
    enabled = await (await client.post(f"{EP}/{eid}/enable", headers=seller.headers)).json()
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)

    assert (await client.delete(f"{EP}/{eid}", headers=seller.headers)).status == 204
    assert (await client.get(f"{EP}/{eid}", headers=seller.headers)).status == 404
    assert (await (await client.get(EP, headers=seller.headers)).json())["data"] == []


async def test_rotate_shows_the_new_secret_once_and_keeps_the_old_for_the_overlap(
    client: Client,
    seller: Account,
    clock: FakeClock,
) -> None:
    created = await _create(client, seller)
    resp = await client.post(f"{EP}/{created['id']}/rotate", headers=seller.headers)
    assert resp.status == 200
    rotated = await resp.json()
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] == (clock() + timedelta(hours=24)).isoformat()
    assert "secret" not in await (await client.get(f"{EP}/{created['id']}", headers=seller.headers)).json()


@pytest.mark.parametrize(
    ("body", "path", "kind"),
    [
        ({}, "url", "missing"),
        ({"url": HOOK, "event_types": ["shipment.exploded"]}, "event_types[0]", "value_error"),
        ({"url": HOOK, "event_types": "shipment.created"}, "event_types", "list_type"),
        ({"url": HOOK, "secret": "whsec_mine"}, "secret", "extra_forbidden"),
        ({"url": "ftp://127.0.0.1/hooks"}, "url", "unsafe_url.scheme"),
        ({"url": "http://user:pw@127.0.0.1:8000/"}, "url", "unsafe_url.credentials"),
        ({"url": "http://127.0.0.1:25/"}, "url", "unsafe_url.blocked_port"),
    ],
)
async def test_create_validation_names_the_field(
    client: Client,
    seller: Account,
    body: dict[str, Any],
    path: str,
    kind: str,
) -> None:
    resp = await client.post(EP, json=body, headers=seller.headers)
    assert resp.status == 422
    problem = await resp.json()
    assert problem["errors"][0]["path"] == path
    assert problem["errors"][0]["type"] == kind
    assert (await (await client.get(EP, headers=seller.headers)).json())["data"] == []


async def test_malformed_and_non_json_bodies(client: Client, seller: Account) -> None:
    bad = await client.post(EP, data=b"{nope", headers={**seller.headers, "Content-Type": "application/json"})
    assert bad.status == 400
    text = await client.post(EP, data=b"url=x", headers={**seller.headers, "Content-Type": "text/plain"})
    assert text.status == 415


@pytest.fixture
async def strict_client(
    aiohttp_client: Any, database: DatabaseSettings, clock: FakeClock, conformance: Conformance
) -> Client:
    """An app with the production SSRF setting (loopback refused) and a fake DNS."""
    zone = {"hooks.seller.test": ["93.184.216.34"], "internal.seller.test": ["93.184.216.34", "10.1.2.3"]}

    async def lookup(host: str) -> Sequence[str]:
        if host not in zone:
            raise OSError(f"{host} not found")
        return zone[host]

    app = create_app(
        make_settings(database, webhooks={"allow_loopback": False}), clock=clock, services={"webhook_lookup": lookup}
    )
    app.middlewares.insert(0, conformance.middleware())
    client: Client = await aiohttp_client(app)
    return client


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8000/hooks", "loopback"),
        ("http://localhost:8000/hooks", "loopback"),
        ("http://[::1]:8000/hooks", "loopback"),
        ("http://10.0.0.5/hooks", "private"),
        ("http://192.168.1.10/hooks", "private"),
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://2130706433/", "loopback"),
        ("https://internal.seller.test/hooks", "private"),
        ("https://nowhere.seller.test/hooks", "dns_error"),
    ],
)
async def test_ssrf_guard_refuses_at_registration(strict_client: Client, url: str, reason: str) -> None:
    who = await make_account(strict_client.app, "Strict Seller", FakeClock())
    resp = await strict_client.post(EP, json={"url": url}, headers=who.headers)
    assert resp.status == 422
    problem = await resp.json()
    assert problem["reason"] == reason
    assert problem["errors"][0]["path"] == "url"
    assert reason in problem["detail"] or reason == "dns_error"
    assert (await (await strict_client.get(EP, headers=who.headers)).json())["data"] == []


async def test_ssrf_guard_applies_to_updates(strict_client: Client) -> None:
    who = await make_account(strict_client.app, "Strict Seller", FakeClock())
    created = await strict_client.post(EP, json={"url": "https://hooks.seller.test/in"}, headers=who.headers)
    assert created.status == 201
    eid = (await created.json())["id"]
    refused = await strict_client.patch(f"{EP}/{eid}", json={"url": "http://10.9.8.7/in"}, headers=who.headers)
    assert refused.status == 422
    assert (await refused.json())["reason"] == "private"
    still = await (await strict_client.get(f"{EP}/{eid}", headers=who.headers)).json()
    assert still["url"] == "https://hooks.seller.test/in"


async def test_test_message_goes_to_that_endpoint_only(client: Client, seller: Account) -> None:
    first = await _create(client, seller)
    await _create(client, seller)
    resp = await client.post(f"{EP}/{first['id']}/test", headers=seller.headers)
    assert resp.status == 202
    message = await resp.json()
    assert message["event_type"] == "endpoint.test"
    assert message["payload"]["type"] == "endpoint.test"
    detail = await _message(client, seller, message["id"])
    assert [(d["endpoint_id"], d["state"], d["attempts"]) for d in detail["deliveries"]] == [
        (first["id"], "pending", [])
    ]
    await client.post(f"{EP}/{first['id']}/disable", headers=seller.headers)
    refused = await client.post(f"{EP}/{first['id']}/test", headers=seller.headers)
    assert refused.status == 409


async def test_message_log_filters_and_pages(client: Client, seller: Account, clock: FakeClock) -> None:
    await _create(client, seller)
    shipments = []
    for n in range(3):
        created = await client.post("/v1/shipments", json=shipment_body(n + 1), headers=seller.headers)
        shipments.append((await created.json())["id"])
        clock.advance(hours=1)
    updated = await client.patch(
        f"/v1/shipments/{shipments[0]}", json={"promised_delivery": "2026-04-01"}, headers=seller.headers
    )
    assert updated.status == 200

    everything = await (await client.get("/v1/webhook-messages", headers=seller.headers)).json()
    assert [m["event_type"] for m in everything["data"]] == ["shipment.updated"] + ["shipment.created"] * 3
    only_created = await (
        await client.get("/v1/webhook-messages?event_type=shipment.created", headers=seller.headers)
    ).json()
    assert [m["shipment_id"] for m in only_created["data"]] == shipments[::-1]
    of_first = await (
        await client.get(f"/v1/webhook-messages?shipment_id={shipments[0]}", headers=seller.headers)
    ).json()
    assert [(m["event_type"], m["sequence"]) for m in of_first["data"]] == [
        ("shipment.updated", of_first["data"][1]["sequence"] + 1),
        ("shipment.created", of_first["data"][1]["sequence"]),
    ]
    since = (clock() - timedelta(hours=1, minutes=30)).isoformat()
    recent = await (await client.get("/v1/webhook-messages", params={"since": since}, headers=seller.headers)).json()
    assert [m["shipment_id"] for m in recent["data"]] == [shipments[0], shipments[2]]

    page1 = await (await client.get("/v1/webhook-messages?limit=3", headers=seller.headers)).json()
    page2 = await (
        await client.get(
            "/v1/webhook-messages", params={"limit": 3, "cursor": page1["next_cursor"]}, headers=seller.headers
        )
    ).json()
    assert [m["id"] for m in page1["data"] + page2["data"]] == [m["id"] for m in everything["data"]]
    assert page2["next_cursor"] is None

    for query in ("since=yesterday", "since=2026-03-01T00:00:00", "limit=0", "cursor=%%%", "colour=red"):
        assert (await client.get(f"/v1/webhook-messages?{query}", headers=seller.headers)).status == 400, query


async def test_redeliver_to_every_matching_endpoint_or_one(
    client: Client,
    seller: Account,
    clock: FakeClock,
) -> None:
    everything = await _create(client, seller)
    created_only = await _create(client, seller, event_types=["shipment.created"])
    alerts_only = await _create(client, seller, event_types=["alert.opened"])
    shipment = await client.post("/v1/shipments", json=shipment_body(1), headers=seller.headers)
    msg_id = (await (await client.get("/v1/webhook-messages", headers=seller.headers)).json())["data"][0]["id"]
    assert (await shipment.json())["id"]
    first = await _message(client, seller, msg_id)
    assert sorted(d["endpoint_id"] for d in first["deliveries"]) == sorted([everything["id"], created_only["id"]])

    # an endpoint added later gets the message on redelivery; the filtered-out one does not
    late = await _create(client, seller)
    clock.advance(minutes=5)
    resp = await client.post(f"/v1/webhook-messages/{msg_id}/redeliver", headers=seller.headers)
    assert resp.status == 202
    assert len((await resp.json())["delivery_ids"]) == 3
    after = await _message(client, seller, msg_id)
    assert sorted(d["endpoint_id"] for d in after["deliveries"]) == sorted(
        [everything["id"], created_only["id"], late["id"]]
    )
    assert all(d["next_attempt_at"] == clock().isoformat() for d in after["deliveries"])

    one = await client.post(
        f"/v1/webhook-messages/{msg_id}/redeliver", params={"endpoint_id": alerts_only["id"]}, headers=seller.headers
    )
    assert one.status == 202
    assert len((await one.json())["delivery_ids"]) == 1
    unknown = await client.post(
        f"/v1/webhook-messages/{msg_id}/redeliver", params={"endpoint_id": "whe_nope"}, headers=seller.headers
    )
    assert unknown.status == 404


async def test_replay_since_requeues_that_endpoints_messages(
    client: Client,
    seller: Account,
    clock: FakeClock,
) -> None:
    await client.post("/v1/shipments", json=shipment_body(1), headers=seller.headers)
    clock.advance(hours=2)
    cutoff = clock()
    for n in (2, 3):
        await client.post("/v1/shipments", json=shipment_body(n), headers=seller.headers)
        clock.advance(minutes=10)
    # registered after the messages: it had no deliveries until the replay
    endpoint = await _create(client, seller)
    filtered = await _create(client, seller, event_types=["shipment.delivered"])
    resp = await client.post(
        f"{EP}/{endpoint['id']}/replay", json={"since": cutoff.isoformat()}, headers=seller.headers
    )
    assert resp.status == 202
    assert (await resp.json())["queued"] == 2
    log = await (await client.get("/v1/webhook-messages", headers=seller.headers)).json()
    per_message = [
        [d["endpoint_id"] for d in (await _message(client, seller, m["id"]))["deliveries"]] for m in log["data"]
    ]
    assert per_message == [[endpoint["id"]], [endpoint["id"]], []]
    nothing = await client.post(
        f"{EP}/{filtered['id']}/replay", json={"since": cutoff.isoformat()}, headers=seller.headers
    )
    assert (await nothing.json())["queued"] == 0

    naive = await client.post(
        f"{EP}/{endpoint['id']}/replay", json={"since": "2026-03-01T00:00:00"}, headers=seller.headers
    )
    assert naive.status == 422
    assert (await naive.json())["errors"][0]["path"] == "since"


async def test_webhooks_need_the_manage_scope(client: Client, app: web.Application, clock: FakeClock) -> None:
    reader = await make_account(app, "Reader", clock, scopes=("shipments:read",))
    resp = await client.post(EP, json={"url": HOOK}, headers=reader.headers)
    assert resp.status == 403
    assert (await resp.json())["required_scope"] == "webhooks:manage"


async def test_a_request_waits_for_another_writer_instead_of_failing(
    client: Client, seller: Account, settings: Any, backend: str
) -> None:
    """On SQLite a read-then-write request must take the write lock at its start: read
    first, and another process's commit in between makes its write fail ("database is
    locked") however long it waits."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL has row locks; this is SQLite's single writer")
    endpoint = await _create(client, seller)
    other = sqlite3.connect(
        settings.database.url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE webhook_endpoints SET description = 'by another process' WHERE id = ?", (endpoint["id"],))
    # the other process commits while the request is in progress
    timer = threading.Timer(0.3, lambda: (other.execute("COMMIT"), other.close()))
    timer.start()
    try:
        resp = await client.post(f"{EP}/{endpoint['id']}/test", headers=seller.headers)
    finally:
        timer.join()
    assert resp.status == 202, await resp.text()
    detail = await client.get(f"{EP}/{endpoint['id']}", headers=seller.headers)
    assert (await detail.json())["description"] == "by another process"
