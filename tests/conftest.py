"""Shared fixtures: a real database per test (SQLite file, and PostgreSQL when
TRACKER_TEST_DATABASE_URL is set), a fake clock, the app and API clients."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlmodel import SQLModel

from tests.openapi_check import Conformance
from tracker.app import create_app
from tracker.db import engine_for
from tracker.settings import DatabaseSettings, Settings
from tracker.store import sellers as seller_store

PG_URL = os.environ.get("TRACKER_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
SHARED = Path(os.environ.get("TRACKER_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")


class FakeClock:
    """A clock the test moves by hand. Starts at a fixed instant."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_settings(backend: str, tmp_path: Path) -> Iterator[DatabaseSettings]:
    if backend == "sqlite":
        yield DatabaseSettings(url=f"sqlite:///{tmp_path / 'tracker.db'}")
        return
    schema = "t_" + secrets.token_hex(6)
    import psycopg2

    from tracker.db import sync_url

    conn = psycopg2.connect(sync_url(PG_URL).replace("postgresql+psycopg2", "postgresql"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    try:
        yield DatabaseSettings(url=PG_URL, schema_name=schema, pool_size=5)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


async def create_schema(db: DatabaseSettings) -> None:
    engine = engine_for(db)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    await engine.dispose()


@pytest.fixture
async def database(db_settings: DatabaseSettings) -> DatabaseSettings:
    await create_schema(db_settings)
    return db_settings


def make_settings(db: DatabaseSettings, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "database": db.model_dump(),
        "server": {"public_url": "http://tracker.test", "max_body_bytes": 65536},
        "webhooks": {"allow_loopback": True},
        "email": {"enabled": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Settings.model_validate(base)


@pytest.fixture
def settings(database: DatabaseSettings) -> Settings:
    return make_settings(database)


@pytest.fixture
def conformance() -> Iterator[Conformance]:
    checker = Conformance()
    yield checker
    assert checker.failures == [], "responses that do not conform to /openapi.json:\n" + "\n".join(
        checker.failures
    )


@pytest.fixture
def app(settings: Settings, clock: FakeClock, conformance: Conformance) -> web.Application:
    app = create_app(settings, clock=clock)
    # outermost, so it sees exactly what the client receives
    app.middlewares.insert(0, conformance.middleware())
    return app


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> TestClient:  # type: ignore[type-arg]
    c: TestClient = await aiohttp_client(app)  # type: ignore[type-arg]
    return c


@dataclass
class Account:
    seller_id: str
    api_key: str
    key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def make_account(
    app: web.Application,
    name: str,
    clock: FakeClock,
    *,
    scopes: tuple[str, ...] | None = None,
    kind: str = "trading_company",
    parent_id: str | None = None,
) -> Account:
    from tracker import keys

    async with app[keys.SESSIONMAKER]() as session:
        seller = await seller_store.create_seller(
            session,
            name,
            now=clock(),
            kind=kind,
            parent_id=parent_id,
            support_email=f"support@{name.lower().replace(' ', '')}.example",
        )
        key = await seller_store.create_key(session, seller.id, scopes or seller_store.SCOPES, now=clock())
        await session.commit()
    return Account(seller.id, key.api_key, key.id)


@pytest.fixture
async def seller(client: TestClient, app: web.Application, clock: FakeClock) -> Account:  # type: ignore[type-arg]
    return await make_account(app, "Acme Export", clock)


@pytest.fixture
async def other_seller(client: TestClient, app: web.Application, clock: FakeClock) -> Account:  # type: ignore[type-arg]
    return await make_account(app, "Other Trading", clock)


def shipment_body(n: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tracking_number": f"TRK{n:010d}",
        "order_number": f"ORD-{n:05d}",
        "customer": {
            "name": "Jane Customer",
            "email": f"jane{n}@example.com",
            "phone": "+1 415 555 0100",
            "locale": "en",
        },
        "destination": {
            "country": "US",
            "postcode": "94103",
            "city": "San Francisco",
            "address": "1 Market St",
        },
    }
    body.update(overrides)
    return body
