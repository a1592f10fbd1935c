"""The seller API for shipments: create, batch, idempotency, read, list, update, stop."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from tests.conftest import Account, FakeClock, shipment_body
from tracker import keys
from tracker.models import PollSchedule, Shipment
from tracker.store import tracking as tracking_store


async def post(client: TestClient, account: Account, path: str, body: Any, **headers: str) -> Any:  # type: ignore[type-arg]
    return await client.post(path, json=body, headers={**account.headers, **headers})


async def test_create_answers_contract_shape(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    resp = await post(client, seller, "/v1/shipments", shipment_body(1, carrier="ups"))
    assert resp.status == 201, await resp.text()
    data = await resp.json()
    assert data["id"].startswith("shp_")
    assert data["tracking_number"] == "TRK0000000001"
    assert data["carrier"] == "ups"
    assert data["status"] == "pending"
    assert data["sub_status"] == "other"
    assert data["public_url"].startswith("http://tracker.test/t/")
    assert data["events"] == []
    got = await client.get(f"/v1/shipments/{data['id']}", headers=seller.headers)
    assert got.status == 200
    again = await got.json()
    assert again["id"] == data["id"]
    assert again["customer"]["email"] == "jane1@example.com"


async def test_tracking_number_is_normalized_and_carrier_detected_later(
    client: TestClient, seller: Account
) -> None:  # type: ignore[type-arg]
    resp = await post(client, seller, "/v1/shipments", shipment_body(2, tracking_number="trk-000 000 0002"))
    data = await resp.json()
    assert resp.status == 201
    assert data["tracking_number"] == "TRK0000000002"
    assert data["carrier"] is None
    assert data["carrier_candidates"][-1] == "17track"


async def test_order_numbers_never_repeat_for_a_different_order(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    first = await post(client, seller, "/v1/shipments", shipment_body(3))
    assert first.status == 201
    other_customer = shipment_body(
        4, order_number="ORD-00003", customer={"name": "Someone Else", "email": "else@example.com"}
    )
    resp = await post(client, seller, "/v1/shipments", other_customer)
    assert resp.status == 409
    problem = await resp.json()
    assert resp.content_type == "application/problem+json"
    assert problem["type"].endswith("/order-number-used")
    # a second parcel of the same order (same customer) is fine
    same_order = shipment_body(3, tracking_number="TRK0000000099")
    assert (await post(client, seller, "/v1/shipments", same_order)).status == 201


async def test_order_numbers_are_per_seller(
    client: TestClient, seller: Account, other_seller: Account
) -> None:  # type: ignore[type-arg]
    assert (await post(client, seller, "/v1/shipments", shipment_body(5))).status == 201
    other = shipment_body(5, customer={"email": "x@example.org"})
    assert (await post(client, other_seller, "/v1/shipments", other)).status == 201


async def test_reshipment_links_to_the_parcel_it_replaces(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    first = await (await post(client, seller, "/v1/shipments", shipment_body(6))).json()
    resp = await post(
        client,
        seller,
        "/v1/shipments",
        shipment_body(6, tracking_number="TRK0000000606", replaces=first["id"]),
    )
    assert resp.status == 201
    assert (await resp.json())["replaces"] == first["id"]
    missing = await post(
        client,
        seller,
        "/v1/shipments",
        shipment_body(6, tracking_number="TRK0000000607", replaces="shp_nope"),
    )
    assert missing.status == 422


async def test_batch_is_all_or_nothing_with_field_paths(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    bad = {"shipments": [shipment_body(10), shipment_body(11, destination={"country": "XX"})]}
    resp = await post(client, seller, "/v1/shipments/batch", bad)
    assert resp.status == 422
    problem = await resp.json()
    assert [e["path"] for e in problem["errors"]] == ["shipments[1].destination.country"]
    listed = await (await client.get("/v1/shipments", headers=seller.headers)).json()
    assert listed["data"] == []
    good = {"shipments": [shipment_body(n) for n in range(20, 25)]}
    resp = await post(client, seller, "/v1/shipments/batch", good)
    assert resp.status == 201
    assert len((await resp.json())["shipments"]) == 5


async def test_batch_limit_is_100(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    resp = await post(
        client, seller, "/v1/shipments/batch", {"shipments": [shipment_body(n) for n in range(101)]}
    )
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["path"] == "shipments"


async def test_idempotency_key_replays_and_refuses_other_bodies(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    body = {"shipments": [shipment_body(n) for n in range(30, 33)]}
    first = await post(client, seller, "/v1/shipments/batch", body, **{"Idempotency-Key": "batch-1"})
    assert first.status == 201
    replay = await post(client, seller, "/v1/shipments/batch", body, **{"Idempotency-Key": "batch-1"})
    assert replay.status == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert await replay.json() == await first.json()
    other = {"shipments": [shipment_body(40)]}
    clash = await post(client, seller, "/v1/shipments/batch", other, **{"Idempotency-Key": "batch-1"})
    assert clash.status == 422
    assert (await clash.json())["type"].endswith("/idempotency-key-reused")
    listed = await (await client.get("/v1/shipments?limit=200", headers=seller.headers)).json()
    assert len(listed["data"]) == 3


async def test_list_filters_and_cursor_pagination(
    client: TestClient, seller: Account, clock: FakeClock
) -> None:  # type: ignore[type-arg]
    ids = []
    for n in range(50, 57):
        carrier = "dhl" if n % 2 else "ups"
        resp = await post(client, seller, "/v1/shipments", shipment_body(n, carrier=carrier))
        ids.append((await resp.json())["id"])
        clock.advance(minutes=1)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/shipments?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = await (await client.get(url, headers=seller.headers)).json()
        seen += [s["id"] for s in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    dhl = await (await client.get("/v1/shipments?carrier=dhl", headers=seller.headers)).json()
    assert {s["carrier"] for s in dhl["data"]} == {"dhl"}
    assert len(dhl["data"]) == 3
    by_order = await (await client.get("/v1/shipments?order_number=ORD-00052", headers=seller.headers)).json()
    assert [s["order_number"] for s in by_order["data"]] == ["ORD-00052"]
    window = await (
        await client.get(
            "/v1/shipments",
            params={"created_after": "2026-03-02T08:02:00+00:00", "created_before": "2026-03-02T08:04:00Z"},
            headers=seller.headers,
        )
    ).json()
    assert len(window["data"]) == 2
    no_alerts = await (await client.get("/v1/shipments?has_open_alert=true", headers=seller.headers)).json()
    assert no_alerts["data"] == []
    bad = await client.get("/v1/shipments?cursor=%%%", headers=seller.headers)
    assert bad.status == 400
    bad_date = await client.get("/v1/shipments?created_after=yesterday", headers=seller.headers)
    assert bad_date.status == 400
    assert (await bad_date.json())["errors"][0]["path"] == "created_after"


async def test_update_and_stop(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    created = await (await post(client, seller, "/v1/shipments", shipment_body(60))).json()
    resp = await client.patch(
        f"/v1/shipments/{created['id']}",
        json={"carrier": "fedex", "promised_delivery": "2026-04-01"},
        headers=seller.headers,
    )
    assert resp.status == 200
    data = await resp.json()
    assert data["carrier"] == "fedex"
    assert data["promised_delivery"] == "2026-04-01"
    bad = await client.patch(
        f"/v1/shipments/{created['id']}", json={"promised_delivery": "2026-02-30"}, headers=seller.headers
    )
    assert bad.status == 422
    assert (await bad.json())["errors"][0]["path"] == "promised_delivery"
    stopped = await client.post(f"/v1/shipments/{created['id']}/stop", headers=seller.headers)
    assert (await stopped.json())["tracking_active"] is False
    refresh = await client.post(f"/v1/shipments/{created['id']}/refresh", headers=seller.headers)
    assert refresh.status == 409


async def _schedule(app: web.Application, shipment_id: str) -> tuple[datetime | None, bool]:
    """(next poll, shipments.active) as stored."""
    async with app[keys.SESSIONMAKER]() as session:
        due = (await session.exec(select(PollSchedule).where(PollSchedule.shipment_id == shipment_id))).one()
        shipment = (await session.exec(select(Shipment).where(Shipment.id == shipment_id))).one()
    return due.next_poll_at, shipment.active


async def test_carrier_change_refresh_and_stop_set_the_poll_schedule(
    client: TestClient,  # type: ignore[type-arg]
    app: web.Application,
    seller: Account,
    clock: FakeClock,
) -> None:
    created = await (await post(client, seller, "/v1/shipments", shipment_body(61))).json()
    sid = created["id"]
    assert await _schedule(app, sid) == (clock(), True)
    # polled, delivered, stopped polling: as the poller leaves a delivered parcel
    async with app[keys.SESSIONMAKER]() as session:
        shipment = (await session.exec(select(Shipment).where(Shipment.id == sid))).one()
        shipment.status = "delivered"
        await tracking_store.set_next_poll(session, shipment, None)
        await session.commit()
    clock.advance(hours=1)
    refreshed = await client.post(f"/v1/shipments/{sid}/refresh", headers=seller.headers)
    assert refreshed.status == 202
    assert (await refreshed.json())["next_poll_at"] == clock().isoformat()
    assert await _schedule(app, sid) == (clock(), True)
    assert (await (await client.get(f"/v1/shipments/{sid}", headers=seller.headers)).json())["tracking_active"]

    async with app[keys.SESSIONMAKER]() as session:
        shipment = (await session.exec(select(Shipment).where(Shipment.id == sid))).one()
        await tracking_store.set_next_poll(session, shipment, clock() + timedelta(hours=4))
        await session.commit()
    clock.advance(hours=1)
    changed = await client.patch(f"/v1/shipments/{sid}", json={"carrier": "dhl"}, headers=seller.headers)
    assert changed.status == 200
    # the new carrier is asked at once
    assert await _schedule(app, sid) == (clock(), True)

    stopped = await client.post(f"/v1/shipments/{sid}/stop", headers=seller.headers)
    assert (await stopped.json())["tracking_active"] is False
    assert await _schedule(app, sid) == (None, False)
    async with app[keys.SESSIONMAKER]() as session:
        claimed = await tracking_store.claim_due(
            session, now=clock() + timedelta(days=1), owner="test", lease_until=clock() + timedelta(days=2), limit=10
        )
    assert sid not in {d.id for d in claimed}
