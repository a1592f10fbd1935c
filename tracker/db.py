"""Engine and session factory for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

import tracker.models  # noqa: F401  (registers every table on SQLModel.metadata)
from tracker.settings import DatabaseSettings

SessionMaker = async_sessionmaker[AsyncSession]


def async_url(url: str) -> str:
    """Map plain URLs to the async drivers we ship: aiosqlite and asyncpg."""
    u = make_url(url)
    if u.drivername in ("sqlite", "sqlite+pysqlite"):
        u = u.set(drivername="sqlite+aiosqlite")
    elif u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (Alembic, bulk tools)."""
    u = make_url(url)
    if u.drivername.startswith("sqlite"):
        u = u.set(drivername="sqlite")
    elif u.drivername.startswith("postgres"):
        u = u.set(drivername="postgresql+psycopg2")
    return u.render_as_string(hide_password=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10, schema: str = "") -> AsyncEngine:
    full = async_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if full.startswith("postgresql"):
        kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        if schema:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    else:
        kwargs.update(connect_args={"timeout": 30})
    engine = create_async_engine(full, **kwargs)
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    return engine


def _sqlite_setup(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below), so pysqlite's own transaction handling is off.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers that read-then-write (claims, leases) take the write lock up front, so two
        # processes never both read the same due rows and then fight over the upgrade.
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())


def engine_for(settings: DatabaseSettings) -> AsyncEngine:
    return create_engine(settings.url, echo=settings.echo, pool_size=settings.pool_size, schema=settings.schema_name)


def create_sessionmaker(engine: AsyncEngine) -> SessionMaker:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def write_transaction(sessionmaker: SessionMaker) -> AsyncIterator[AsyncSession]:
    """A transaction that holds the write lock from its start on SQLite (BEGIN IMMEDIATE);
    plain on PostgreSQL, where row locks (FOR UPDATE SKIP LOCKED) do the job. Commits on
    success, rolls back on any exception."""
    async with sessionmaker() as session:
        await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


@asynccontextmanager
async def writing(sessionmaker: SessionMaker) -> AsyncIterator[AsyncSession]:
    """A session for a read-then-write unit of work: on SQLite its transaction takes the
    write lock at BEGIN, so concurrent writers queue on busy_timeout instead of failing
    with "database is locked" when a deferred transaction tries to upgrade. The caller
    commits."""
    async with sessionmaker() as session:
        await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session
