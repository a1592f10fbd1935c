"""A full poll cycle: the carrier simulator on loopback, a real database, store assertions."""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import event
from sqlmodel import col, select

from carriers.base import CarrierEvent, TimeBasis, TrackResult
from carriers.simulator import SimState, create_app, journey_for
from carriers.simulator.journey import Journey, Step
from carriers.simulator.state import Faults
from carriers.status import Status, SubStatus
from tests.carriers.sim_helpers import make_sim_app
from tests.conftest import FakeClock, make_settings
from tracker.carrier_registry import build_carriers
from tracker.db import SessionMaker, create_sessionmaker, engine_for
from tracker.models import Notification, PollSchedule, Shipment, TrackingEvent, WebhookMessage
from tracker.polling import Poller, pick_result
from tracker.settings import DatabaseSettings, Settings
from tracker.store import sellers as seller_store
from tracker.store import shipments as shipment_store
from tracker.store import tracking as tracking_store
from tracker.timeline import derive_status

EPOCH = datetime(2026, 1, 5, tzinfo=UTC)


class FakeMonotonic:
    """Monotonic seconds that only move when the poller 'sleeps'."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


@dataclass
class Rig:
    settings: Settings
    clock: FakeClock
    state: SimState
    sim_url: str
    http: aiohttp.ClientSession
    sm: SessionMaker
    mono: FakeMonotonic = field(default_factory=FakeMonotonic)
    seller_id: str = ""

    def poller(self, **polling: Any) -> Poller:
        settings = self.settings
        if polling:
            settings = settings.model_copy(update={"polling": settings.polling.model_copy(update=polling)})
        carriers = build_carriers(
            settings, self.http, clock=self.clock, simulator_url=self.sim_url, monotonic=self.mono
        )
        return Poller(
            self.sm, carriers, clock=self.clock, settings=settings.polling, rand=lambda: 0.5, sleep=self.mono.sleep
        )

    async def register(self, number: str, carrier: str | None, dest: str = "US") -> str:
        async with self.sm() as session:
            shipment = await shipment_store.create_shipment(
                session,
                self.seller_id,
                shipment_store.NewShipment(
                    tracking_number=number,
                    order_number=f"O-{number}",
                    carrier=carrier,
                    dest_country=dest,
                    customer_email="c@example.com",
                ),
                now=self.clock(),
                public_url="http://tracker.test",
            )
            await session.commit()
            return shipment.id

    async def shipment(self, shipment_id: str) -> Shipment:
        async with self.sm() as session:
            row = (await session.exec(select(Shipment).where(Shipment.id == shipment_id))).one()
            return row

    async def schedule(self, shipment_id: str) -> PollSchedule:
        async with self.sm() as session:
            return (await session.exec(select(PollSchedule).where(PollSchedule.shipment_id == shipment_id))).one()

    async def due_now(self, shipment_id: str) -> None:
        async with self.sm() as session:
            shipment = (await session.exec(select(Shipment).where(Shipment.id == shipment_id))).one()
            await tracking_store.set_next_poll(session, shipment, self.clock())
            await session.commit()

    async def events(self, shipment_id: str) -> list[TrackingEvent]:
        async with self.sm() as session:
            return list(await session.exec(select(TrackingEvent).where(TrackingEvent.shipment_id == shipment_id)))

    async def messages(self, shipment_id: str) -> list[str]:
        async with self.sm() as session:
            rows = await session.exec(
                select(WebhookMessage.event_type)
                .where(WebhookMessage.shipment_id == shipment_id, WebhookMessage.event_type != "shipment.created")
                .order_by(col(WebhookMessage.sequence))
            )
            return list(rows)


async def _rig(
    database: DatabaseSettings,
    aiohttp_server: Any,
    sim_app: web.Application,
    state: SimState,
    clock: FakeClock,
    **overrides: Any,
) -> AsyncIterator[Rig]:
    server = await aiohttp_server(sim_app)
    settings = make_settings(database, **overrides)
    engine = engine_for(settings.database)
    async with aiohttp.ClientSession() as http:
        rig = Rig(settings, clock, state, str(server.make_url("")), http, create_sessionmaker(engine))
        async with rig.sm() as session:
            seller = await seller_store.create_seller(session, "Poll Test", now=clock())
            await session.commit()
        rig.seller_id = seller.id
        yield rig
    await engine.dispose()


@pytest.fixture
def sim_clock() -> FakeClock:
    return FakeClock(EPOCH + timedelta(days=8))


@pytest.fixture
async def rig(database: DatabaseSettings, aiohttp_server: Any, sim_clock: FakeClock) -> AsyncIterator[Rig]:
    state = SimState(clock=sim_clock)
    async for r in _rig(database, aiohttp_server, create_app(state), state, sim_clock):
        yield r


def served_steps(journey: Journey, carrier: str, now: datetime) -> list[Step]:
    """The scans a carrier's simulated API shows at `now` (Yanwen has no label-created scan)."""
    steps = journey.visible(now)
    if carrier == "yanwen":
        steps = [s for s in steps if s.status is not Status.INFO_RECEIVED]
    return steps


def _expected_status(steps: list[Step]) -> str:
    return steps[-1].status.value if steps else Status.PENDING.value


NUMBERS = [
    ("FX100000000001", "fedex"),
    ("FX100000000002", "fedex"),
    ("YW200000000001CN", "yanwen"),
    ("LP300000000001CN", "17track"),
    ("LP300000000002CN", "17track"),
    ("SBXDELIVERED000001", "fedex"),
]


async def test_one_cycle_stores_the_visible_timeline_once(rig: Rig) -> None:
    ids = {n: await rig.register(n, c) for n, c in NUMBERS}
    report = await rig.poller().run_once()
    assert report.claimed == len(NUMBERS)
    now = rig.clock()
    for number, carrier in NUMBERS:
        journey = journey_for(number, carrier, rig.state)
        assert journey is not None
        visible = served_steps(journey, carrier, now)
        shipment = await rig.shipment(ids[number])
        events = await rig.events(ids[number])
        assert len(events) == len(visible) > 0, number
        assert sorted(e.occurred_at for e in events) == [s.at for s in visible]
        assert shipment.status == _expected_status(visible), number
        assert shipment.carrier == carrier
        assert shipment.first_event_at == visible[0].at
        assert shipment.last_event_at == visible[-1].at
        schedule = await rig.schedule(ids[number])
        assert (schedule.lease_owner, schedule.lease_until) == (None, None)
        assert schedule.poll_count == 1
        assert schedule.last_polled_at == now
        assert schedule.next_poll_at is not None
        assert schedule.next_poll_at > now
        expected = ["shipment.updated"]
        if shipment.status != "pending":
            expected.append("shipment.status_changed")
        if shipment.status == "delivered":
            expected.append("shipment.delivered")
            assert shipment.delivered_at == visible[-1].at
        if shipment.eta_latest is not None:
            expected.append("shipment.eta_changed")
        assert sorted(await rig.messages(ids[number])) == sorted(expected), number

    # polling again at the same simulated instant finds nothing new: no event, no message
    before = {n: await rig.messages(i) for n, i in ids.items()}
    rig.clock.advance(hours=7)
    rig.state.clock = lambda: now  # the carriers still tell the same story
    report = await rig.poller().run_once()
    assert report.claimed >= 5
    assert report.new_events == 0
    for number, shipment_id in ids.items():
        assert await rig.messages(shipment_id) == before[number]
        journey = journey_for(number, dict(NUMBERS)[number], rig.state)
        assert journey is not None
        assert len(await rig.events(shipment_id)) == len(served_steps(journey, dict(NUMBERS)[number], now))


async def test_a_repeated_answer_skips_the_stored_timeline_and_ends_as_a_full_merge(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = {n: await rig.register(n, c) for n, c in NUMBERS}
    await rig.poller().run_once()
    digests = {n: (await rig.shipment(i)).poll_digest for n, i in ids.items()}
    assert all(digests.values()), digests

    # the same answers again: each shipment is applied twice from the same state, once as
    # the poller does (no stored timeline) and once through the full merge, on a twin
    read: list[str] = []
    real_timelines, real_apply_one = tracking_store.timelines, Poller._apply_one

    async def timelines(conn: Any, shipment_ids: Any) -> Any:
        read.extend(shipment_ids)
        return await real_timelines(conn, shipment_ids)

    compared = []

    async def apply_one(
        self: Poller, session: Any, s: Any, result: Any, code: Any, stored: Any, *rest: Any, **kw: Any
    ) -> None:
        if stored is None and result is not None:
            cycle, out = rest
            twin, twin_out = replace(s), replace(out, events=[], messages=[], deliveries=[], milestones=[])
            full = (await real_timelines(await session.connection(), [s.id]))[s.id]
            assert full
            await real_apply_one(self, session, twin, result, code, full, cycle, twin_out, **kw)
            queued = len(out.messages)
            await real_apply_one(self, session, s, result, code, None, cycle, out, **kw)
            assert replace(twin, loaded=()) == replace(s, loaded=())
            assert twin_out.events == []
            types = [m["event_type"] for m in out.messages[queued:]]
            assert [m["event_type"] for m in twin_out.messages] == types
            compared.append(s.tracking_number)
            return
        await real_apply_one(self, session, s, result, code, stored, *rest, **kw)

    monkeypatch.setattr(tracking_store, "timelines", timelines)
    monkeypatch.setattr(Poller, "_apply_one", apply_one)
    now = rig.clock()
    rig.clock.advance(hours=7)
    rig.state.clock = lambda: now  # the carriers still tell the same story
    report = await rig.poller().run_once()
    assert report.claimed >= 5 and report.new_events == 0
    polled = [n for n, i in ids.items() if (await rig.schedule(i)).poll_count == 2]
    assert sorted(compared) == sorted(polled)
    assert read == []
    for number in polled:
        shipment = await rig.shipment(ids[number])
        assert shipment.poll_digest == digests[number]
        assert (await rig.schedule(ids[number])).last_polled_at == rig.clock()


async def test_new_scans_append_and_status_follows(rig: Rig) -> None:
    number = "FX100000000007"
    journey = journey_for(number, "fedex", rig.state)
    assert journey is not None
    # put the clock between two steps so the next poll has news
    rig.clock.now = journey.steps[2].at + timedelta(minutes=1)
    sid = await rig.register(number, "fedex")
    await rig.poller().run_once()
    assert len(await rig.events(sid)) == 3
    rig.clock.now = journey.steps[5].at + timedelta(minutes=1)
    await rig.due_now(sid)
    report = await rig.poller().run_once()
    assert report.new_events == 3
    shipment = await rig.shipment(sid)
    assert shipment.status == journey.steps[5].status.value
    assert shipment.sub_status == journey.steps[5].sub_status.value
    assert (await rig.messages(sid)).count("shipment.updated") == 2


async def test_delivered_gets_one_confirming_poll_then_stops(rig: Rig) -> None:
    rig.clock.now = EPOCH + timedelta(days=40)
    sid = await rig.register("SBXDELIVERED000009", "fedex")
    poller = rig.poller()
    await poller.run_once()
    shipment = await rig.shipment(sid)
    assert shipment.status == "delivered"
    assert (await rig.schedule(sid)).next_poll_at == rig.clock() + timedelta(hours=6)
    assert not shipment.confirmed_terminal
    async with rig.sm() as session:
        milestones = list(await session.exec(select(Notification.milestone).where(Notification.shipment_id == sid)))
    assert sorted(milestones) == ["delivered", "shipped"]
    rig.clock.advance(hours=6)
    await poller.run_once()
    shipment = await rig.shipment(sid)
    schedule = await rig.schedule(sid)
    assert schedule.next_poll_at is None
    assert not shipment.active
    assert shipment.confirmed_terminal
    assert shipment.stop_reason == "delivered"
    assert schedule.poll_count == 2
    assert (await rig.messages(sid)).count("shipment.delivered") == 1
    rig.clock.advance(days=5)
    assert (await poller.run_once()).claimed == 0


async def test_silent_shipment_expires_after_30_days(rig: Rig) -> None:
    sid = await rig.register("NOTFOUND12345", "fedex")
    poller = rig.poller()
    await poller.run_once()
    shipment = await rig.shipment(sid)
    assert shipment.status == "pending"
    assert (await rig.schedule(sid)).next_poll_at == rig.clock() + timedelta(hours=1)
    rig.clock.advance(days=30)
    await poller.run_once()
    shipment = await rig.shipment(sid)
    assert (shipment.status, shipment.stop_reason, shipment.active) == ("expired", "expired", False)
    assert (await rig.schedule(sid)).next_poll_at is None
    assert await rig.messages(sid) == ["shipment.status_changed"]


async def test_stopped_by_seller_is_never_claimed(rig: Rig) -> None:
    sid = await rig.register("FX100000000003", "fedex")
    async with rig.sm() as session:
        row = (await session.exec(select(Shipment).where(Shipment.id == sid))).one()
        row.stopped_at, row.stop_reason = rig.clock(), "stopped_by_seller"
        await tracking_store.set_next_poll(session, row, None)
        await session.commit()
    assert (await rig.poller().run_once()).claimed == 0
    assert rig.state.lookups[("fedex", "FX100000000003")] == 0


async def test_rate_limited_pauses_and_reschedules(rig: Rig) -> None:
    sid = await rig.register("FX100000000004", "fedex")
    poller = rig.poller()
    await poller.carriers["fedex"].adapter.track(["FX100000000005"])  # fetch a token while 429s are off
    rig.state.faults = Faults(rate_429=1.0, retry_after="120")
    report = await poller.run_once()
    assert report.rescheduled == 1
    assert report.new_events == 0
    schedule = await rig.schedule(sid)
    assert schedule.next_poll_at == rig.clock() + timedelta(seconds=120)
    assert schedule.lease_owner is None
    assert schedule.poll_errors == 0
    assert poller.carriers["fedex"].bucket.try_acquire() == pytest.approx(120.0)


async def test_token_bucket_waits_through_the_injected_sleep(rig: Rig) -> None:
    numbers = [f"FX1000000001{i:02d}" for i in range(3)]
    for n in numbers:
        await rig.register(n, "fedex")
    rig.settings = make_settings(
        DatabaseSettings.model_validate(rig.settings.database.model_dump()),
        carriers={"fedex": {"rate_per_second": 0.5, "burst": 1}},
    )
    poller = rig.poller(concurrency_per_carrier=1)
    # one number per call, so three calls meet the limit
    setattr(poller.carriers["fedex"].adapter, "batch_limit", 1)  # noqa: B010
    report = await poller.run_once()
    assert report.requests == 3
    assert report.new_events > 0
    # 0.5 tokens a second, burst 1: the 2nd and 3rd call each wait 2 s, never really slept
    assert rig.mono.sleeps == [pytest.approx(2.0), pytest.approx(2.0)]


async def test_breaker_opens_after_failures(rig: Rig) -> None:
    for i in range(4):
        await rig.register(f"FX1000000002{i:02d}", "fedex")
    poller = rig.poller(breaker_failures=2, concurrency_per_carrier=1)
    setattr(poller.carriers["fedex"].adapter, "batch_limit", 1)  # noqa: B010
    await poller.carriers["fedex"].adapter.track(["FX100000000299"])
    rig.state.faults = Faults(rate_5xx=1.0)
    before = rig.state.requests["fedex"]
    report = await poller.run_once()
    assert report.failed_batches == 2
    assert rig.state.requests["fedex"] - before == 2  # the breaker kept the other two at home
    async with rig.sm() as session:
        rows = list(
            await session.exec(
                select(PollSchedule)
                .join(Shipment, col(Shipment.id) == PollSchedule.shipment_id)
                .where(Shipment.carrier == "fedex")
            )
        )
    assert len(rows) == 4
    assert sorted(r.poll_errors for r in rows) == [0, 0, 1, 1]
    assert all(r.lease_owner is None and r.next_poll_at is not None and r.next_poll_at > rig.clock() for r in rows)


async def test_an_adapter_bug_fails_its_batch_not_the_cycle(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    poison = await rig.register("FX100000000301", "fedex")
    others = [await rig.register("FX100000000302", "fedex"), await rig.register("LP300000000301CN", "17track")]
    poller = rig.poller()
    setattr(poller.carriers["fedex"].adapter, "batch_limit", 1)  # noqa: B010
    adapter = poller.carriers["fedex"].adapter
    real_track = adapter.track

    async def track_with_a_bug(numbers: list[str]) -> list[TrackResult]:
        if "FX100000000301" in numbers:
            raise KeyError("scanEvents")
        return await real_track(numbers)

    setattr(adapter, "track", track_with_a_bug)  # noqa: B010
    with caplog.at_level("ERROR", logger="tracker.polling"):
        report = await poller.run_once()
    assert report.claimed == 3
    assert report.failed_batches == 1
    assert report.applied == 2
    failed = await rig.schedule(poison)
    assert failed.poll_errors == 1 and failed.poll_count == 0
    assert failed.lease_owner is None and failed.next_poll_at is not None and failed.next_poll_at > rig.clock()
    for shipment_id in others:
        polled = await rig.schedule(shipment_id)
        assert polled.poll_count == 1 and polled.poll_errors == 0
        assert await rig.events(shipment_id)
    [record] = [r for r in caplog.records if r.getMessage() == "carrier call failed"]
    assert record.levelname == "ERROR" and record.exc_info is not None and record.exc_info[0] is KeyError


async def test_an_abandoned_cycle_sends_no_more_batches(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [await rig.register(f"FX1000000004{i:02d}", "fedex") for i in range(3)]
    poller = rig.poller(concurrency_per_carrier=1)
    setattr(poller.carriers["fedex"].adapter, "batch_limit", 1)  # noqa: B010
    rig.state.faults = Faults(rate_5xx=1.0)

    async def reschedule_failing(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(tracking_store, "reschedule", reschedule_failing)
    before = rig.state.requests["fedex"]
    with pytest.raises(RuntimeError, match="database gone"):
        await poller.run_once()
    # the other two batches were waiting for the carrier's one slot: they run on after the
    # cycle is abandoned, and must neither call the carrier nor write
    left = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__.startswith("Poller._poll_carrier")]
    await asyncio.wait_for(asyncio.gather(*left, return_exceptions=True), 10)
    assert rig.state.requests["fedex"] - before == 1
    for shipment_id in ids:
        schedule = await rig.schedule(shipment_id)
        assert schedule.lease_owner == poller.owner and schedule.poll_count == 0 and schedule.poll_errors == 0


@pytest.fixture
async def split_rig(database: DatabaseSettings, aiohttp_server: Any, sim_clock: FakeClock) -> AsyncIterator[Rig]:
    """FedEx knows nothing; Yanwen knows every number."""
    state = SimState(clock=sim_clock)

    def lookup(number: str, carrier: str, st: SimState) -> Journey | None:
        return None if carrier == "fedex" else journey_for(number, carrier, st)

    app = make_sim_app(state, ["fedex", "yanwen"], journeys=lookup)
    async for r in _rig(database, aiohttp_server, app, state, sim_clock):
        yield r


async def test_not_found_moves_to_the_next_candidate(split_rig: Rig) -> None:
    rig = split_rig
    sid = await rig.register("YW200000000077CN", None)
    async with rig.sm() as session:
        row = (await session.exec(select(Shipment).where(Shipment.id == sid))).one()
        row.carrier_candidates = ["fedex", "yanwen"]
        session.add(row)
        await session.commit()
    await rig.poller().run_once()
    shipment = await rig.shipment(sid)
    assert shipment.carrier == "yanwen"
    assert rig.state.lookups[("fedex", "YW200000000077CN")] == 1
    assert rig.state.lookups[("yanwen", "YW200000000077CN")] == 1
    assert len(await rig.events(sid)) > 0


def _result(first: datetime, ref: str) -> TrackResult:
    event = CarrierEvent(
        occurred_at=first,
        time_basis=TimeBasis.UTC_GIVEN,
        local_time="",
        status=Status.IN_TRANSIT,
        sub_status=SubStatus.PICKED_UP,
        raw_code="PU",
        description="Picked up",
    )
    return TrackResult(tracking_number="N", found=True, events=[event], shipment_ref=ref)


def test_pick_result_prefers_the_newest_shipment_after_registration() -> None:
    reg = datetime(2026, 3, 1, tzinfo=UTC)
    old, new, newer = (
        _result(reg - timedelta(days=400), "old"),
        _result(reg + timedelta(hours=2), "new"),
        _result(reg + timedelta(days=1), "newer"),
    )
    assert pick_result([old, new, newer], reg) is newer
    assert pick_result([new, old], reg) is new
    assert pick_result([old, _result(reg - timedelta(days=2), "recent")], reg).shipment_ref == "recent"  # type: ignore[union-attr]
    assert pick_result([TrackResult(tracking_number="N", found=False)], reg) is None


async def test_reused_number_keeps_the_shipment_of_the_registration(rig: Rig) -> None:
    number = "FXREUSED000001"
    sid = await rig.register(number, "fedex")
    await rig.poller().run_once()
    current = journey_for(number, "fedex", rig.state)
    older = journey_for(number + "-2019", "fedex", rig.state)
    assert current is not None
    assert older is not None
    stories = {"current": current.visible(rig.clock()), "older": older.visible(rig.clock())}
    newest = max(stories, key=lambda k: stories[k][0].at)
    events = await rig.events(sid)
    assert sorted(e.occurred_at for e in events) == [s.at for s in stories[newest]]


def test_status_of_expected_timeline_is_derived() -> None:
    # guards the oracle used above: a journey's last visible step is what derive_status says
    journey = journey_for("FX100000000001", "fedex", SimState())
    assert journey is not None
    step: Step = journey.steps[-1]
    event = CarrierEvent(
        occurred_at=step.at,
        time_basis=TimeBasis.UTC_GIVEN,
        local_time="",
        status=step.status,
        sub_status=step.sub_status,
        raw_code="x",
        description=step.description,
    )
    assert derive_status([event], None, None)[0] == step.status


@dataclass
class EtaScript:
    """Journeys as the simulator tells them, with the ETA replaced (None: no ETA given)."""

    eta: datetime | None = None

    def lookup(self, number: str, carrier: str, st: SimState) -> Journey | None:
        journey = journey_for(number, carrier, st)
        return None if journey is None else replace(journey, eta=self.eta)


@pytest.fixture
def eta_script() -> EtaScript:
    return EtaScript()


@pytest.fixture
async def eta_rig(
    database: DatabaseSettings, aiohttp_server: Any, sim_clock: FakeClock, eta_script: EtaScript
) -> AsyncIterator[Rig]:
    state = SimState(clock=sim_clock)
    app = make_sim_app(state, ["fedex"], journeys=eta_script.lookup)
    async for r in _rig(database, aiohttp_server, app, state, sim_clock, polling={"eta_min_samples": 20}):
        yield r


def _cross_border_in_transit(state: SimState, now: datetime) -> str:
    for i in range(200):
        number = f"FX5000000{i:05d}"
        journey = journey_for(number, "fedex", state)
        if (
            journey is not None
            and journey.origin == "CN"
            and journey.destination == "US"
            and journey.visible(now)
            and journey.steps[-1].at > now
        ):
            return number
    raise AssertionError("no suitable journey")


async def _seed_lane(rig: Rig, transit_days: list[float]) -> None:
    async with rig.sm() as session:
        ids = await tracking_store.insert_bulk_shipments(
            session,
            rig.seller_id,
            [(f"HIST{len(transit_days)}-{i}", "fedex", ["fedex"], "US") for i in range(len(transit_days))],
            now=rig.clock(),
        )
        for sid, days in zip(ids, transit_days, strict=True):
            row = (await session.exec(select(Shipment).where(Shipment.id == sid))).one()
            row.origin_country, row.status = "CN", "delivered"
            await tracking_store.set_next_poll(session, row, None)
            row.first_event_at = EPOCH - timedelta(days=30)
            row.delivered_at = row.first_event_at + timedelta(days=days)
            session.add(row)
        await session.commit()


async def test_lane_eta_from_delivered_shipments(eta_rig: Rig) -> None:
    rig = eta_rig
    number = _cross_border_in_transit(rig.state, rig.clock())
    # 19 samples are below the minimum: no ETA yet
    await _seed_lane(rig, [5.0 + 0.5 * i for i in range(19)])
    sid = await rig.register(number, "fedex")
    await rig.poller().run_once()
    shipment = await rig.shipment(sid)
    assert shipment.origin_country == "CN"
    assert shipment.eta_latest is None
    assert "shipment.eta_changed" not in await rig.messages(sid)

    # one more: 20 samples 5.0, 5.5, ... 14.5 days. By hand (inclusive quantiles):
    # median between the 10th and 11th values (9.5, 10.0) = 9.75;
    # p90 at position 19 * 0.9 = 17.1: 13.5 + 0.1 * (14.0 - 13.5) = 13.55
    await _seed_lane(rig, [14.5])
    await rig.due_now(sid)
    await rig.poller().run_once()
    shipment = await rig.shipment(sid)
    assert shipment.first_event_at is not None
    assert shipment.eta_source == "lane"
    assert shipment.eta_latest == shipment.first_event_at + timedelta(days=9.75)
    assert shipment.eta_latest_end == shipment.first_event_at + timedelta(days=13.55)
    assert shipment.eta_first == shipment.eta_latest
    assert (await rig.messages(sid)).count("shipment.eta_changed") == 1


async def test_carrier_eta_wins_and_first_eta_is_kept(eta_rig: Rig, eta_script: EtaScript) -> None:
    rig = eta_rig
    await _seed_lane(rig, [5.0 + 0.5 * i for i in range(20)])
    number = _cross_border_in_transit(rig.state, rig.clock())
    promised = datetime(2026, 1, 20, 18, 0, tzinfo=UTC)
    eta_script.eta = promised
    sid = await rig.register(number, "fedex")
    poller = rig.poller()

    async def poll_again(hours: float) -> Shipment:
        rig.clock.advance(hours=hours)
        await rig.due_now(sid)
        await poller.run_once()
        return await rig.shipment(sid)

    await poller.run_once()
    shipment = await rig.shipment(sid)
    assert (shipment.eta_source, shipment.eta_latest, shipment.eta_first) == ("carrier", promised, promised)
    assert (await rig.messages(sid)).count("shipment.eta_changed") == 1
    eta_script.eta = promised + timedelta(hours=12)  # under a day: stored, not announced
    shipment = await poll_again(0.1)
    assert shipment.eta_latest == promised + timedelta(hours=12)
    assert shipment.eta_first == promised
    assert (await rig.messages(sid)).count("shipment.eta_changed") == 1
    eta_script.eta = promised + timedelta(days=2)
    shipment = await poll_again(0.1)
    assert shipment.eta_latest == promised + timedelta(days=2)
    assert shipment.eta_first == promised
    assert (await rig.messages(sid)).count("shipment.eta_changed") == 2


def test_poll_job_is_registered_with_the_configured_tick(database: DatabaseSettings) -> None:
    from tracker.app import create_app
    from tracker.scheduler import JOBS

    app = create_app(make_settings(database, polling={"tick_seconds": 7.5}))
    jobs = {job.name: job.seconds for job in app[JOBS]}
    assert jobs["poll"] == 7.5


async def test_shutdown_releases_this_process_leases(
    database: DatabaseSettings, aiohttp_client: Any, sim_clock: FakeClock
) -> None:
    from tracker import keys
    from tracker.app import create_app
    from tracker.polling import POLLER

    app = create_app(make_settings(database), clock=sim_clock)
    client = await aiohttp_client(app)
    owner = app[POLLER].owner
    async with app[keys.SESSIONMAKER]() as session:
        seller = await seller_store.create_seller(session, "Lease Test", now=sim_clock())
        ids = await tracking_store.insert_bulk_shipments(
            session, seller.id, [(f"FX9{i:011d}", "fedex", ["fedex"], "US") for i in range(3)], now=sim_clock()
        )
        await session.commit()
    async with app[keys.SESSIONMAKER]() as session:
        claimed = await tracking_store.claim_due(
            session, now=sim_clock(), owner=owner, lease_until=sim_clock() + timedelta(minutes=2), limit=2
        )
        await session.commit()
        other = await tracking_store.claim_due(
            session, now=sim_clock(), owner="elsewhere:1:x", lease_until=sim_clock() + timedelta(minutes=2), limit=5
        )
        await session.commit()
    assert len(claimed) == 2
    assert len(other) == 1
    await client.close()
    engine = engine_for(database)
    async with create_sessionmaker(engine)() as session:
        rows = {
            r.shipment_id: r.lease_owner
            for r in await session.exec(select(PollSchedule).where(col(PollSchedule.shipment_id).in_(ids)))
        }
    await engine.dispose()
    assert sorted(rows.values(), key=str) == sorted([None, None, "elsewhere:1:x"], key=str)


BACKLOG = [(f"FX70{i:03d}4242", "fedex") for i in range(9)] + [(f"LP70{i:03d}4242CN", "17track") for i in range(8)]


async def test_backlog_is_drained_in_overlapping_cycles_each_shipment_once(rig: Rig) -> None:
    ids = {n: await rig.register(n, c) for n, c in BACKLOG}
    poller = rig.poller(claim_limit=5)
    report = await poller.run_backlog()
    # 17 due with 5 a cycle: three full claims, then a short one that ends the backlog
    assert report.claimed == report.applied == len(BACKLOG)
    assert report.new_events > 0
    assert all(rig.state.lookups[(c, n)] == 1 for n, c in BACKLOG)
    stored = 0
    for number, carrier in BACKLOG:
        schedule = await rig.schedule(ids[number])
        assert (schedule.poll_count, schedule.lease_owner, schedule.lease_until) == (1, None, None), number
        journey = journey_for(number, carrier, rig.state)
        assert journey is not None
        events = len(await rig.events(ids[number]))
        assert events == len(served_steps(journey, carrier, rig.clock())), number
        stored += events
    assert stored == report.new_events
    assert (await poller.run_backlog()).claimed == 0


async def test_a_failed_write_stops_the_backlog_and_leaves_the_rest_leased(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [await rig.register(n, c) for n, c in BACKLOG]
    poller = rig.poller(claim_limit=5)
    real_claim, real_insert = tracking_store.claim_due, tracking_store.insert_events
    first_claim: set[str] = set()

    async def claim_noting_the_first(*args: Any, **kwargs: Any) -> list[tracking_store.Due]:
        claimed = await real_claim(*args, **kwargs)
        if not first_claim:
            first_claim.update(d.id for d in claimed)
        return claimed

    async def insert_events_failing_later(conn: Any, rows: list[tuple[Any, ...]]) -> None:
        # decided by the rows, not by the order of the calls: on PostgreSQL the next cycle's
        # writes may reach the database before the first cycle's
        if any(row[0] not in first_claim for row in rows):
            raise RuntimeError("disk full")
        await real_insert(conn, rows)

    monkeypatch.setattr(tracking_store, "claim_due", claim_noting_the_first)
    monkeypatch.setattr(tracking_store, "insert_events", insert_events_failing_later)
    with pytest.raises(RuntimeError, match="disk full"):
        await poller.run_backlog()
    shipments = [await rig.schedule(i) for i in ids]
    written = [s for s in shipments if s.poll_count == 1]
    # the first cycle's writes committed whole, although a later cycle's write failed
    # meanwhile; the failed cycle's leases simply expire, and what no cycle claimed yet is
    # still due
    assert len(first_claim) == 5
    assert first_claim <= {s.shipment_id for s in written}
    assert all(s.lease_owner is None for s in written)
    unwritten = [s for s in shipments if s.poll_count == 0]
    assert len(written) + len(unwritten) == len(ids)
    leased = [s for s in unwritten if s.lease_owner == poller.owner]
    assert leased
    assert all(s.next_poll_at is not None and s.next_poll_at <= rig.clock() for s in unwritten)
    assert all(s.lease_owner is None for s in unwritten if s not in leased)
    for shipment in unwritten:
        assert await rig.events(shipment.shipment_id) == []
    assert not [t for t in asyncio.all_tasks() if "_flush" in repr(t.get_coro()) or "_drain" in repr(t.get_coro())]


async def test_a_write_that_fails_while_the_cycle_still_polls_fails_the_cycle(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    fedex = [await rig.register(f"FX71{i:03d}4242", "fedex") for i in range(3)]
    track17 = [await rig.register(f"LP71{i:03d}4242CN", "17track") for i in range(3)]
    poller = rig.poller()
    real_insert = tracking_store.insert_events
    first_write_failed = asyncio.Event()

    async def insert_events_failing_once(conn: Any, rows: list[tuple[Any, ...]]) -> None:
        if not first_write_failed.is_set():
            first_write_failed.set()
            raise RuntimeError("disk full")
        await real_insert(conn, rows)

    adapter = poller.carriers["17track"].adapter
    real_track = adapter.track

    async def track_after_the_failure(numbers: list[str]) -> list[TrackResult]:
        # 17TRACK answers only once FedEx's write has failed and its writer has finished
        # (rolled back and gone): the old code then gave its results a writer of their own,
        # which succeeded, and the cycle reported success
        await asyncio.wait_for(first_write_failed.wait(), 10)
        writers = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Poller._drain"]
        if writers:
            await asyncio.wait(writers, timeout=10)
        return await real_track(numbers)

    monkeypatch.setattr(tracking_store, "insert_events", insert_events_failing_once)
    monkeypatch.setattr(adapter, "track", track_after_the_failure)
    unretrieved: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            await poller.run_once()
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert unretrieved == []
    # nothing of the failed cycle is written: every shipment stays leased until the lease
    # expires, and is then polled again
    for shipment_id in fedex + track17:
        schedule = await rig.schedule(shipment_id)
        assert schedule.poll_count == 0
        assert schedule.lease_owner == poller.owner
        assert await rig.events(shipment_id) == []
    assert rig.state.lookups[("17track", "LP710004242CN")] == 1


async def test_a_routine_poll_writes_back_only_what_changed(rig: Rig) -> None:
    """Nothing new from the carrier: the poll writes its schedule row and leaves the
    shipment row, with its dozen status, ETA and lane indexes, alone."""
    sid = await rig.register("FX100000000001", "fedex")
    poller = rig.poller()
    await poller.run_once()
    first = await rig.shipment(sid)
    engine = rig.sm.kw["bind"]
    updates: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("UPDATE "):
            updates.append(statement)

    now = rig.clock()
    rig.clock.advance(hours=7)
    rig.state.clock = lambda: now  # nothing new to tell
    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        report = await poller.run_once()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    assert (report.claimed, report.new_events) == (1, 0)
    assert not [u for u in updates if u.startswith("UPDATE shipments")]
    # the claim's lease, then the result
    claim, written = updates
    assert claim.startswith("UPDATE poll_schedule SET lease_owner=")
    assert written.startswith("UPDATE poll_schedule SET")
    columns = set(re.findall(r"(\w+)=", written.split(" WHERE ")[0]))
    assert columns == set(tracking_store.WRITTEN_SCHEDULE)
    second = await rig.schedule(sid)
    assert second.poll_count == 2
    assert second.last_polled_at == rig.clock()
    assert second.next_poll_at is not None and second.next_poll_at > rig.clock()
    shipment = await rig.shipment(sid)
    unchanged = ("status", "sub_status", "updated_at", "eta_latest", "eta_first", "sequence", "last_event_at")
    assert [getattr(shipment, c) for c in unchanged] == [getattr(first, c) for c in unchanged]
