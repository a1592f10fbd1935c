"""The dashboard in headless Chromium: sign-in, screenshots at desktop and phone widths, axe-core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import update

from tests.browser.conftest import AXE, SCREENSHOTS
from tests.conftest import FakeClock, create_schema, make_account, make_settings
from tracker import keys
from tracker.app import create_app
from tracker.models import Alert, Shipment, new_id
from tracker.settings import DatabaseSettings
from tracker.store import shipments as shipment_store

pytestmark = pytest.mark.browser
PAGES = ("shipments", "alerts", "webhooks", "customs", "analytics", "import")


@dataclass
class Dash:
    base: str
    api_key: str
    shipment_id: str


@pytest.fixture
async def dash(tmp_path: Path) -> AsyncIterator[Dash]:
    db = DatabaseSettings(url=f"sqlite:///{tmp_path / 'dash.db'}")
    await create_schema(db)
    clock = FakeClock()
    app = create_app(make_settings(db), clock=clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        account = await make_account(app, "Lotus Goods", clock)
        lanes = [("dhl", "CN", "DE"), ("ups", "CN", "US"), ("yanwen", "CN", "FR")]
        async with app[keys.SESSIONMAKER]() as session:
            made = await shipment_store.create_shipments(
                session,
                account.seller_id,
                [
                    shipment_store.NewShipment(
                        tracking_number=f"LX{n:09d}CN",
                        order_number=f"LG-{n}",
                        dest_country=lanes[n % 3][2],
                        carrier=lanes[n % 3][0],
                        origin_country="CN",
                        customer_name="Ana",
                        customer_email="a@x.example",
                    )
                    for n in range(24)
                ],
                now=clock(),
                public_url="http://tracker.test",
            )
            for i, s in enumerate(made[:15]):
                await session.exec(
                    update(Shipment)
                    .where(Shipment.id == s.id)
                    .values(
                        status="delivered" if i % 5 else "exception",
                        first_event_at=clock() + timedelta(hours=6 + i),
                        delivered_at=clock() + timedelta(days=5 + i % 7) if i % 5 else None,
                        promised_delivery=(clock() + timedelta(days=9)).date(),
                    )
                )
            session.add(
                Alert(
                    id=new_id("alt"),
                    seller_id=account.seller_id,
                    shipment_id=made[20].id,
                    kind="stalled",
                    opened_at=clock(),
                )
            )
            await session.commit()
        yield Dash(f"http://127.0.0.1:{runner.addresses[0][1]}", account.api_key, made[20].id)
    finally:
        await runner.cleanup()


async def _sign_in(page: Any, dash: Dash) -> None:
    await page.goto(f"{dash.base}/dashboard/login?lang=en")
    await page.fill("#api_key", dash.api_key)
    await page.click("main button[type=submit]")
    await page.wait_for_load_state()
    assert page.url.endswith("/dashboard/shipments")


async def _axe(page: Any) -> list[dict[str, Any]]:
    # evaluated through the DevTools protocol, so the page's CSP (no scripts) stays as it is
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in violations if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width", [1280, 375])
async def test_pages_render_and_pass_axe(dash: Dash, browser_context: Any, width: int) -> None:
    page = await browser_context.new_page()
    await page.set_viewport_size({"width": width, "height": 900})
    await _sign_in(page, dash)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name in (*PAGES, f"shipments/{dash.shipment_id}"):
        response = await page.goto(f"{dash.base}/dashboard/{name}")
        assert response.status == 200, name
        label = "shipment" if "/" in name else name
        await page.screenshot(path=str(SCREENSHOTS / f"dashboard-{label}-{width}.png"), full_page=True)
        assert await _axe(page) == [], name
        # nothing wider than the viewport but the scrollable tables
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (name, overflow)
    assert await page.locator("svg.chart").count() == 0  # the detail page has no chart
    await page.goto(f"{dash.base}/dashboard/analytics")
    assert await page.locator("svg.chart title").count() == 5


async def test_alert_handled_and_language_switched(dash: Dash, browser_context: Any) -> None:
    page = await browser_context.new_page()
    await _sign_in(page, dash)
    await page.goto(f"{dash.base}/dashboard/alerts")
    await page.select_option("select[name=action]", "found")
    await page.fill("form[action$='/resolve'] input[name=note]", "arrived late")
    await page.click("form[action$='/resolve'] button")
    await page.wait_for_load_state()
    assert "No open alerts." in await page.inner_text("main")
    await page.click("nav.langs a[hreflang='zh-Hans']")
    await page.wait_for_load_state()
    assert await page.get_attribute("html", "lang") == "zh-Hans"
    assert "没有未处理的警报" in await page.inner_text("main")
    await page.screenshot(path=str(SCREENSHOTS / "dashboard-alerts-zh-Hans-1280.png"), full_page=True)
    await page.click("header.dash button")
    await page.wait_for_load_state()
    assert page.url.endswith("/dashboard/login")
