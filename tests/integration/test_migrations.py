"""Alembic upgrades an empty database on both backends to exactly the models' schema."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from tracker.db import engine_for
from tracker.migrate import upgrade_engine
from tracker.settings import DatabaseSettings


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
        assert "ix_shipments_due" in indexes["shipments"]
        assert "uq_alerts_open_kind" in indexes["alerts"]
        # upgrading again is a no-op
        await upgrade_engine(engine)
    finally:
        await engine.dispose()
