"""The tracking pages in a real browser: rendering, language switcher, lookup form,
receipt confirmation, mobile layout and accessibility (axe-core)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import AXE, SCREENSHOTS, Live

pytestmark = pytest.mark.browser


def watch(page: Any) -> list[str]:
    """Console errors and uncaught exceptions of the page."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    return errors


async def test_page_renders_and_language_switcher_works(live: Live, browser_context: Any) -> None:
    page = await browser_context.new_page()
    errors = watch(page)
    await page.set_extra_http_headers({"Accept-Language": "en-US,en;q=0.9"})
    response = await page.goto(f"{live.base}/t/{live.token}")
    assert response.status == 200
    assert await page.get_attribute("html", "lang") == "en"
    assert await page.inner_text("h1") == "In transit"
    assert "Being processed by customs" in await page.inner_text("main")
    assert await page.locator("ol.timeline li").count() == 3
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "tracking-en.png"), full_page=True)

    await page.click("nav.langs a[hreflang='zh-Hans']")
    await page.wait_for_load_state()
    assert page.url.endswith("?lang=zh-Hans")
    assert await page.get_attribute("html", "lang") == "zh-Hans"
    assert await page.inner_text("h1") == "运输中"
    assert "德国" in await page.inner_text("main")
    await page.screenshot(path=str(SCREENSHOTS / "tracking-zh-Hans.png"), full_page=True)

    # the choice sticks (cookie) over the browser's Accept-Language
    await page.goto(f"{live.base}/t/{live.token}")
    assert await page.get_attribute("html", "lang") == "zh-Hans"
    assert errors == []


async def test_lookup_form_and_receipt_confirmation(live: Live, browser_context: Any) -> None:
    page = await browser_context.new_page()
    errors = watch(page)
    await page.goto(f"{live.base}/track?lang=en")
    await page.fill("#number", live.number)
    await page.fill("#postcode", "00000")
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    assert "We could not find a parcel with these details." in await page.inner_text("main")
    # a wrong answer is a 404 document, which Chromium reports on the console; that is expected here
    errors.clear()

    await page.fill("#number", live.number.lower())
    await page.fill("#postcode", live.postcode)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    assert page.url == f"{live.base}/t/{live.token}"
    assert await page.inner_text("h1") == "In transit"

    await page.click("text=Confirm I received my parcel")
    await page.wait_for_load_state()
    assert page.url == f"{live.base}/t/{live.token}"
    assert "Thank you: you confirmed receipt on" in await page.inner_text("main")
    assert await page.locator("text=Confirm I received my parcel").count() == 0
    assert errors == []


@pytest.mark.parametrize(
    "path",
    ["/t/{token}?lang=en", "/t/{token}?lang=zh-Hans", "/t/{token}?lang=ru", "/t/{token}?lang=de", "/track?lang=fr"],
)
async def test_no_horizontal_scroll_at_375px(live: Live, browser_context: Any, path: str) -> None:
    page = await browser_context.new_page()
    await page.set_viewport_size({"width": 375, "height": 800})
    await page.goto(live.base + path.format(token=live.token))
    width = await page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 375
    if "zh-Hans" in path:
        await page.screenshot(path=str(SCREENSHOTS / "tracking-zh-Hans-375.png"), full_page=True)


@pytest.mark.parametrize(
    "path", ["/t/{token}?lang=en", "/t/{token}?lang=zh-Hans", "/track?lang=es", "/t/no-such-token?lang=ja"]
)
async def test_axe_finds_no_serious_violations(live: Live, browser_context: Any, path: str) -> None:
    page = await browser_context.new_page()
    await page.goto(live.base + path.format(token=live.token))
    # evaluated through the DevTools protocol, so the page's CSP (no scripts) stays as it is
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    violations = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    assert await page.evaluate("typeof axe.run") == "function"
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == []
