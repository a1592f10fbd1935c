"""Alembic environment: one set of migrations for SQLite and PostgreSQL, run through the
same async drivers as the service (no second driver to install)."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import tracker.models  # noqa: F401  (registers the tables)
from tracker.db import create_engine

config = context.config
target_metadata = SQLModel.metadata


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    # outside any transaction, where SQLite ignores the pragma; on the driver's connection,
    # since SQLAlchemy would first begin one
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _configure(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # SQLite cannot ALTER most things in place: batch mode copies a table and drops the
    # old one, and with foreign keys enforced that drop fails as soon as another table's
    # rows point at it (events at their shipment). The steps SQLite's documentation gives
    # for such changes: enforcement off, the change, a check of every key, enforcement on.
    switched = sqlite and not connection.in_transaction()
    if switched:
        _sqlite_foreign_keys(connection, on=False)
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
            # SQLite's DDL is transactional too (our connections issue BEGIN themselves): an
            # upgrade commits whole, after the key check below, or not at all
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left rows whose foreign key points nowhere: {broken[:5]}")
    except BaseException:
        if switched and connection.in_transaction():
            connection.rollback()
        raise
    finally:
        if switched:
            # the pragma must not outlive the migration on a pooled connection; it takes
            # effect only between transactions, so what the migrations left open ends here
            if connection.in_transaction():
                connection.commit()
            _sqlite_foreign_keys(connection, on=True)


async def _run_async(url: str) -> None:
    # the service's own engine set-up: on SQLite, transactions begun by BEGIN as Alembic
    # asks, and the foreign-key pragma `_configure` switches
    engine = create_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_configure)
        await conn.commit()
    await engine.dispose()


def run() -> None:
    connection: Any = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_async(url))


run()
