"""The seller dashboard over HTTP: sign-in, CSRF, isolation between sellers, every page."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import update
from sqlmodel import select

from tests.conftest import Account, FakeClock, make_account, make_settings, shipment_body
from tracker import keys
from tracker.app import create_app
from tracker.models import Alert, Declaration, Shipment, WebhookDelivery, WebhookMessage, new_id
from tracker.settings import DatabaseSettings

Client = TestClient  # type: ignore[type-arg]
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def csrf_of(client: Client, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, path
    match = CSRF.search(await response.text())
    assert match is not None
    return match.group(1)


async def sign_in(client: Client, account: Account) -> aiohttp.ClientResponse:
    token = await csrf_of(client, "/dashboard/login")
    return await client.post(
        "/dashboard/login", data={"csrf": token, "api_key": account.api_key}, allow_redirects=False
    )


async def signed_in(client: Client, account: Account) -> str:
    """Sign in and return the session's CSRF token."""
    assert (await sign_in(client, account)).status == 303
    return await csrf_of(client, "/dashboard/shipments")


async def create(client: Client, account: Account, n: int, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/v1/shipments", json=shipment_body(n, **overrides), headers=account.headers)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def open_alert(app: web.Application, clock: FakeClock, account: Account, shipment_id: str, kind: str) -> str:
    alert_id = new_id("alt")
    async with app[keys.SESSIONMAKER]() as session:
        session.add(
            Alert(id=alert_id, seller_id=account.seller_id, shipment_id=shipment_id, kind=kind, opened_at=clock())
        )
        await session.commit()
    return alert_id


async def test_sign_in_cookie_is_hardened_and_sign_out_ends_it(client: Client, seller: Account) -> None:
    response = await sign_in(client, seller)
    assert response.status == 303
    assert response.headers["Location"] == "/dashboard/shipments"
    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith("dashboard_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/dashboard" in cookie
    assert "Secure" not in cookie  # the public URL is http here
    assert seller.api_key not in cookie
    token = await csrf_of(client, "/dashboard/shipments")
    # sign-out is a form too: without the token it is refused
    assert (await client.post("/dashboard/logout", data={}, allow_redirects=False)).status == 403
    response = await client.post("/dashboard/logout", data={"csrf": token}, allow_redirects=False)
    assert response.status == 303
    response = await client.get("/dashboard/shipments", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/dashboard/login")


async def test_cookie_is_secure_behind_https(aiohttp_client: Any, database: DatabaseSettings, clock: FakeClock) -> None:
    app = create_app(make_settings(database, server={"public_url": "https://tracker.example"}), clock=clock)
    client = await aiohttp_client(app)
    account = await make_account(app, "Secure Co", clock)
    form = await client.get("/dashboard/login")
    login_cookie = next(v for v in form.headers.getall("Set-Cookie") if v.startswith("dashboard_csrf="))
    assert "Secure" in login_cookie
    token = CSRF.search(await form.text()).group(1)  # type: ignore[union-attr]
    # the client's jar keeps Secure cookies off plain http, so the cookie goes by hand
    response = await client.post(
        "/dashboard/login",
        data={"csrf": token, "api_key": account.api_key},
        headers={"Cookie": f"dashboard_csrf={token}"},
        allow_redirects=False,
    )
    assert response.status == 303
    cookie = next(v for v in response.headers.getall("Set-Cookie") if v.startswith("dashboard_session="))
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


async def test_sign_in_refusals(client: Client, app: web.Application, clock: FakeClock, seller: Account) -> None:
    # no login token (cross-site post): refused before the key is even looked at
    response = await client.post("/dashboard/login", data={"api_key": seller.api_key}, allow_redirects=False)
    assert response.status == 403
    token = await csrf_of(client, "/dashboard/login")
    response = await client.post("/dashboard/login", data={"csrf": token, "api_key": "trk_00000000_nope"})
    assert response.status == 401
    assert "cannot open the dashboard" in await response.text()
    writer_only = await make_account(app, "No Read", clock, scopes=("shipments:write",))
    assert (await sign_in(client, writer_only)).status == 401


async def test_session_ends_when_the_key_is_revoked_or_expires(
    client: Client, app: web.Application, clock: FakeClock, seller: Account
) -> None:
    await signed_in(client, seller)
    clock.advance(hours=13)
    response = await client.get("/dashboard/shipments", allow_redirects=False)
    assert response.status == 303
    clock.advance(hours=-13)
    assert (await client.get("/dashboard/shipments", allow_redirects=False)).status == 200
    from tracker.store import sellers as seller_store

    async with app[keys.SESSIONMAKER]() as session:
        await seller_store.revoke_key(session, seller.key_id, now=clock())
        await session.commit()
    assert (await client.get("/dashboard/shipments", allow_redirects=False)).status == 303


async def test_a_seller_sees_only_its_own_data(
    client: Client, app: web.Application, clock: FakeClock, seller: Account, other_seller: Account
) -> None:
    mine = await create(client, seller, 1)
    theirs = await create(client, other_seller, 2)
    their_alert = await open_alert(app, clock, other_seller, theirs["id"], "stalled")
    token = await signed_in(client, seller)
    text = await (await client.get("/dashboard/shipments")).text()
    assert mine["tracking_number"] in text
    assert theirs["tracking_number"] not in text
    # searching for the other seller's number finds nothing
    text = await (await client.get("/dashboard/shipments", params={"q": theirs["tracking_number"]})).text()
    assert f">{theirs['tracking_number']}</a>" not in text
    assert "No shipments match." in text
    assert (await client.get(f"/dashboard/shipments/{theirs['id']}")).status == 404
    assert (await client.get(f"/dashboard/shipments/{mine['id']}")).status == 200
    response = await client.post(f"/dashboard/alerts/{their_alert}/acknowledge", data={"csrf": token})
    assert response.status == 404
    assert their_alert not in await (await client.get("/dashboard/alerts")).text()


async def test_shipment_list_filters_chips_search_and_pages(
    client: Client, app: web.Application, clock: FakeClock, seller: Account
) -> None:
    made = [await create(client, seller, n) for n in range(1, 28)]
    async with app[keys.SESSIONMAKER]() as session:
        await session.exec(
            update(Shipment).where(Shipment.id == made[0]["id"]).values(status="delivered", carrier="dhl")
        )
        await session.commit()
    await open_alert(app, clock, seller, made[-1]["id"], "pending_too_long")
    await signed_in(client, seller)
    first = await (await client.get("/dashboard/shipments")).text()
    assert first.count('href="/dashboard/shipments/shp_') == 25
    assert "Delivered (1)" in first
    assert "Waiting for the carrier (26)" in first
    assert "pending_too_long" in first
    next_link = re.search(r'href="/dashboard/shipments\?(cursor=[^"]+)" rel="next"', first)
    assert next_link is not None
    second = await (await client.get("/dashboard/shipments?" + next_link.group(1).replace("&amp;", "&"))).text()
    assert second.count('href="/dashboard/shipments/shp_') == 2
    only = await (await client.get("/dashboard/shipments", params={"status": "delivered"})).text()
    assert only.count('href="/dashboard/shipments/shp_') == 1
    assert made[0]["tracking_number"] in only
    alerting = await (await client.get("/dashboard/shipments", params={"alert": "yes"})).text()
    assert alerting.count('href="/dashboard/shipments/shp_') == 1
    assert made[-1]["tracking_number"] in alerting
    by_carrier = await (await client.get("/dashboard/shipments", params={"carrier": "dhl"})).text()
    assert by_carrier.count('href="/dashboard/shipments/shp_') == 1
    tomorrow = (clock() + timedelta(days=1)).date().isoformat()
    later = await (await client.get("/dashboard/shipments", params={"from": tomorrow})).text()
    assert "No shipments match." in later
    found = await (await client.get("/dashboard/shipments", params={"q": made[5]["order_number"]})).text()
    assert found.count('href="/dashboard/shipments/shp_') == 1
    assert made[5]["tracking_number"] in found
    found = await (await client.get("/dashboard/shipments", params={"q": made[6]["tracking_number"].lower()})).text()
    assert made[6]["tracking_number"] in found


async def test_alert_handling_through_the_forms(
    client: Client, app: web.Application, clock: FakeClock, seller: Account
) -> None:
    s = await create(client, seller, 1)
    alert_id = await open_alert(app, clock, seller, s["id"], "lost")
    token = await signed_in(client, seller)
    queue = await (await client.get("/dashboard/alerts")).text()
    assert f"/dashboard/alerts/{alert_id}/resolve" in queue
    assert (await client.post(f"/dashboard/alerts/{alert_id}/acknowledge", data={"note": "x"})).status == 403
    assert (
        await client.post(f"/dashboard/alerts/{alert_id}/acknowledge", data={"csrf": token + "x", "note": "x"})
    ).status == 403
    response = await client.post(
        f"/dashboard/alerts/{alert_id}/acknowledge",
        data={"csrf": token, "note": "asked the carrier", "next": f"/dashboard/shipments/{s['id']}"},
        allow_redirects=False,
    )
    assert (response.status, response.headers["Location"]) == (303, f"/dashboard/shipments/{s['id']}")
    response = await client.post(
        f"/dashboard/alerts/{alert_id}/resolve",
        data={"csrf": token, "action": "refunded", "note": "refund 12 EUR", "next": "https://evil.example/"},
        allow_redirects=False,
    )
    assert (response.status, response.headers["Location"]) == (303, "/dashboard/alerts")
    async with app[keys.SESSIONMAKER]() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        assert (alert.state, alert.resolution, alert.note) == ("resolved", "refunded", "refund 12 EUR")
        assert alert.acknowledged_at is not None
        types = list(await session.exec(select(WebhookMessage.event_type).where(WebhookMessage.shipment_id == s["id"])))
    assert "alert.resolved" in types
    assert f"/dashboard/alerts/{alert_id}/resolve" not in await (await client.get("/dashboard/alerts")).text()
    assert (
        await client.post(f"/dashboard/alerts/{alert_id}/resolve", data={"csrf": token, "action": "other"})
    ).status == 409
    page = await (await client.get(f"/dashboard/shipments/{s['id']}")).text()
    assert "refund 12 EUR" in page
    assert "shipment.created" in page
    assert "shipped" in page


async def test_alert_actions_need_the_scope(
    client: Client, app: web.Application, clock: FakeClock, seller: Account
) -> None:
    s = await create(client, seller, 1)
    alert_id = await open_alert(app, clock, seller, s["id"], "stalled")
    reader = await make_account(app, "Reader", clock, scopes=("shipments:read",))
    async with app[keys.SESSIONMAKER]() as session:
        await session.exec(update(Alert).where(Alert.id == alert_id).values(seller_id=reader.seller_id))
        await session.exec(update(Shipment).where(Shipment.id == s["id"]).values(seller_id=reader.seller_id))
        await session.commit()
    token = await signed_in(client, reader)
    response = await client.post(f"/dashboard/alerts/{alert_id}/acknowledge", data={"csrf": token})
    assert response.status == 403


async def test_webhook_log_and_redeliver(client: Client, app: web.Application, seller: Account) -> None:
    response = await client.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:8000/hook"}, headers=seller.headers
    )
    assert response.status == 201
    s = await create(client, seller, 1)
    token = await signed_in(client, seller)
    page = await (await client.get("/dashboard/webhooks")).text()
    assert "http://127.0.0.1:8000/hook" in page
    assert "shipment.created" in page
    async with app[keys.SESSIONMAKER]() as session:
        message = (await session.exec(select(WebhookMessage).where(WebhookMessage.shipment_id == s["id"]))).one()
        await session.exec(
            update(WebhookDelivery).where(WebhookDelivery.message_id == message.id).values(state="failed", attempts=9)
        )
        await session.commit()
    assert (await client.post(f"/dashboard/webhooks/messages/{message.id}/redeliver", data={})).status == 403
    response = await client.post(
        f"/dashboard/webhooks/messages/{message.id}/redeliver", data={"csrf": token}, allow_redirects=False
    )
    assert response.status == 303
    async with app[keys.SESSIONMAKER]() as session:
        delivery = (await session.exec(select(WebhookDelivery).where(WebhookDelivery.message_id == message.id))).one()
    assert (delivery.state, delivery.attempts) == ("pending", 0)


async def test_customs_dossiers_awaiting_action(
    client: Client, app: web.Application, clock: FakeClock, seller: Account
) -> None:
    s = await create(client, seller, 1)
    async with app[keys.SESSIONMAKER]() as session:
        for status in ("validated", "released"):
            session.add(
                Declaration(
                    id=new_id("dcl"),
                    seller_id=seller.seller_id,
                    shipment_id=s["id"],
                    status=status,
                    currency="USD",
                    total_value="42.00",
                    created_at=clock(),
                    updated_at=clock(),
                )
            )
        await session.commit()
    await signed_in(client, seller)
    page = await (await client.get("/dashboard/customs")).text()
    assert "validated" in page
    assert "released" not in page
    assert f'href="/dashboard/shipments/{s["id"]}"' in page


async def test_analytics_page_charts_and_csv(
    client: Client, app: web.Application, clock: FakeClock, seller: Account
) -> None:
    made = [await create(client, seller, n, carrier="dhl", origin_country="CN") for n in range(1, 5)]
    async with app[keys.SESSIONMAKER]() as session:
        for i, s in enumerate(made[:3]):
            await session.exec(
                update(Shipment)
                .where(Shipment.id == s["id"])
                .values(
                    status="delivered",
                    first_event_at=clock() + timedelta(hours=10),
                    delivered_at=clock() + timedelta(days=4 + i),
                    promised_delivery=(clock() + timedelta(days=5)).date(),
                )
            )
        await session.commit()
    await signed_in(client, seller)
    page = await (await client.get("/dashboard/analytics")).text()
    assert page.count("<svg") == 5
    assert "<title" in page
    assert "<desc" in page
    assert "dhl CN→US" in page
    response = await client.get("/dashboard/analytics.csv")
    assert response.status == 200
    assert response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert len(rows) == 1
    row = rows[0]
    # delivered after 4, 5, 6 days against a promise of day 5: two of three on time
    assert (row["carrier"], row["shipments"], row["delivered"]) == ("dhl", "4", "3")
    assert float(row["on_time_rate"]) == pytest.approx(2 / 3, abs=1e-4)
    assert float(row["transit_p50_days"]) == pytest.approx(5 - 10 / 24, abs=1e-3)
    assert (
        await client.get("/dashboard/analytics.csv", params={"from": "2020-01-01", "to": "2020-02-01"})
    ).status == 200


async def test_pages_speak_chinese(client: Client, seller: Account) -> None:
    await signed_in(client, seller)
    response = await client.get("/dashboard/shipments", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    text = await response.text()
    assert '<html lang="zh-Hans">' in text
    assert "货件" in text
    assert "退出登录" in text
    response = await client.get("/dashboard/analytics?lang=zh-Hans")
    assert "准时送达" in await response.text() or "没有" in await response.text()
    assert (await client.get("/dashboard/login?lang=en", allow_redirects=False)).status == 303


async def test_csv_upload(client: Client, app: web.Application, seller: Account) -> None:
    token = await signed_in(client, seller)
    body = (
        "tracking_number,order_number,dest_country,customer_email\n"
        "LX123456785CN,U-1,DE,a@example.com\nLX123456786CN,U-2,FR,b@example.com\n"
    )

    def form(csrf: str, text: str, **extra: str) -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("csrf", csrf)
        for k, v in extra.items():
            data.add_field(k, v)
        data.add_field("file", text.encode(), filename="orders.csv", content_type="text/csv")
        return data

    assert (await client.post("/dashboard/import", data=form("bad", body))).status == 403
    response = await client.post("/dashboard/import", data=form(token, body))
    assert response.status == 200
    assert "Imported: 2" in await response.text()
    again = await client.post("/dashboard/import", data=form(token, body))
    assert "Skipped (already registered): 2" in await again.text()
    bad = await client.post("/dashboard/import", data=form(token, body + "x,U-3,ZZ,\n"))
    assert bad.status == 422
    text = await bad.text()
    assert "Nothing imported" in text
    assert '<td class="num">4</td><td>dest_country</td>' in text
    skipped = await client.post("/dashboard/import", data=form(token, body + "x,U-3,ZZ,\n", skip_invalid="1"))
    assert skipped.status == 200
    async with app[keys.SESSIONMAKER]() as session:
        rows = list(await session.exec(select(Shipment).where(Shipment.seller_id == seller.seller_id)))
    assert len(rows) == 2
    unknown = await client.post("/dashboard/import", data=form(token, "a,b\n1,2\n"))
    assert unknown.status == 422
    assert "Unknown column set" in await unknown.text()
