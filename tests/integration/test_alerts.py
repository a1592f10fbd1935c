"""Alert rules on a real database: each rule opens on a seeded shipment state and resolves
itself when the condition clears; carrier and lane overrides; one open alert per kind."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from tests.conftest import FakeClock
from tracker import alerts
from tracker.db import SessionMaker, create_sessionmaker, engine_for
from tracker.models import Alert, AuditLog, Shipment, WebhookMessage, new_id
from tracker.settings import AlertSettings, DatabaseSettings
from tracker.store import sellers as seller_store
from tracker.store import shipments as shipment_store


@pytest.fixture
async def sm(database: DatabaseSettings) -> Any:
    engine = engine_for(database)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def _seller(sm: SessionMaker, clock: FakeClock) -> str:
    async with sm() as session:
        seller = await seller_store.create_seller(session, "Acme Export", now=clock())
        await session.commit()
        return seller.id


_n = [0]


async def _shipment(sm: SessionMaker, seller_id: str, clock: FakeClock, **fields: Any) -> str:
    _n[0] += 1
    new = shipment_store.NewShipment(
        tracking_number=f"TRK{_n[0]:08d}",
        order_number=f"ORD-{_n[0]}",
        dest_country=fields.pop("dest_country", "US"),
        carrier=fields.pop("carrier", "dhl"),
        origin_country=fields.pop("origin_country", "CN"),
        customer_email="jane@example.com",
    )
    async with sm() as session:
        shipment = await shipment_store.create_shipment(
            session, seller_id, new, now=fields.pop("created_at", clock()), public_url="http://tracker.test"
        )
        for name, value in fields.items():
            setattr(shipment, name, value)
        session.add(shipment)
        await session.commit()
        return shipment.id


async def _update(sm: SessionMaker, shipment_id: str, **fields: Any) -> None:
    async with sm() as session:
        shipment = await session.get(Shipment, shipment_id)
        assert shipment is not None
        for name, value in fields.items():
            setattr(shipment, name, value)
        session.add(shipment)
        await session.commit()


async def _alerts(sm: SessionMaker, shipment_id: str) -> list[Alert]:
    async with sm() as session:
        return list(await session.exec(select(Alert).where(Alert.shipment_id == shipment_id).order_by(col(Alert.id))))


async def _open_kinds(sm: SessionMaker, shipment_id: str) -> set[str]:
    return {a.kind for a in await _alerts(sm, shipment_id) if a.resolved_at is None}


async def _messages(sm: SessionMaker, shipment_id: str, event_type: str) -> list[WebhookMessage]:
    async with sm() as session:
        return list(
            await session.exec(
                select(WebhookMessage).where(
                    WebhookMessage.shipment_id == shipment_id, WebhookMessage.event_type == event_type
                )
            )
        )


def _moving(now: datetime, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": "in_transit",
        "sub_status": "in_transit",
        "first_event_at": now - timedelta(days=1),
        "last_event_at": now - timedelta(hours=6),
    }
    return {**base, **extra}


def _cases(now: datetime) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    d = timedelta(days=1)
    return [
        (
            "pending_too_long",
            {"created_at": now - timedelta(hours=49)},
            {"status": "info_received", "first_event_at": now, "last_event_at": now},
        ),
        ("stalled", _moving(now, last_event_at=now - 6 * d), {"last_event_at": now - timedelta(hours=1)}),
        ("late", _moving(now, promised_delivery=(now - 3 * d).date()), {"status": "delivered", "sub_status": "signed"}),
        (
            "late",
            _moving(now, eta_latest=now - 3 * d, eta_latest_end=now - 2 * d),
            {"eta_latest": now + d, "eta_latest_end": now + 3 * d},
        ),
        ("late", _moving(now, eta_latest=now - 2 * d), {"eta_latest": now + 2 * d}),
        (
            "lost",
            _moving(now, status="exception", sub_status="lost"),
            {"status": "in_transit", "sub_status": "arrived"},
        ),
        ("lost", _moving(now, last_event_at=now - 21 * d), {"last_event_at": now}),
        ("customs_held", _moving(now, sub_status="customs_held"), {"sub_status": "customs_released"}),
        ("customs_held", _moving(now, sub_status="customs_info_required"), {"sub_status": "customs_processing"}),
        (
            "customs_held",
            _moving(now, sub_status="customs_processing", customs_since=now - 5 * d),
            {"sub_status": "customs_released", "customs_since": None},
        ),
        (
            "failed_attempt",
            _moving(now, status="failed_attempt", sub_status="recipient_unavailable"),
            {"status": "out_for_delivery", "sub_status": "out_for_delivery"},
        ),
        ("returning", _moving(now, sub_status="returning"), {"sub_status": "in_transit"}),
        (
            "returning",
            _moving(now, status="returned", sub_status="returned_to_sender"),
            {"status": "in_transit", "sub_status": "in_transit"},
        ),
        ("damaged", _moving(now, sub_status="damaged"), {"sub_status": "other"}),
    ]


CASE_IDS = [
    "pending",
    "stalled",
    "late-promised",
    "late-eta-p90",
    "late-eta",
    "lost-carrier",
    "lost-time",
    "customs-held",
    "customs-info",
    "customs-days",
    "failed-attempt",
    "returning",
    "returned",
    "damaged",
]


@pytest.mark.parametrize("case", range(len(CASE_IDS)), ids=CASE_IDS)
async def test_rule_opens_then_resolves_when_condition_clears(sm: SessionMaker, clock: FakeClock, case: int) -> None:
    kind, state, clearing = _cases(clock())[case]
    seller_id = await _seller(sm, clock)
    sid = await _shipment(sm, seller_id, clock, **state)
    healthy = await _shipment(sm, seller_id, clock, **_moving(clock()))
    cfg = AlertSettings()

    result = await alerts.scan(sm, cfg, now=clock())
    assert kind in await _open_kinds(sm, sid)
    assert result.opened[kind] == 1
    assert await _open_kinds(sm, healthy) == set()
    opened = await _messages(sm, sid, "alert.opened")
    assert kind in {m.payload.split('"kind":"')[1].split('"')[0] for m in opened}

    # a second scan changes nothing: one open alert per kind per shipment
    again = await alerts.scan(sm, cfg, now=clock())
    assert again.total_opened == 0
    assert again.total_resolved == 0
    assert [a.kind for a in await _alerts(sm, sid)].count(kind) == 1

    await _update(sm, sid, **clearing)
    clock.advance(minutes=15)
    await alerts.scan(sm, cfg, now=clock())
    resolved = [a for a in await _alerts(sm, sid) if a.kind == kind]
    assert len(resolved) == 1
    assert resolved[0].state == "resolved"
    assert (resolved[0].resolution, resolved[0].resolved_by) == ("auto", "system")
    assert resolved[0].resolved_at == clock()
    assert await _messages(sm, sid, "alert.resolved")
    async with sm() as session:
        trail = await seller_store.audit_trail(session, seller_id, "alert", resolved[0].id)
    assert [t.action for t in trail] == ["alert.opened", "alert.resolved"]


async def test_thresholds_are_not_crossed_early(sm: SessionMaker, clock: FakeClock) -> None:
    now = clock()
    seller_id = await _seller(sm, clock)
    d = timedelta(days=1)
    ids = [
        await _shipment(sm, seller_id, clock, created_at=now - timedelta(hours=47)),
        await _shipment(sm, seller_id, clock, **_moving(now, last_event_at=now - 4 * d)),
        await _shipment(sm, seller_id, clock, carrier="usps", **_moving(now, last_event_at=now - 9 * d)),
        await _shipment(sm, seller_id, clock, **_moving(now, promised_delivery=(now - timedelta(hours=20)).date())),
        await _shipment(
            sm, seller_id, clock, **_moving(now, sub_status="customs_processing", customs_since=now - 3 * d)
        ),
        await _shipment(
            sm,
            seller_id,
            clock,
            status="delivered",
            sub_status="signed",
            last_event_at=now - 30 * d,
            promised_delivery=(now - 9 * d).date(),
        ),
        await _shipment(sm, seller_id, clock, active=False, **_moving(now, sub_status="damaged")),
    ]
    result = await alerts.scan(sm, AlertSettings(), now=now)
    assert result.total_opened == 0
    for sid in ids:
        assert await _open_kinds(sm, sid) == set()


async def test_express_and_postal_stall_thresholds(sm: SessionMaker, clock: FakeClock) -> None:
    now = clock()
    seller_id = await _seller(sm, clock)
    seven_days = _moving(now, last_event_at=now - timedelta(days=7))
    express = await _shipment(sm, seller_id, clock, carrier="fedex", **seven_days)
    postal = await _shipment(sm, seller_id, clock, carrier="yanwen", **seven_days)
    unknown = await _shipment(sm, seller_id, clock, carrier=None, **seven_days)
    await alerts.scan(sm, AlertSettings(), now=now)
    assert await _open_kinds(sm, express) == {"stalled"}
    assert await _open_kinds(sm, postal) == set()
    assert await _open_kinds(sm, unknown) == set()


async def test_carrier_and_lane_overrides_change_the_outcome(sm: SessionMaker, clock: FakeClock) -> None:
    now = clock()
    d = timedelta(days=1)
    seller_id = await _seller(sm, clock)
    usps_11 = await _shipment(sm, seller_id, clock, carrier="usps", **_moving(now, last_event_at=now - 11 * d))
    usps_mx = await _shipment(
        sm, seller_id, clock, carrier="usps", dest_country="MX", **_moving(now, last_event_at=now - 4 * d)
    )
    customs = _moving(now, sub_status="customs_processing", customs_since=now - 6 * d)
    to_br = await _shipment(sm, seller_id, clock, dest_country="BR", **customs)
    to_us = await _shipment(sm, seller_id, clock, dest_country="US", **customs)

    # defaults: usps is postal (10 days), customs 4 days everywhere
    defaults = AlertSettings()
    await alerts.scan(sm, defaults, now=now)
    assert await _open_kinds(sm, usps_11) == {"stalled"}
    assert await _open_kinds(sm, usps_mx) == set()
    assert await _open_kinds(sm, to_br) == {"customs_held"}
    assert await _open_kinds(sm, to_us) == {"customs_held"}

    tuned = AlertSettings.model_validate(
        {
            "carriers": {"usps": {"stalled_days": 12}},
            "lanes": {"CN-BR": {"customs_days": 10}, "cn-mx": {"stalled_days": 3}},
        }
    )
    assert alerts.thresholds_for(tuned, "usps", "CN", "MX").stalled_days == 3  # the lane beats the carrier
    assert alerts.thresholds_for(tuned, "usps", "CN", "US").stalled_days == 12
    assert alerts.thresholds_for(tuned, "dhl", "CN", "US").stalled_days == 5
    clock.advance(minutes=15)
    await alerts.scan(sm, tuned, now=clock())
    assert await _open_kinds(sm, usps_11) == set()  # 11 days is within usps' 12
    assert await _open_kinds(sm, usps_mx) == {"stalled"}  # the lane's 3 days
    assert await _open_kinds(sm, to_br) == set()  # Brazil's customs get 10 days
    assert await _open_kinds(sm, to_us) == {"customs_held"}
    resolved = [a for a in await _alerts(sm, to_br) if a.resolved_at is not None]
    assert resolved[0].details.get("customs_days") == 4.0


async def test_concurrent_scans_open_one_alert_and_one_message(sm: SessionMaker, clock: FakeClock) -> None:
    seller_id = await _seller(sm, clock)
    sids = [await _shipment(sm, seller_id, clock, **_moving(clock(), sub_status="damaged")) for _ in range(5)]
    cfg = AlertSettings(batch_size=2)
    results = await asyncio.gather(*[alerts.scan(sm, cfg, now=clock()) for _ in range(3)])
    assert sum(r.opened["damaged"] for r in results) == 5
    for sid in sids:
        assert len(await _alerts(sm, sid)) == 1
        assert len(await _messages(sm, sid, "alert.opened")) == 1
    async with sm() as session:
        audits = list(await session.exec(select(AuditLog).where(AuditLog.action == "alert.opened")))
    assert len(audits) == 5


async def test_database_refuses_a_second_open_alert_of_a_kind(sm: SessionMaker, clock: FakeClock) -> None:
    seller_id = await _seller(sm, clock)
    sid = await _shipment(sm, seller_id, clock)

    def row(**extra: Any) -> Alert:
        return Alert(id=new_id("alr"), seller_id=seller_id, shipment_id=sid, kind="late", opened_at=clock(), **extra)

    async with sm() as session:
        session.add(row(resolved_at=clock(), state="resolved"))
        session.add(row())
        await session.commit()
    async with sm() as session:
        session.add(row())
        with pytest.raises(IntegrityError):
            await session.commit()


async def test_alert_reopens_after_a_resolution(sm: SessionMaker, clock: FakeClock) -> None:
    seller_id = await _seller(sm, clock)
    sid = await _shipment(sm, seller_id, clock, **_moving(clock(), status="failed_attempt"))
    cfg = AlertSettings()
    await alerts.scan(sm, cfg, now=clock())
    await _update(sm, sid, status="out_for_delivery")
    await alerts.scan(sm, cfg, now=clock.advance(hours=1))
    await _update(sm, sid, status="failed_attempt")
    await alerts.scan(sm, cfg, now=clock.advance(hours=1))
    rows = await _alerts(sm, sid)
    assert [(a.kind, a.state) for a in rows] == [("failed_attempt", "resolved"), ("failed_attempt", "open")]
    messages = await _messages(sm, sid, "alert.opened") + await _messages(sm, sid, "alert.resolved")
    # every alert message takes the next per-shipment sequence number
    sequences = sorted(m.sequence or 0 for m in messages)
    assert len(set(sequences)) == 3


def test_rule_kinds_match_the_design() -> None:
    assert {r.kind for r in alerts.rules(AlertSettings(), FakeClock()())} == set(alerts.KINDS)
