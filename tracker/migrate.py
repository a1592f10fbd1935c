"""`tracker migrate`: Alembic upgrades for SQLite and PostgreSQL, from code or the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tracker.db import engine_for
from tracker.settings import DatabaseSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # ConfigParser interpolation would eat a '%' in a password
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    """Upgrade through an open synchronous connection (inside `AsyncConnection.run_sync`)."""
    command.upgrade(alembic_config(connection=connection), revision)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.connect() as conn:
        await conn.run_sync(upgrade_connection, revision)
        await conn.commit()


def upgrade(db: DatabaseSettings, revision: str = "head") -> None:
    async def go() -> None:
        engine = engine_for(db)
        try:
            await upgrade_engine(engine, revision)
        finally:
            await engine.dispose()

    asyncio.run(go())
