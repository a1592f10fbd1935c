"""Every /v1 route as owner, other seller, anonymous, revoked key and missing scope."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import Account, FakeClock, make_account, shipment_body
from tracker import keys
from tracker.store import sellers as seller_store
from tracker.web.openapi import build_spec


async def make_objects(client: TestClient, owner: Account) -> dict[str, str]:  # type: ignore[type-arg]
    """One object of each kind the /v1 routes take an {id} for, owned by `owner`."""
    shipment = await (await client.post("/v1/shipments", json=shipment_body(1), headers=owner.headers)).json()
    endpoint = await (
        await client.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:8000/hook"}, headers=owner.headers
        )
    ).json()
    message = await (
        await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/test", headers=owner.headers)
    ).json()
    from tracker.models import Alert, new_id

    alert_id = new_id("alr")  # alerts are opened by the scan, so the factory writes one directly
    async with client.app[keys.SESSIONMAKER]() as session:
        session.add(Alert(id=alert_id, seller_id=owner.seller_id, shipment_id=shipment["id"], kind="stalled",
                          opened_at=client.app[keys.CLOCK]()))
        await session.commit()
    from tests.customs import body as declaration_body

    declaration = await (await client.post("/v1/declarations", json=declaration_body(), headers=owner.headers)).json()
    return {
        "/v1/alerts/": alert_id,
        "/v1/declarations/": declaration["id"],
        "/v1/shipments/": shipment["id"],
        "/v1/webhook-endpoints/": endpoint["id"],
        "/v1/webhook-messages/": message["id"],
    }


def v1_routes(app: web.Application) -> list[tuple[str, str]]:
    out = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "OPTIONS", "*"):
            continue
        if resource.canonical.startswith("/v1/"):
            out.append((route.method, resource.canonical))
    return sorted(set(out))


def fill(template: str, objects: dict[str, str]) -> str:
    for prefix, obj_id in objects.items():
        if template.startswith(prefix + "{"):
            return re.sub(r"\{[^}]+\}", obj_id, template, count=1)
    return re.sub(r"\{[^}]+\}", "unknown", template)


def required_scope(spec: dict[str, Any], method: str, template: str) -> str | None:
    desc = spec["paths"][template][method.lower()].get("description", "")
    m = re.search(r"Requires scope `([^`]+)`", desc)
    return m.group(1) if m else None


async def test_every_route(
    client: TestClient, app: web.Application, seller: Account, other_seller: Account, clock: FakeClock
) -> None:  # type: ignore[type-arg]
    objects = await make_objects(client, seller)
    spec = build_spec("http://tracker.test")
    revoked = await make_account(app, "Revoked Co", clock)
    async with app[keys.SESSIONMAKER]() as session:
        await seller_store.revoke_key(session, revoked.key_id, now=clock())
        await session.commit()
    routes = v1_routes(app)
    assert ("POST", "/v1/shipments") in routes
    checked_other = 0
    for method, template in routes:
        url = fill(template, objects)
        anon = await client.request(method, url, json={})
        assert anon.status == 401, (method, template, anon.status)
        assert anon.headers["WWW-Authenticate"].startswith("Bearer")
        bad = await client.request(
            method, url, json={}, headers={"Authorization": "Bearer trk_00000000_nope"}
        )
        assert bad.status == 401, (method, template)
        gone = await client.request(method, url, json={}, headers=revoked.headers)
        assert gone.status == 401, (method, template)
        scope = required_scope(spec, method, template)
        assert scope is not None, f"{method} {template} documents no scope"
        lacking = tuple(s for s in seller_store.SCOPES if s != scope)
        weak = await make_account(app, f"Weak {method} {template}", clock, scopes=lacking)
        denied = await client.request(method, url, json={}, headers=weak.headers)
        assert denied.status == 403, (method, template, denied.status)
        if "{" in template:
            theirs = await client.request(method, url, json={}, headers=other_seller.headers)
            missing = await client.request(method, fill(template, {}), json={}, headers=other_seller.headers)
            assert theirs.status == 404, (method, template, theirs.status)
            assert missing.status == 404
            body_theirs, body_missing = await theirs.json(), await missing.json()
            assert body_theirs["type"] == body_missing["type"]
            assert body_theirs["detail"] == body_missing["detail"]
            checked_other += 1
    assert checked_other >= 4


async def test_platform_key_manages_its_merchants(
    client: TestClient, app: web.Application, clock: FakeClock
) -> None:  # type: ignore[type-arg]
    platform = await make_account(app, "Market Platform", clock, kind="platform")
    merchant = await make_account(app, "Small Merchant", clock, parent_id=platform.seller_id)
    stranger = await make_account(app, "Stranger", clock)
    as_merchant = {**platform.headers, "Tracker-Seller": merchant.seller_id}
    created = await client.post("/v1/shipments", json=shipment_body(7), headers=as_merchant)
    assert created.status == 201
    sid = (await created.json())["id"]
    # the merchant's own key sees it; the platform's key without the header does not
    assert (await client.get(f"/v1/shipments/{sid}", headers=merchant.headers)).status == 200
    assert (await client.get(f"/v1/shipments/{sid}", headers=platform.headers)).status == 404
    # a platform cannot act for a seller that is not its merchant, nor a merchant for the platform
    other = await client.get(
        "/v1/shipments", headers={**platform.headers, "Tracker-Seller": stranger.seller_id}
    )
    assert other.status == 404
    up = await client.get("/v1/shipments", headers={**merchant.headers, "Tracker-Seller": platform.seller_id})
    assert up.status == 404
