"""`tracker.store.bulk` stores values exactly as SQLAlchemy's own statements would."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from carriers.base import CarrierEvent, Location, TimeBasis
from carriers.status import Status, SubStatus
from tracker.db import create_sessionmaker, engine_for
from tracker.models import Order, Shipment, TrackingEvent
from tracker.models.types import UTCDateTime, utc_from_stored
from tracker.settings import DatabaseSettings
from tracker.store import bulk, sellers, tracking
from tracker.store.tracking import EVENTS, SHIPMENTS

INSTANTS = [
    datetime(2026, 1, 5, 8, 30, tzinfo=UTC),  # no microseconds: still written with six digits
    datetime(2026, 1, 5, 8, 30, 1, 250, tzinfo=UTC),
    datetime(2026, 7, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=8))),
    datetime(2026, 3, 29, 1, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(1, 1, 2, tzinfo=UTC),
]


@pytest.mark.parametrize("instant", INSTANTS)
@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.asyncpg.dialect()], ids=["sqlite", "asyncpg"])
def test_datetime_converter_matches_sqlalchemy(instant: datetime, dialect: Any) -> None:
    ours = bulk.converter(EVENTS, "occurred_at", dialect)
    theirs = UTCDateTime()._cached_bind_processor(dialect)
    assert ours is not None and theirs is not None
    assert ours(instant) == theirs(instant)
    assert ours(None) is None


def test_a_repeated_instant_is_written_like_any_other() -> None:
    """SQLite's converter keeps the last text: a column of one repeated object, then equal
    instants in other zones, then None, each written as SQLAlchemy writes it."""
    dialect = sqlite.dialect()
    ours = bulk.converter(EVENTS, "occurred_at", dialect)
    theirs = UTCDateTime()._cached_bind_processor(dialect)
    assert ours is not None and theirs is not None
    now = INSTANTS[1]
    same_instant = now.astimezone(timezone(timedelta(hours=8)))
    column = [now, now, same_instant, None, INSTANTS[0], now, None]
    assert list(map(ours, column)) == [theirs(v) for v in column]
    with pytest.raises(ValueError, match="naive"):
        ours(now.replace(tzinfo=None))


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.asyncpg.dialect()], ids=["sqlite", "asyncpg"])
def test_naive_datetimes_are_refused(dialect: Any) -> None:
    convert = bulk.converter(EVENTS, "occurred_at", dialect)
    assert convert is not None
    with pytest.raises(ValueError, match="naive"):
        convert(datetime(2026, 1, 5, 8, 30))


def _event(shipment_id: str, fingerprint: str, at: datetime) -> dict[str, Any]:
    return {
        "shipment_id": shipment_id,
        "fingerprint": fingerprint,
        "occurred_at": at,
        "time_basis": "utc",
        "local_time": "",
        "utc_offset_minutes": None,
        "status": "in_transit",
        "sub_status": "other",
        "raw_code": "AR",
        "description": "Arrivé au centre « Paris »",
        "city": "Paris",
        "region": None,
        "country": "FR",
        "postcode": None,
        "provider": "dhl",
        "recorded_at": at + timedelta(minutes=5),
    }


def _shipment(shipment_id: str, seller_id: str, now: datetime) -> dict[str, Any]:
    return {
        "id": shipment_id,
        "seller_id": seller_id,
        "order_id": "ord_" + shipment_id,
        "order_number": "SO-" + shipment_id,
        "tracking_number": "1Z" + shipment_id,
        "carrier": None,
        "carrier_candidates": ["ups", "dhl"],
        "status": "pending",
        "sub_status": "other",
        "public_token": "tok_" + shipment_id,
        "customer_locale": "en",
        "dest_country": "DE",
        "created_at": now,
        "updated_at": now,
        "active": True,
        "eta_latest": now,
        "confirmed_terminal": False,
        "sequence": 0,
        "notify_opt_out": False,
    }


async def _seller_with_orders(sessions: Any, name: str, order_ids: list[str], now: datetime) -> str:
    """A seller and its orders (shipments need both); returns the seller's id."""
    async with sessions() as session:
        seller_id = (await sellers.create_seller(session, name, now=now)).id
        for order_id in order_ids:
            session.add(
                Order(id=order_id, seller_id=seller_id, order_number=order_id, customer_key="k", created_at=now)
            )
        await session.commit()
    return str(seller_id)


async def test_bulk_rows_read_back_like_sqlalchemy_rows(database: DatabaseSettings) -> None:
    engine = engine_for(database)
    sessions = create_sessionmaker(engine)
    now = INSTANTS[2]
    try:
        seller_id = await _seller_with_orders(sessions, "Bulk", ["ord_a", "ord_b", "ord_c"], now)
        async with engine.begin() as conn:
            # the same rows once through SQLAlchemy and once through bulk
            await conn.execute(insert(SHIPMENTS), [_shipment("a", seller_id, now)])
            # several rows: on PostgreSQL one statement over arrays, not a statement per row
            await bulk.insert_rows(conn, SHIPMENTS, [_shipment("b", seller_id, now), _shipment("c", seller_id, now)])
            await conn.execute(insert(EVENTS), [_event("a", f"fp{i}", at) for i, at in enumerate(INSTANTS)])
            await bulk.insert_rows(
                conn,
                EVENTS,
                [_event("b", f"fp{i}", at) for i, at in enumerate(INSTANTS)],
                skip_conflicts_on=("shipment_id", "fingerprint"),
            )
            # a fingerprint already stored, or twice in one batch, is skipped (the first copy
            # is kept); the rest of the batch is written
            await bulk.insert_rows(
                conn,
                EVENTS,
                [
                    _event("b", "fp0", INSTANTS[1]),
                    _event("b", "fp-new", INSTANTS[0]),
                    _event("b", "fp-new", INSTANTS[3]),
                ],
                skip_conflicts_on=("shipment_id", "fingerprint"),
            )
            changes = {
                "status": "delivered",
                "delivered_at": INSTANTS[3],
                "eta_latest": None,
                "active": False,
                "sequence": 3,
                "signed_by": "J. DOE",
            }
            await conn.execute(update(SHIPMENTS).where(SHIPMENTS.c.id == "a").values(changes))
            await bulk.update_rows(
                conn, SHIPMENTS, [{"id": "b", **changes}, {"id": "c", **changes, "sequence": 4}], key="id"
            )
            if engine.dialect.name == "sqlite":
                # the stored text itself, not only what the type decodes it to
                raw = (await conn.execute(text("SELECT shipment_id, occurred_at FROM tracking_events"))).all()
                stored = {(sid, at) for sid, at in raw if sid == "a"}
                assert {("a", at) for sid, at in raw if sid == "b"} >= stored
                row_a, row_b, row_c = (
                    await conn.execute(
                        text("SELECT delivered_at, active, carrier_candidates FROM shipments ORDER BY id")
                    )
                ).all()
                assert row_a == row_b == row_c
        async with sessions() as session:
            events = await session.exec(select(TrackingEvent).order_by(col(TrackingEvent.fingerprint)))
            by_shipment: dict[str, list[tuple[Any, ...]]] = {"a": [], "b": []}
            for e in events:
                by_shipment[e.shipment_id].append(
                    (e.fingerprint, e.occurred_at, e.recorded_at, e.description, e.city, e.utc_offset_minutes)
                )
            assert by_shipment["a"] == [row for row in by_shipment["b"] if row[0] != "fp-new"]
            assert len(by_shipment["b"]) == len(INSTANTS) + 1
            assert by_shipment["b"][0][1] == INSTANTS[0]  # fp0 kept its first copy
            assert [row[1] for row in by_shipment["b"] if row[0] == "fp-new"] == [INSTANTS[0]]
            ships = {s.id: s for s in await session.exec(select(Shipment))}
            a, b, c = ships["a"], ships["b"], ships["c"]
            for name in ("status", "delivered_at", "eta_latest", "active", "sequence", "signed_by", "created_at"):
                assert getattr(a, name) == getattr(b, name), name
            for name in ("status", "delivered_at", "eta_latest", "active", "signed_by", "carrier_candidates"):
                assert getattr(a, name) == getattr(c, name), name
            assert (a.sequence, c.sequence) == (3, 4)
            assert a.eta_latest is None
            assert b.carrier_candidates == ["ups", "dhl"]
            assert b.delivered_at == INSTANTS[3]
    finally:
        await engine.dispose()


async def test_value_rows_store_what_dict_rows_store(database: DatabaseSettings) -> None:
    """`insert_tuples` (the poll's event path) writes what `insert_rows` writes, skipping
    stored fingerprints the same way, and refuses values in another order."""
    engine = engine_for(database)
    sessions = create_sessionmaker(engine)
    now = INSTANTS[2]
    try:
        seller_id = await _seller_with_orders(sessions, "Tuples", ["ord_a", "ord_b"], now)
        async with engine.begin() as conn:
            await bulk.insert_rows(conn, SHIPMENTS, [_shipment("a", seller_id, now), _shipment("b", seller_id, now)])
            names = tracking.EVENT_COLUMNS
            dicts = [_event("a", f"fp{i}", at) for i, at in enumerate(INSTANTS)]
            await bulk.insert_rows(conn, EVENTS, dicts, skip_conflicts_on=("shipment_id", "fingerprint"))
            rows = [tuple(_event("b", f"fp{i}", at)[n] for n in names) for i, at in enumerate(INSTANTS)]
            await tracking.insert_events(conn, rows)
            # a stored fingerprint is skipped, one row alone goes through too
            await tracking.insert_events(conn, [rows[0]])
            await tracking.insert_events(conn, [])
            with pytest.raises(ValueError, match="table order"):
                await bulk.insert_tuples(conn, EVENTS, tuple(reversed(names)), rows)
        async with sessions() as session:
            stored: dict[str, list[tuple[Any, ...]]] = {"a": [], "b": []}
            for e in await session.exec(select(TrackingEvent).order_by(col(TrackingEvent.id))):
                stored[e.shipment_id].append(tuple(getattr(e, n) for n in names if n != "shipment_id"))
        assert len(stored["a"]) == len(INSTANTS)
        assert stored["a"] == stored["b"]
    finally:
        await engine.dispose()


def _event_values(shipment_id: str, fingerprint: str, at: datetime, **changes: Any) -> tuple[Any, ...]:
    row = {**_event(shipment_id, fingerprint, at), **changes}
    return tuple(row[n] for n in tracking.EVENT_COLUMNS)


async def _stored_events(sessions: Any) -> dict[str, dict[str, tuple[Any, ...]]]:
    """shipment id -> fingerprint -> the other columns, as the ORM reads them."""
    out: dict[str, dict[str, tuple[Any, ...]]] = {}
    async with sessions() as session:
        for e in await session.exec(select(TrackingEvent)):
            values = tuple(getattr(e, n) for n in tracking.EVENT_COLUMNS if n not in ("shipment_id", "fingerprint"))
            out.setdefault(e.shipment_id, {})[e.fingerprint] = values
    return out


async def test_large_event_batches_store_what_small_ones_store(
    database: DatabaseSettings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A poll's batch of events goes in by COPY on PostgreSQL; what it stores, and which rows
    it skips, are those of the INSERT: a fingerprint already stored or twice in the batch
    makes the COPY fail, and the INSERT then writes the batch, in the same transaction."""
    engine = engine_for(database)
    sessions = create_sessionmaker(engine)
    now = INSTANTS[2]
    inserts: list[int] = []
    run = bulk._run

    async def counted_run(conn: Any, plan: Any, values: list[tuple[Any, ...]]) -> None:
        inserts.append(len(values))
        await run(conn, plan, values)

    monkeypatch.setattr(bulk, "_run", counted_run)
    size = bulk.COPY_MIN_ROWS + 6
    instants = [INSTANTS[i % len(INSTANTS)] + timedelta(minutes=i) for i in range(size)]
    places = [{"city": None, "country": None}, {"city": "Köln", "region": "NRW", "postcode": "50667"}]

    def batch(shipment_id: str) -> list[tuple[Any, ...]]:
        return [
            _event_values(shipment_id, f"fp{i}", at, utc_offset_minutes=i if i % 3 else None, **places[i % 2])
            for i, at in enumerate(instants)
        ]

    postgres = engine.dialect.name == "postgresql"
    try:
        seller_id = await _seller_with_orders(sessions, "Copy", ["ord_a", "ord_b", "ord_c"], now)
        async with engine.begin() as conn:
            await bulk.insert_rows(conn, SHIPMENTS, [_shipment(i, seller_id, now) for i in ("a", "b", "c")])
            inserts.clear()
            # shipment a: row by row, always the INSERT
            for row in batch("a"):
                await tracking.insert_events(conn, [row])
            assert inserts == [1] * size
            inserts.clear()
            # shipment b: one batch, by COPY on PostgreSQL
            await tracking.insert_events(conn, batch("b"))
            assert inserts == ([] if postgres else [size])
            inserts.clear()
            # shipment c: fp0 first, then a batch with fp0 again and fp-twice twice
            await tracking.insert_events(conn, batch("c")[:1])
            inserts.clear()
            clashing = [*batch("c"), _event_values("c", "fp-twice", INSTANTS[0]), _event_values("c", "fp-twice", now)]
            with caplog.at_level(logging.DEBUG, logger="tracker.store.bulk"):
                await tracking.insert_events(conn, clashing)
            assert inserts == [len(clashing)]  # on PostgreSQL, after the COPY failed
            assert not caplog.records  # a clash is what the INSERT is there for: no warning
            # the transaction goes on after the failed COPY
            assert (await conn.execute(text("SELECT count(*) FROM tracking_events"))).scalar_one() == 3 * size + 1
        stored = await _stored_events(sessions)
        assert len(stored["a"]) == size
        assert stored["b"] == stored["a"]
        assert {fp: v for fp, v in stored["c"].items() if fp != "fp-twice"} == stored["a"]
        assert stored["c"]["fp-twice"][0] == INSTANTS[0]  # the first copy is kept
    finally:
        await engine.dispose()


async def test_a_refused_event_batch_raises_the_databases_error(
    database: DatabaseSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """A large batch the database refuses for another reason (here an event of no shipment)
    fails as the INSERT fails, with SQLAlchemy's error, and stores nothing; on PostgreSQL the
    refused COPY is logged, since it is no clash the INSERT would skip."""
    engine = engine_for(database)
    try:
        rows = [_event_values("nowhere", f"fp{i}", INSTANTS[0]) for i in range(bulk.COPY_MIN_ROWS)]
        with caplog.at_level(logging.WARNING, logger="tracker.store.bulk"), pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await tracking.insert_events(conn, rows)
        refused = [r for r in caplog.records if r.getMessage() == "COPY refused, inserting instead"]
        assert len(refused) == (1 if engine.dialect.name == "postgresql" else 0)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM tracking_events"))).scalar_one() == 0
    finally:
        await engine.dispose()


def _reference_event(e: TrackingEvent) -> CarrierEvent:
    """A stored event as the ORM reads it, turned into a `CarrierEvent` field by field."""
    place = (e.city, e.region, e.country, e.postcode)
    return CarrierEvent(
        occurred_at=e.occurred_at,
        time_basis=TimeBasis(e.time_basis),
        local_time=e.local_time,
        status=Status(e.status),
        sub_status=SubStatus(e.sub_status),
        raw_code=e.raw_code,
        description=e.description,
        location=Location(*place) if any(place) else None,
        provider=e.provider,
        utc_offset_minutes=e.utc_offset_minutes,
    )


async def test_stored_timelines_read_like_orm_rows(database: DatabaseSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tracking.timelines` reads driver tuples itself; it must give what the ORM gives."""
    engine = engine_for(database)
    sessions = create_sessionmaker(engine)
    now = INSTANTS[1]
    places: list[dict[str, Any]] = [
        {"city": None, "region": None, "country": None, "postcode": None},
        {"city": "Paris", "region": None, "country": "FR", "postcode": None},
        {"city": None, "region": None, "country": None, "postcode": "75001"},
        {"city": "Shenzhen", "region": "Guangdong", "country": "CN", "postcode": "518000"},
    ]
    bases, statuses, subs = list(TimeBasis), list(Status), list(SubStatus)
    try:
        seller_id = await _seller_with_orders(sessions, "Timelines", ["ord_t1", "ord_t2", "ord_t3"], now)
        rows = []
        for n, at in enumerate(INSTANTS * 3):
            rows.append(
                {
                    **_event("t1" if n % 2 else "t2", f"fp{n}", at),
                    **places[n % len(places)],
                    "time_basis": bases[n % len(bases)].value,
                    "status": statuses[n % len(statuses)].value,
                    "sub_status": subs[n % len(subs)].value,
                    "utc_offset_minutes": None if n % 3 else 480 - 30 * n,
                    "local_time": "" if n % 4 else "2026-01-05T16:30:00",
                }
            )
        async with engine.begin() as conn:
            await bulk.insert_rows(conn, SHIPMENTS, [_shipment(i, seller_id, now) for i in ("t1", "t2", "t3")])
            # one through SQLAlchemy's own statement, the rest in bulk: both are read the same
            await conn.execute(insert(EVENTS), rows[:1])
            await bulk.insert_rows(conn, EVENTS, rows[1:])
        async with sessions() as session:
            expected: dict[str, dict[str, CarrierEvent]] = {"t1": {}, "t2": {}, "t3": {}}
            for e in await session.exec(select(TrackingEvent)):
                expected[e.shipment_id][e.fingerprint] = _reference_event(e)
        # chunks of two ids exercise the IN list (SQLite) or array (PostgreSQL) per chunk
        monkeypatch.setattr(tracking, "IN_CHUNK", 2)
        async with engine.connect() as conn:
            got = await tracking.timelines(conn, ["t1", "t2", "t3", "absent"])
        assert got == {**expected, "absent": {}}
        assert sum(map(len, got.values())) == len(rows)
        for shipment_id, events in got.items():
            for fingerprint, event in events.items():
                assert event.occurred_at.tzinfo is UTC, (shipment_id, fingerprint)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "stored",
    [
        "2026-01-05 08:30:00.000250",
        "2026-01-05 08:30:00",  # written by hand, without microseconds
        "2026-01-05T08:30:00.000250+00:00",
        datetime(2026, 1, 5, 8, 30, 0, 250),
        datetime(2026, 1, 5, 16, 30, 0, 250, tzinfo=timezone(timedelta(hours=8))),
    ],
)
def test_stored_instants_read_like_the_column_type(stored: Any) -> None:
    theirs = UTCDateTime().process_result_value(stored, sqlite.dialect())
    ours = utc_from_stored(stored)
    assert ours == theirs
    assert ours.tzinfo is UTC
    assert ours.microsecond == (0 if stored == "2026-01-05 08:30:00" else 250)
