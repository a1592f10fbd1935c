"""Retention purge and personal-data erasure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import select

from tests.conftest import Account, FakeClock, shipment_body
from tracker import keys
from tracker.models import AuditLog, Order, Shipment, TrackingEvent, WebhookMessage
from tracker.retention import erase_customer, months_before, purge


def test_months_before_clamps_to_month_end() -> None:
    assert months_before(datetime(2026, 3, 31, 12, tzinfo=UTC), 1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert months_before(datetime(2026, 3, 2, tzinfo=UTC), 36) == datetime(2023, 3, 2, tzinfo=UTC)
    assert months_before(datetime(2028, 3, 31, tzinfo=UTC), 1) == datetime(2028, 2, 29, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(2024, 12, 15, tzinfo=UTC)


async def _add_event(app: web.Application, shipment_id: str, when: datetime) -> None:
    async with app[keys.SESSIONMAKER]() as session:
        session.add(TrackingEvent(shipment_id=shipment_id, fingerprint="f" * 64, occurred_at=when,
                                  time_basis="utc_given", local_time=when.isoformat(), status="in_transit",
                                  sub_status="departed", raw_code="X", description="Departed", recorded_at=when))
        await session.commit()


async def test_purge_deletes_only_what_is_older_than_retention(
    client: TestClient, app: web.Application, seller: Account, clock: FakeClock  # type: ignore[type-arg]
) -> None:
    start = clock()
    old = await (await client.post("/v1/shipments", json=shipment_body(1), headers=seller.headers)).json()
    await _add_event(app, old["id"], clock())
    clock.advance(days=400)
    young = await (await client.post("/v1/shipments", json=shipment_body(2), headers=seller.headers)).json()
    sm = app[keys.SESSIONMAKER]
    three_years = months_before(start, -36)
    # a day before the first shipment turns 36 months old nothing goes
    report = await purge(sm, now=three_years - timedelta(days=1), months=36)
    assert report.shipments == 0 and report.orders == 0
    later = three_years + timedelta(days=1)
    dry = await purge(sm, now=later, months=36, dry_run=True)
    assert dry.shipments == 1 and dry.dry_run
    report = await purge(sm, now=later, months=36)
    assert report.shipments == 1 and report.events == 1 and report.orders == 1
    async with sm() as session:
        ids = [s.id for s in await session.exec(select(Shipment))]
        assert ids == [young["id"]]
        assert list(await session.exec(select(TrackingEvent))) == []
        orders = [o.order_number for o in await session.exec(select(Order))]
        assert orders == ["ORD-00002"]
        assert [m.shipment_id for m in await session.exec(select(WebhookMessage))] == [young["id"]]
    # the seller API no longer knows it
    assert (await client.get(f"/v1/shipments/{old['id']}", headers=seller.headers)).status == 404


async def test_erasure_keeps_the_shipment_but_not_the_person(
    client: TestClient, app: web.Application, seller: Account, clock: FakeClock  # type: ignore[type-arg]
) -> None:
    created = await (await client.post("/v1/shipments", json=shipment_body(3), headers=seller.headers)).json()
    await _add_event(app, created["id"], clock())
    report = await erase_customer(app[keys.SESSIONMAKER], seller_id=seller.seller_id, now=clock(),
                                  email="JANE3@example.com")
    assert report.shipments == 1 and report.messages_scrubbed == 1
    got = await (await client.get(f"/v1/shipments/{created['id']}", headers=seller.headers)).json()
    assert got["customer"] == {"name": None, "email": None, "phone": None, "locale": "en"}
    assert got["destination"]["address"] is None and got["destination"]["postcode"] is None
    assert got["destination"]["country"] == "US"
    assert got["order_number"] == "ORD-00003"
    assert len(got["events"]) == 1
    async with app[keys.SESSIONMAKER]() as session:
        payloads = [m.payload for m in await session.exec(select(WebhookMessage))]
        trail = [a.action for a in await session.exec(select(AuditLog).where(AuditLog.object_id == created["id"]))]
    joined = json.dumps(payloads)
    for pii in ("jane3@example.com", "Jane Customer", "555 0100", "1 Market St", "94103"):
        assert pii not in joined
    assert "customer.erased" in trail


async def test_erasure_is_scoped_to_the_seller(
    client: TestClient, app: web.Application, seller: Account, other_seller: Account, clock: FakeClock  # type: ignore[type-arg]
) -> None:
    created = await (await client.post("/v1/shipments", json=shipment_body(4), headers=seller.headers)).json()
    report = await erase_customer(app[keys.SESSIONMAKER], seller_id=other_seller.seller_id, now=clock(),
                                  shipment_id=created["id"])
    assert report.shipments == 0
    got = await (await client.get(f"/v1/shipments/{created['id']}", headers=seller.headers)).json()
    assert got["customer"]["email"] == "jane4@example.com"
