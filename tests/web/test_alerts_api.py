"""/v1/alerts: list and filter, read with the audit trail, acknowledge, resolve, re-ship."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from tests.conftest import Account, FakeClock, make_account, shipment_body
from tracker import alerts, keys
from tracker.models import Shipment, WebhookMessage


async def _seed(app: web.Application, shipment_id: str, **fields: Any) -> None:
    async with app[keys.SESSIONMAKER]() as session:
        shipment = await session.get(Shipment, shipment_id)
        assert shipment is not None
        for name, value in fields.items():
            setattr(shipment, name, value)
        session.add(shipment)
        await session.commit()


async def _scan(app: web.Application, clock: FakeClock) -> alerts.ScanResult:
    return await alerts.scan(app[keys.SESSIONMAKER], app[keys.SETTINGS].alerts, now=clock())


async def _register(client: TestClient, account: Account, n: int, carrier: str) -> str:  # type: ignore[type-arg]
    resp = await client.post("/v1/shipments", json=shipment_body(n, carrier=carrier), headers=account.headers)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def _two_alerts(
    client: TestClient,
    app: web.Application,
    seller: Account,  # type: ignore[type-arg]
    clock: FakeClock,
) -> tuple[str, str]:
    damaged = await _register(client, seller, 1, "dhl")
    stalled = await _register(client, seller, 2, "ups")
    now = clock()
    await _seed(app, damaged, status="exception", sub_status="damaged", last_event_at=now, first_event_at=now)
    await _seed(
        app,
        stalled,
        status="in_transit",
        sub_status="in_transit",
        first_event_at=now - timedelta(days=9),
        last_event_at=now - timedelta(days=6),
    )
    result = await _scan(app, clock)
    assert result.opened["damaged"] == 1
    assert result.opened["stalled"] == 1
    return damaged, stalled


async def test_list_filters_and_pagination(
    client: TestClient,
    app: web.Application,
    seller: Account,  # type: ignore[type-arg]
    other_seller: Account,
    clock: FakeClock,
) -> None:
    damaged, stalled = await _two_alerts(client, app, seller, clock)
    listed = await (await client.get("/v1/alerts", headers=seller.headers)).json()
    assert {(a["kind"], a["shipment_id"]) for a in listed["data"]} == {("damaged", damaged), ("stalled", stalled)}
    assert listed["next_cursor"] is None

    async def ids(query: str) -> list[str]:
        resp = await client.get(f"/v1/alerts?{query}", headers=seller.headers)
        assert resp.status == 200
        return [a["shipment_id"] for a in (await resp.json())["data"]]

    assert await ids("kind=damaged") == [damaged]
    assert await ids("carrier=ups") == [stalled]
    assert await ids(f"shipment_id={stalled}") == [stalled]
    assert sorted(await ids("state=open")) == sorted([damaged, stalled])
    assert await ids("state=resolved") == []
    after = (clock() + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert await ids(f"opened_after={after}") == []
    assert len(await ids(f"opened_before={after}")) == 2
    page1 = await (await client.get("/v1/alerts?limit=1", headers=seller.headers)).json()
    assert page1["next_cursor"]
    page2 = await (await client.get(f"/v1/alerts?limit=1&cursor={page1['next_cursor']}", headers=seller.headers)).json()
    assert {page1["data"][0]["id"], page2["data"][0]["id"]} == {a["id"] for a in listed["data"]}
    assert page2["next_cursor"] is None
    assert (await client.get("/v1/alerts?cursor=%%%", headers=seller.headers)).status == 400
    assert (await client.get("/v1/alerts?kind=bogus", headers=seller.headers)).status == 400
    # another seller sees none of them
    theirs = await (await client.get("/v1/alerts", headers=other_seller.headers)).json()
    assert theirs["data"] == []


async def test_acknowledge_then_resolve_is_audited(
    client: TestClient,
    app: web.Application,  # type: ignore[type-arg]
    seller: Account,
    clock: FakeClock,
) -> None:
    damaged, _ = await _two_alerts(client, app, seller, clock)
    [alert] = (await (await client.get("/v1/alerts?kind=damaged", headers=seller.headers)).json())["data"]
    prefix = seller.api_key[:12]

    clock.advance(minutes=5)
    ack = await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=seller.headers)
    assert ack.status == 200
    body = await ack.json()
    assert (body["state"], body["acknowledged_by"]) == ("acknowledged", prefix)
    again = await client.post(
        f"/v1/alerts/{alert['id']}/acknowledge", json={"note": "still on it"}, headers=seller.headers
    )
    assert again.status == 200

    clock.advance(minutes=5)
    resolved = await client.post(
        f"/v1/alerts/{alert['id']}/resolve",
        headers=seller.headers,
        json={"action": "refunded", "note": "refunded in full"},
    )
    assert resolved.status == 200, await resolved.text()
    body = await resolved.json()
    assert (body["state"], body["resolution"], body["resolved_by"]) == ("resolved", "refunded", prefix)
    assert body["note"] == "refunded in full"
    assert body["resolved_at"] == clock().isoformat()
    trail = [(t["actor"], t["action"]) for t in body["audit"]]
    assert trail == [("system", "alert.opened"), (prefix, "alert.acknowledged"), (prefix, "alert.resolved")]
    assert body["audit"][2]["details"] == {"action": "refunded", "note": "refunded in full"}

    fetched = await (await client.get(f"/v1/alerts/{alert['id']}", headers=seller.headers)).json()
    assert fetched["audit"] == body["audit"]
    conflict = await client.post(f"/v1/alerts/{alert['id']}/resolve", json={"action": "other"}, headers=seller.headers)
    assert conflict.status == 409
    assert (await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=seller.headers)).status == 409

    async with app[keys.SESSIONMAKER]() as session:
        messages = list(
            await session.exec(
                select(WebhookMessage).where(
                    WebhookMessage.shipment_id == damaged, WebhookMessage.event_type == "alert.resolved"
                )
            )
        )
    assert [json.loads(m.payload)["data"]["resolution"] for m in messages] == ["refunded"]

    # the seller's decision stands while the carrier says nothing new
    clock.advance(hours=1)
    assert (await _scan(app, clock)).opened["damaged"] == 0
    await _seed(app, damaged, last_event_at=clock())
    clock.advance(minutes=1)
    assert (await _scan(app, clock)).opened["damaged"] == 1


async def test_resolve_by_reshipping_registers_a_linked_shipment(
    client: TestClient,
    app: web.Application,
    seller: Account,
    clock: FakeClock,  # type: ignore[type-arg]
) -> None:
    _, stalled = await _two_alerts(client, app, seller, clock)
    [alert] = (await (await client.get("/v1/alerts?kind=stalled", headers=seller.headers)).json())["data"]
    url = f"/v1/alerts/{alert['id']}/resolve"
    missing = await client.post(url, json={"action": "reshipped"}, headers=seller.headers)
    assert missing.status == 422
    wrong = await client.post(
        url,
        json={"action": "refunded", "reshipment": {"tracking_number": "1Z999AA10123456784"}},
        headers=seller.headers,
    )
    assert wrong.status == 422
    resp = await client.post(
        url,
        headers=seller.headers,
        json={
            "action": "reshipped",
            "note": "sent a new one",
            "reshipment": {"tracking_number": "1Z999AA10123456784", "carrier": "ups"},
        },
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["resolution"] == "reshipped"
    new_id = body["reshipment_id"]
    assert body["audit"][-1]["details"]["reshipment_id"] == new_id
    new = await (await client.get(f"/v1/shipments/{new_id}", headers=seller.headers)).json()
    assert new["replaces"] == stalled
    assert (new["carrier"], new["tracking_number"]) == ("ups", "1Z999AA10123456784")
    assert new["order_number"] == "ORD-00002"


async def test_acknowledging_needs_alerts_write(
    client: TestClient,
    app: web.Application,
    seller: Account,  # type: ignore[type-arg]
    clock: FakeClock,
) -> None:
    await _two_alerts(client, app, seller, clock)
    reader = await make_account(app, "Reader", clock, scopes=("shipments:read",))
    # same seller, read-only key
    async with app[keys.SESSIONMAKER]() as session:
        from tracker.store import sellers as seller_store

        key = await seller_store.create_key(session, seller.seller_id, ("shipments:read",), now=clock())
        await session.commit()
    headers = {"Authorization": f"Bearer {key.api_key}"}
    [alert, _] = (await (await client.get("/v1/alerts", headers=headers)).json())["data"]
    assert (await client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=headers)).status == 403
    assert (await client.get(f"/v1/alerts/{alert['id']}", headers=reader.headers)).status == 404
