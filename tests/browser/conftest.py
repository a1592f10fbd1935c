"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright against the service
on a real loopback port. Skipped only when Chromium is not installed."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import FakeClock, create_schema, make_account, make_settings
from tests.web.test_tracking_pages import CN_DE, Seed, brand, seed
from tracker.app import create_app
from tracker.settings import DatabaseSettings

CHROMIUM = os.environ.get("TRACKER_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-output" / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if Path(CHROMIUM).exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (scripts/system-deps.sh test installs it)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@dataclass
class Live:
    base: str
    token: str
    number: str
    postcode: str


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    db = DatabaseSettings(url=f"sqlite:///{tmp_path / 'pages.db'}")
    await create_schema(db)
    clock = FakeClock()
    app = create_app(make_settings(db), clock=clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        account = await make_account(app, "Lotus Goods", clock)
        await brand(
            app,
            account.seller_id,
            brand_color="#c2185b",
            support_url="https://help.lotus.example/",
            support_email="care@lotus.example",
        )
        shipment = await seed(app, clock, account.seller_id, Seed(events=CN_DE))
        yield Live(f"http://127.0.0.1:{port}", shipment.public_token, shipment.tracking_number, "10115")
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser_context(tmp_path: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make install-test does)")
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1024, "height": 900},
        )
        try:
            yield context
        finally:
            await context.close()
