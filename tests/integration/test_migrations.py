"""Alembic upgrades an empty database on both backends to exactly the models' schema."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, inspect
from sqlmodel import SQLModel, select

from tracker.db import create_sessionmaker, engine_for
from tracker.migrate import alembic_config, upgrade_engine
from tracker.models import Order, PollSchedule, Shipment, TrackingEvent, UTCDateTime, WebhookMessage
from tracker.models.shipment import POLL_SCHEDULE_FILLFACTOR
from tracker.models.webhook import LZ4_AVAILABLE
from tracker.settings import DatabaseSettings
from tracker.store import sellers

T = TypeVar("T")


def _downgrade(conn: Any, revision: str) -> None:
    command.downgrade(alembic_config(connection=conn), revision)


async def _read_around_downgrade(engine: Any, read: Callable[[Any], T], revision: str) -> tuple[T, T]:
    """`read` at the head revision, then after downgrading to `revision` (where it stays)."""
    await upgrade_engine(engine)
    async with engine.connect() as conn:
        upgraded = await conn.run_sync(read)
        await conn.run_sync(_downgrade, revision)
        await conn.commit()
    async with engine.connect() as conn:
        return upgraded, await conn.run_sync(read)


async def test_upgrade_from_empty_matches_models(db_settings: DatabaseSettings) -> None:
    engine = engine_for(db_settings)
    try:
        await upgrade_engine(engine)

        def diff(conn: Any) -> list[Any]:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, SQLModel.metadata))

        def tables_and_indexes(conn: Any) -> tuple[set[str], dict[str, set[str]]]:
            insp = inspect(conn)
            names = set(insp.get_table_names())
            return names, {t: {i["name"] for i in insp.get_indexes(t)} for t in names}

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            tables, indexes = await conn.run_sync(tables_and_indexes)
        assert set(SQLModel.metadata.tables) <= tables
        assert "alembic_version" in tables
        # the partial indexes the poller and the alert rules rely on exist on both backends
        assert "ix_poll_schedule_due" in indexes["poll_schedule"]
        assert "uq_alerts_open_kind" in indexes["alerts"]
        # upgrading again is a no-op
        await upgrade_engine(engine)
    finally:
        await engine.dispose()


def _customs_index_sql(conn: Any) -> str:
    return str(conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'ix_events_customs'").scalar_one())


def _insert_opcodes(conn: Any) -> set[str]:
    """The VDBE opcodes of inserting one event row."""
    names = [c.name for c in TrackingEvent.__table__.columns if c.name != "id"]  # type: ignore[attr-defined]
    sql = f"EXPLAIN INSERT INTO tracking_events ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})"
    return {row[1] for row in conn.exec_driver_sql(sql, (None,) * len(names))}


async def test_sqlite_customs_index_costs_an_event_insert_no_temporary_index(tmp_path: Path) -> None:
    """An IN list of three constants in a partial index makes SQLite build a temporary
    index for every inserted row (OpenEphemeral); revision 0002 writes it with OR."""
    migrated = engine_for(DatabaseSettings(url=f"sqlite:///{tmp_path / 'migrated.db'}"))
    created = engine_for(DatabaseSettings(url=f"sqlite:///{tmp_path / 'created.db'}"))
    try:
        await upgrade_engine(migrated, "0001")
        async with migrated.connect() as conn:
            assert " IN (" in await conn.run_sync(_customs_index_sql)
            assert "OpenEphemeral" in await conn.run_sync(_insert_opcodes)
        await upgrade_engine(migrated)
        async with created.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        async with migrated.connect() as conn, created.connect() as other:
            upgraded = await conn.run_sync(_customs_index_sql)
            assert upgraded == await other.run_sync(_customs_index_sql)
            assert " IN (" not in upgraded and upgraded.count(" OR ") == 2
            assert "OpenEphemeral" not in await conn.run_sync(_insert_opcodes)

        async with migrated.connect() as conn:
            await conn.run_sync(_downgrade, "0001")
            await conn.commit()
        async with migrated.connect() as conn:
            assert " IN (" in await conn.run_sync(_customs_index_sql)
    finally:
        await migrated.dispose()
        await created.dispose()


#: shipments before 0008, with the polling columns the models no longer have
OLD_SHIPMENTS = Table(
    "shipments",
    MetaData(),
    *(Column(c.name, c.type) for c in Shipment.__table__.columns),  # type: ignore[attr-defined]
    Column("next_poll_at", UTCDateTime(timezone=True)),
    Column("lease_owner", String),
    Column("lease_until", UTCDateTime(timezone=True)),
    Column("poll_count", Integer),
    Column("poll_errors", Integer),
    Column("last_polled_at", UTCDateTime(timezone=True)),
)


async def _seller(engine: Any, name: str, now: datetime) -> str:
    async with create_sessionmaker(engine)() as session:
        seller = await sellers.create_seller(session, name, now=now)
        await session.commit()
    return str(seller.id)


async def _old_shipment(conn: Any, seller_id: str, key: str, now: datetime, **polling: Any) -> None:
    """An order and its shipment as stored before 0008, polling columns on the shipment."""
    await conn.execute(
        insert(Order).values(
            id=f"ord_{key}", seller_id=seller_id, order_number=f"O-{key}", customer_key="k", items=[], created_at=now
        )
    )
    await conn.execute(
        insert(OLD_SHIPMENTS).values(
            id=f"shp_{key}",
            seller_id=seller_id,
            order_id=f"ord_{key}",
            order_number=f"O-{key}",
            tracking_number=f"FX{key}",
            carrier="fedex",
            carrier_candidates=["fedex"],
            status="in_transit",
            sub_status="other",
            public_token=f"tok_{key}",
            customer_locale="en",
            dest_country="US",
            created_at=now,
            updated_at=now,
            active=True,
            confirmed_terminal=False,
            sequence=2,
            notify_opt_out=False,
            **{"poll_count": 0, "poll_errors": 0, **polling},
        )
    )


async def test_poll_digest_column_added_and_dropped_keeping_the_rows(db_settings: DatabaseSettings) -> None:
    """0003 adds a nullable column in place: the shipments already stored keep every value."""
    engine = engine_for(db_settings)

    now = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    try:
        await upgrade_engine(engine, "0002")
        seller_id = await _seller(engine, "Migrations", now)
        async with engine.begin() as conn:
            await _old_shipment(conn, seller_id, "m", now, next_poll_at=now, poll_count=3)
        async with engine.connect() as conn:
            assert "poll_digest" not in {c["name"] for c in await conn.run_sync(_shipment_columns)}
        await upgrade_engine(engine)
        async with create_sessionmaker(engine)() as session:
            shipment = (await session.exec(select(Shipment).where(Shipment.id == "shp_m"))).one()
            assert (shipment.poll_digest, shipment.status, shipment.sequence) == (None, "in_transit", 2)
            schedule = (await session.exec(select(PollSchedule).where(PollSchedule.shipment_id == "shp_m"))).one()
            assert (schedule.poll_count, schedule.next_poll_at) == (3, now)
            shipment.poll_digest = "0" * 32
            session.add(shipment)
            await session.commit()
        async with engine.connect() as conn:
            await conn.run_sync(_downgrade, "0002")
            await conn.commit()
        async with engine.connect() as conn:
            assert "poll_digest" not in {c["name"] for c in await conn.run_sync(_shipment_columns)}
            count = await conn.exec_driver_sql("SELECT poll_count FROM shipments WHERE id = 'shp_m'")
            assert count.scalar_one() == 3
        await upgrade_engine(engine)
    finally:
        await engine.dispose()


def _shipment_columns(conn: Any) -> list[dict[str, Any]]:
    return list(inspect(conn).get_columns("shipments"))


def _shipment_indexes(conn: Any) -> set[str]:
    return {i["name"] for i in inspect(conn).get_indexes("shipments")}


async def test_polling_columns_move_to_poll_schedule_and_back(db_settings: DatabaseSettings) -> None:
    """0008 moves each shipment's due time, lease and poll counters to its own
    poll_schedule row, and the due index with them; downgrading moves them back."""
    engine = engine_for(db_settings)
    now = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    polling = {
        "next_poll_at": now,
        "lease_owner": "worker:1:a",
        "lease_until": datetime(2026, 3, 2, 8, 35, tzinfo=UTC),
        "poll_count": 7,
        "poll_errors": 2,
        "last_polled_at": datetime(2026, 3, 2, 4, 30, tzinfo=UTC),
    }
    stopped = {name: None for name in polling} | {"poll_count": 1, "poll_errors": 0}
    try:
        await upgrade_engine(engine, "0007")
        seller_id = await _seller(engine, "Schedule", now)
        async with engine.begin() as conn:
            for key, values in (("1", polling), ("2", stopped)):
                await _old_shipment(conn, seller_id, key, now, **values)
            # an event points at the shipment: on SQLite, copying the table to drop columns
            # must not trip over it
            await conn.exec_driver_sql(
                "INSERT INTO tracking_events (shipment_id, fingerprint, occurred_at, time_basis, local_time,"
                " status, sub_status, raw_code, description, provider, recorded_at) VALUES ('shp_1', 'fp',"
                " '2026-03-01 10:00:00', 'utc', '2026-03-01T10:00', 'in_transit', 'other', 'X', 'scan', 'fedex',"
                " '2026-03-01 10:00:00')"
            )
        async with engine.connect() as conn:
            assert "ix_shipments_due" in await conn.run_sync(_shipment_indexes)
        await upgrade_engine(engine)
        async with engine.connect() as conn:
            assert "ix_shipments_due" not in await conn.run_sync(_shipment_indexes)
            assert not set(polling) & {c["name"] for c in await conn.run_sync(_shipment_columns)}
            assert (await conn.exec_driver_sql("SELECT count(*) FROM tracking_events")).scalar_one() == 1
            if engine.dialect.name == "sqlite":
                # the migrations switched enforcement off for themselves only
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
        async with create_sessionmaker(engine)() as session:
            moved = {p.shipment_id: p for p in await session.exec(select(PollSchedule))}
        assert {k: getattr(moved["shp_1"], k) for k in polling} == polling
        assert {k: getattr(moved["shp_2"], k) for k in stopped} == stopped

        async with engine.connect() as conn:
            await conn.run_sync(_downgrade, "0007")
            await conn.commit()
        async with engine.connect() as conn:
            assert "ix_shipments_due" in await conn.run_sync(_shipment_indexes)
            assert "poll_schedule" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
        for shipment_id, values in (("shp_1", polling), ("shp_2", stopped)):
            async with engine.connect() as conn:
                row = (await conn.execute(OLD_SHIPMENTS.select().where(OLD_SHIPMENTS.c.id == shipment_id))).one()
            assert {k: getattr(row, k) for k in values} == values
        await upgrade_engine(engine)
    finally:
        await engine.dispose()


def _storage_options(conn: Any, table: str) -> list[str]:
    rows = conn.exec_driver_sql(
        f"SELECT reloptions FROM pg_class WHERE relname = '{table}' AND relnamespace = current_schema()::regnamespace"
    )
    return list(rows.scalar_one() or [])


async def test_postgresql_claimed_rows_leave_room_for_updates_beside_the_row(db_settings: DatabaseSettings) -> None:
    """The table a claim updates is filled to 50%: poll_schedule since 0008, shipments from
    0004 (70%) and 0007 (50%) until 0008 reset it; migrations and models agree."""
    if not db_settings.url.startswith("postgresql"):
        pytest.skip("fillfactor is a PostgreSQL storage parameter")
    migrated = engine_for(db_settings)
    expected = [f"fillfactor={POLL_SCHEDULE_FILLFACTOR}"]

    try:
        await upgrade_engine(migrated)
        async with migrated.connect() as conn:
            assert await conn.run_sync(_storage_options, "poll_schedule") == expected
            assert await conn.run_sync(_storage_options, "shipments") == []
            await conn.run_sync(_downgrade, "0007")
            await conn.commit()
        async with migrated.connect() as conn:
            assert await conn.run_sync(_storage_options, "shipments") == ["fillfactor=50"]
            await conn.run_sync(_downgrade, "0006")
            await conn.commit()
        async with migrated.connect() as conn:
            assert await conn.run_sync(_storage_options, "shipments") == ["fillfactor=70"]
            await conn.run_sync(_downgrade, "0003")
            await conn.commit()
        async with migrated.connect() as conn:
            assert await conn.run_sync(_storage_options, "shipments") == []
        await upgrade_engine(migrated)
        async with migrated.begin() as conn:
            await conn.exec_driver_sql("DROP TABLE poll_schedule")
            await conn.run_sync(SQLModel.metadata.tables["poll_schedule"].create)
        async with migrated.connect() as conn:
            assert await conn.run_sync(_storage_options, "poll_schedule") == expected
    finally:
        await migrated.dispose()


def _event_indexes(conn: Any) -> set[str]:
    return {i["name"] for i in inspect(conn).get_indexes("tracking_events")}


async def test_events_time_index_dropped_and_restored(db_settings: DatabaseSettings) -> None:
    """0005 drops the (shipment_id, occurred_at) index; the unique fingerprint index, which
    timeline reads go through, stays; downgrading brings the dropped one back."""
    engine = engine_for(db_settings)

    try:
        upgraded, downgraded = await _read_around_downgrade(engine, _event_indexes, "0004")
        await upgrade_engine(engine)
        async with engine.connect() as conn:
            again = await conn.run_sync(_event_indexes)
    finally:
        await engine.dispose()
    assert "ix_events_shipment_time" not in upgraded
    assert downgraded - upgraded == {"ix_events_shipment_time"}
    assert again == upgraded


def _payload_compression(conn: Any) -> str:
    """pg_attribute's compression of webhook_messages.payload: "l" LZ4, "" the default."""
    return str(
        conn.exec_driver_sql(
            "SELECT attcompression::text FROM pg_attribute"
            " WHERE attrelid = 'webhook_messages'::regclass AND attname = 'payload'"
        ).scalar_one()
    )


async def test_postgresql_outbox_payloads_compress_with_lz4(db_settings: DatabaseSettings) -> None:
    """0006 and the models give payloads LZ4 compression; downgrading restores the default."""
    if not db_settings.url.startswith("postgresql"):
        pytest.skip("column compression is PostgreSQL's")
    engine = engine_for(db_settings)

    try:
        async with engine.connect() as conn:
            if not (await conn.exec_driver_sql(LZ4_AVAILABLE)).scalar():
                pytest.skip("this PostgreSQL server was built without LZ4")
        upgraded, downgraded = await _read_around_downgrade(engine, _payload_compression, "0005")
        await upgrade_engine(engine)
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP TABLE webhook_messages CASCADE")
            await conn.run_sync(SQLModel.metadata.tables["webhook_messages"].create)
        async with engine.connect() as conn:
            created = await conn.run_sync(_payload_compression)
        # a message as a first poll writes it: past the 2 KB at which values are compressed
        session = create_sessionmaker(engine)()
        async with session:
            seller = await sellers.create_seller(session, "LZ4", now=datetime.now(UTC))
            await session.commit()
            payload = '{"new_events":[' + ",".join(f'{{"n":{i},"description":"in transit"}}' for i in range(200)) + "]}"
            await session.exec(  # type: ignore[call-overload]
                insert(WebhookMessage).values(
                    id="msg_lz4",
                    seller_id=seller.id,
                    event_type="shipment.updated",
                    payload=payload,
                    created_at=datetime.now(UTC),
                )
            )
            await session.commit()
            conn = await session.connection()
            stored = (
                await conn.exec_driver_sql(
                    "SELECT pg_column_compression(payload) FROM webhook_messages WHERE id = 'msg_lz4'"
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert upgraded == "l"
    assert downgraded == ""
    assert created == "l"
    assert stored == "lz4"


async def test_sqlite_upgrade_with_a_dangling_key_fails_whole(tmp_path: Path) -> None:
    """Migrations run with key enforcement off; the keys are checked before the commit, and
    a failed check leaves the database as it was (one transaction for the whole upgrade)."""
    engine = engine_for(DatabaseSettings(url=f"sqlite:///{tmp_path / 'dangling.db'}"))

    def version(conn: Any) -> str:
        return str(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one())

    try:
        await upgrade_engine(engine, "0007")
        # an event of a shipment that does not exist, as a database written without key
        # enforcement could hold (a plain sqlite3 connection enforces none)
        with closing(sqlite3.connect(tmp_path / "dangling.db")) as db, db:
            db.execute(
                "INSERT INTO tracking_events (shipment_id, fingerprint, occurred_at, time_basis, local_time,"
                " status, sub_status, raw_code, description, provider, recorded_at) VALUES ('shp_gone', 'fp',"
                " '2026-03-01 10:00:00', 'utc', 'x', 'in_transit', 'other', 'X', 'scan', 'fedex',"
                " '2026-03-01 10:00:00')"
            )
        with pytest.raises(RuntimeError, match="foreign key points nowhere"):
            await upgrade_engine(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(version) == "0007"
            assert "poll_schedule" not in await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert "next_poll_at" in {c["name"] for c in await conn.run_sync(_shipment_columns)}
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        await engine.dispose()
