"""POST /api/carriers/17track/push: verified by 17TRACK's signature, same path as polling."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import col, func, select

from carriers.simulator import SimState, journey_for
from carriers.simulator.track17 import render_entry
from carriers.track17 import sign_push
from tests.conftest import Account, FakeClock, make_settings
from tracker import keys
from tracker.models import Shipment, TrackingEvent, WebhookMessage
from tracker.settings import DatabaseSettings, Settings
from tracker.store import shipments as shipment_store

SECRET = "push-secret-for-tests"
NUMBER = "LP123456785CN"
SIM_NOW = datetime(2026, 1, 14, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(database: DatabaseSettings) -> Settings:
    return make_settings(database, carriers={"17track": {"webhook_secret": SECRET}})


def _push_body(event: str = "TRACKING_UPDATED", number: str = NUMBER) -> bytes:
    journey = journey_for(number, "17track", SimState())
    assert journey is not None
    entry = render_entry(journey, journey.visible(SIM_NOW))
    return json.dumps({"event": event, "data": entry}).encode()


def _steps() -> int:
    journey = journey_for(NUMBER, "17track", SimState())
    assert journey is not None
    return len(journey.visible(SIM_NOW))


async def _register(app: web.Application, clock: FakeClock, seller_id: str, carrier: str | None, order: str) -> str:
    async with app[keys.SESSIONMAKER]() as session:
        shipment = await shipment_store.create_shipment(
            session,
            seller_id,
            shipment_store.NewShipment(tracking_number=NUMBER, order_number=order, carrier=carrier, dest_country="US"),
            now=clock(),
            public_url="http://tracker.test",
        )
        await session.commit()
        return shipment.id


async def _counts(app: web.Application, shipment_id: str) -> tuple[int, list[str], str]:
    async with app[keys.SESSIONMAKER]() as session:
        events = (
            await session.exec(
                select(func.count()).select_from(TrackingEvent).where(TrackingEvent.shipment_id == shipment_id)
            )
        ).one()
        kinds = list(
            await session.exec(
                select(WebhookMessage.event_type)
                .where(WebhookMessage.shipment_id == shipment_id, WebhookMessage.event_type != "shipment.created")
                .order_by(col(WebhookMessage.sequence))
            )
        )
        status = (await session.exec(select(Shipment.status).where(Shipment.id == shipment_id))).one()
    return int(events), kinds, status


async def _post(client: TestClient, body: bytes, sign: str | None) -> Any:  # type: ignore[type-arg]
    headers = {"Content-Type": "application/json"}
    if sign is not None:
        headers["sign"] = sign
    return await client.post("/api/carriers/17track/push", data=body, headers=headers)


async def test_push_updates_every_sellers_shipment_once(
    client: TestClient,
    app: web.Application,
    clock: FakeClock,
    seller: Account,
    other_seller: Account,  # type: ignore[type-arg]
) -> None:
    mine = await _register(app, clock, seller.seller_id, "17track", "A-1")
    theirs = await _register(app, clock, other_seller.seller_id, None, "B-1")
    other_carrier = await _register(app, clock, other_seller.seller_id, "fedex", "B-2")
    body = _push_body()
    resp = await _post(client, body, sign_push(body, SECRET))
    assert resp.status == 200
    assert await resp.json() == {"received": 1, "updated": 2}
    journey = journey_for(NUMBER, "17track", SimState())
    assert journey is not None
    last = journey.visible(SIM_NOW)[-1].status.value
    for sid in (mine, theirs):
        events, kinds, status = await _counts(app, sid)
        assert events == _steps()
        assert status == last
        assert kinds.count("shipment.updated") == 1
    async with app[keys.SESSIONMAKER]() as session:
        adopted = (await session.exec(select(Shipment.carrier).where(Shipment.id == theirs))).one()
    assert adopted == "17track"
    assert await _counts(app, other_carrier) == (0, [], "pending")

    # the same push again (17TRACK retries) stores nothing new
    resp = await _post(client, body, sign_push(body, SECRET))
    assert resp.status == 200
    for sid in (mine, theirs):
        events, kinds, _ = await _counts(app, sid)
        assert events == _steps()
        assert kinds.count("shipment.updated") == 1


@pytest.mark.parametrize("sign", [None, "", "0" * 64, "wrong"])
async def test_bad_signature_is_refused_and_nothing_stored(
    client: TestClient,
    app: web.Application,
    clock: FakeClock,
    seller: Account,
    sign: str | None,  # type: ignore[type-arg]
) -> None:
    sid = await _register(app, clock, seller.seller_id, "17track", "A-2")
    resp = await _post(client, _push_body(), sign)
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"
    assert await _counts(app, sid) == (0, [], "pending")


async def test_signature_with_another_secret_is_refused(
    client: TestClient,
    app: web.Application,
    clock: FakeClock,
    seller: Account,  # type: ignore[type-arg]
) -> None:
    sid = await _register(app, clock, seller.seller_id, "17track", "A-3")
    body = _push_body()
    resp = await _post(client, body, sign_push(body, "another-secret"))
    assert resp.status == 401
    assert await _counts(app, sid) == (0, [], "pending")


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"event": "SOMETHING_ELSE", "data": {}}', b'{"event": "TRACKING_UPDATED"}']
)
async def test_malformed_push_is_400(
    client: TestClient,
    app: web.Application,
    clock: FakeClock,
    seller: Account,
    body: bytes,  # type: ignore[type-arg]
) -> None:
    sid = await _register(app, clock, seller.seller_id, "17track", "A-4")
    resp = await _post(client, body, sign_push(body, SECRET))
    assert resp.status == 400
    problem = await resp.json()
    assert problem["status"] == 400
    assert resp.content_type == "application/problem+json"
    assert await _counts(app, sid) == (0, [], "pending")


async def test_tracking_stopped_without_news_changes_nothing(
    client: TestClient,
    app: web.Application,
    clock: FakeClock,
    seller: Account,  # type: ignore[type-arg]
) -> None:
    sid = await _register(app, clock, seller.seller_id, "17track", "A-5")
    body = json.dumps({"event": "TRACKING_STOPPED", "data": {"number": NUMBER}}).encode()
    resp = await _post(client, body, sign_push(body, SECRET))
    assert resp.status == 200
    assert await resp.json() == {"received": 0, "updated": 0}
    assert await _counts(app, sid) == (0, [], "pending")


async def test_push_is_documented(client: TestClient) -> None:  # type: ignore[type-arg]
    spec = await (await client.get("/openapi.json")).json()
    op = spec["paths"]["/api/carriers/17track/push"]["post"]
    assert {"200", "400", "401"} <= set(op["responses"])
    assert "security" not in op
