"""/v1/declarations: dossiers from a shipment or whole, the clerk workflow, PDFs and /clerk."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from pypdf import PdfReader
from sqlmodel import select

from tests.conftest import Account, FakeClock, shipment_body
from tests.customs import body, header
from tracker import keys
from tracker.models import TrackingEvent, WebhookMessage
from tracker.store import sellers as seller_store

Client = TestClient  # type: ignore[type-arg]
ENTRY = "530020260123456789"


async def clerk_for(app: web.Application, seller: Account, clock: FakeClock) -> Account:
    async with app[keys.SESSIONMAKER]() as session:
        key = await seller_store.create_key(session, seller.seller_id, ("declarations:review",), now=clock())
        await session.commit()
    return Account(seller.seller_id, key.api_key, key.id)


async def create(client: Client, seller: Account, payload: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post("/v1/declarations", json=payload, headers=seller.headers)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def validated(client: Client, seller: Account, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    decl = await create(client, seller, payload or body())
    resp = await client.post(f"/v1/declarations/{decl['id']}/validate", headers=seller.headers)
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def messages(app: web.Application, seller_id: str) -> list[dict[str, Any]]:
    async with app[keys.SESSIONMAKER]() as session:
        rows = await session.exec(
            select(WebhookMessage).where(
                WebhookMessage.seller_id == seller_id, WebhookMessage.event_type == "declaration.status_changed"
            )
        )
        return [json.loads(r.payload)["data"] for r in rows]


async def test_from_a_shipment_lines_come_from_the_order(client: Client, seller: Account) -> None:
    items = [
        {
            "sku": "TS-001",
            "description": "Men's cotton knitted T-shirt",
            "quantity": 2,
            "unit_price": "12.50",
            "currency": "USD",
            "hs_code": "6109100021",
        },
        {
            "sku": "BAG-7",
            "description": "Polyester fabric handbag",
            "quantity": 1,
            "unit_price": "30.00",
            "currency": "USD",
            "hs_code": "4202220000",
        },
    ]
    shp = await (await client.post("/v1/shipments", json=shipment_body(1, items=items), headers=seller.headers)).json()
    h = header()
    for key in ("order_number", "waybill_number", "consignee"):
        h.pop(key)
    decl = await create(client, seller, {"shipment_id": shp["id"], "header": h})
    assert decl["currency"] == "USD"
    assert decl["status"] == "draft"
    assert decl["header"]["order_number"] == "ORD-00001"
    assert decl["header"]["waybill_number"] == "TRK0000000001"
    assert decl["header"]["consignee"]["country"] == "US"
    assert [(x["sku"], x["quantity"], x["total"]) for x in decl["lines"]] == [
        ("TS-001", "2", "25.00"),
        ("BAG-7", "1", "30.00"),
    ]
    # the order lacks customs details: validation names what is missing, in both languages
    resp = await client.post(f"/v1/declarations/{decl['id']}/validate", headers=seller.headers)
    assert resp.status == 422
    problem = await resp.json()
    paths = {e["path"] for e in problem["errors"]}
    assert {"lines[0].net_weight_kg", "lines[0].origin_country"} <= paths
    assert all(e["message_zh"] for e in problem["errors"])
    # corrected with PATCH, keeping the order's quantities and prices
    from tests.customs import lines as sample_lines

    resp = await client.patch(f"/v1/declarations/{decl['id']}", json={"lines": sample_lines()}, headers=seller.headers)
    assert resp.status == 200
    ok = await client.post(f"/v1/declarations/{decl['id']}/validate", headers=seller.headers)
    assert ok.status == 200, await ok.text()
    assert (await ok.json())["status"] == "validated"
    # a line that no longer matches the order is caught
    changed = sample_lines()
    changed[0].update(quantity="3", total="37.50")
    await client.patch(f"/v1/declarations/{decl['id']}", json={"lines": changed}, headers=seller.headers)
    bad = await (await client.post(f"/v1/declarations/{decl['id']}/validate", headers=seller.headers)).json()
    assert "match.quantity" in {e["rule"] for e in bad["errors"]}


async def test_the_whole_workflow_is_audited(
    client: Client, app: web.Application, seller: Account, clock: FakeClock
) -> None:
    clerk = await clerk_for(app, seller, clock)
    decl = await validated(client, seller)
    did = decl["id"]
    assert decl["postal_form"] == "cn22"
    assert decl["documents"]["cn22"]["ready"]
    # the author's key cannot approve, even with the review scope
    both = await clerk_for(app, seller, clock)
    same = await client.post(f"/v1/declarations/{did}/approve", headers=seller.headers)
    assert same.status == 409
    assert (await same.json())["type"].endswith("same-key-approval")
    assert both.key_id != seller.key_id
    early = await client.post(f"/v1/declarations/{did}/submit", json={"entry_number": ENTRY}, headers=clerk.headers)
    assert early.status == 409
    clock.advance(minutes=5)
    assert (await client.post(f"/v1/declarations/{did}/approve", headers=clerk.headers)).status == 200
    for wrong in ("53002026012345678", "530020261123456789", "530019990123456789", "53002026012345678X"):
        resp = await client.post(f"/v1/declarations/{did}/submit", json={"entry_number": wrong}, headers=clerk.headers)
        assert resp.status == 422, wrong
    clock.advance(minutes=5)
    resp = await client.post(f"/v1/declarations/{did}/submit", json={"entry_number": ENTRY}, headers=clerk.headers)
    assert resp.status == 200
    assert (await resp.json())["entry_number"] == ENTRY
    # edits are over once approved
    assert (
        await client.patch(f"/v1/declarations/{did}", json={"currency": "EUR"}, headers=seller.headers)
    ).status == 409
    clock.advance(hours=2)
    released = await (await client.post(f"/v1/declarations/{did}/release", headers=clerk.headers)).json()
    assert released["status"] == "released"
    again = await client.post(f"/v1/declarations/{did}/release", headers=clerk.headers)
    assert again.status == 409
    assert (await again.json())["status"] == 409
    actions = [(a["action"], a["actor"]) for a in released["audit"]]
    seller_prefix, clerk_prefix = seller.api_key[:12], clerk.api_key[:12]
    assert actions == [
        ("declaration.created", seller_prefix),
        ("declaration.validated", seller_prefix),
        ("declaration.approved", clerk_prefix),
        ("declaration.submitted", clerk_prefix),
        ("declaration.released", clerk_prefix),
    ]
    assert released["audit"][-1]["at"].startswith("2026-03-02T10:10")
    moves = [(m["from"], m["to"]) for m in await messages(app, seller.seller_id)]
    assert moves == [
        ("draft", "validated"),
        ("validated", "approved"),
        ("approved", "submitted"),
        ("submitted", "released"),
    ]


async def test_rejected_goes_back_to_the_seller(
    client: Client, app: web.Application, seller: Account, clock: FakeClock
) -> None:
    clerk = await clerk_for(app, seller, clock)
    did = (await validated(client, seller))["id"]
    short = await client.post(f"/v1/declarations/{did}/reject", json={"reason": ""}, headers=clerk.headers)
    assert short.status == 422
    resp = await client.post(
        f"/v1/declarations/{did}/reject", json={"reason": "HS code of line 2 is wrong"}, headers=clerk.headers
    )
    rejected = await resp.json()
    assert rejected["status"] == "rejected"
    assert rejected["reject_reason"] == "HS code of line 2 is wrong"
    assert (await client.post(f"/v1/declarations/{did}/approve", headers=clerk.headers)).status == 409
    # the clerk no longer sees it; the seller corrects it and it is a draft again
    assert (await client.get(f"/v1/declarations/{did}", headers=clerk.headers)).status == 403
    fixed = await (
        await client.patch(f"/v1/declarations/{did}", json={"header": {"marks": "N/M"}}, headers=seller.headers)
    ).json()
    assert fixed["status"] == "draft"
    assert fixed["validation"] is None
    assert (await client.post(f"/v1/declarations/{did}/validate", headers=seller.headers)).status == 200
    queue = await (await client.get("/v1/declarations/review-queue", headers=clerk.headers)).json()
    assert [d["id"] for d in queue["data"]] == [did]
    moves = [m["to"] for m in await messages(app, seller.seller_id)]
    assert moves == ["validated", "rejected", "draft", "validated"]


async def test_cn22_over_300_sdr_points_to_cn23(client: Client, seller: Account) -> None:
    payload = body()
    payload["lines"][1].update(unit_price="400.00", total="400.00")
    decl = await validated(client, seller, payload)
    assert decl["postal_form"] == "cn23"
    assert decl["documents"]["cn22"]["applies"] is False
    assert decl["documents"]["cn23"]["applies"] is True
    resp = await client.get(f"/v1/declarations/{decl['id']}/documents/cn22.pdf", headers=seller.headers)
    assert resp.status == 422
    problem = await resp.json()
    assert "cn23" in problem["detail"]
    assert "300 SDR" in problem["detail"]
    assert problem["applies"] == "cn23"


async def test_documents_download_with_etag(
    client: Client, app: web.Application, seller: Account, clock: FakeClock
) -> None:
    draft = await create(client, seller, body())
    early = await client.get(f"/v1/declarations/{draft['id']}/documents/cn22.pdf", headers=seller.headers)
    assert early.status == 409
    decl = await validated(client, seller)
    url = f"/v1/declarations/{decl['id']}/documents/cn_export_declaration.pdf"
    resp = await client.get(url, headers=seller.headers)
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="cn_export_declaration-INV-2026-0001.pdf"'
    etag = resp.headers["ETag"]
    reader = PdfReader(io.BytesIO(await resp.read()))
    attached = json.loads(reader.attachments["dossier.json"][0])
    assert attached["id"] == decl["id"]
    assert attached["lines"][0]["hs_code"] == "6109100021"
    assert "出口货物报关单" in reader.pages[0].extract_text()
    clerk = await clerk_for(app, seller, clock)
    cached = await client.get(url, headers={**clerk.headers, "If-None-Match": etag})
    assert cached.status == 304
    assert cached.headers["ETag"] == etag
    unknown = await client.get(f"/v1/declarations/{decl['id']}/documents/invoice.pdf", headers=seller.headers)
    assert unknown.status == 404


async def test_customs_release_event_is_shown(
    client: Client, app: web.Application, seller: Account, clock: FakeClock
) -> None:
    shp = await (await client.post("/v1/shipments", json=shipment_body(2), headers=seller.headers)).json()
    payload = body(order_number="ORD-00002", waybill_number="TRK0000000002")
    payload["shipment_id"] = shp["id"]
    decl = await create(client, seller, payload)
    assert decl["customs_release"] is None
    async with app[keys.SESSIONMAKER]() as session:
        session.add(
            TrackingEvent(
                shipment_id=shp["id"],
                fingerprint="f1",
                occurred_at=clock(),
                time_basis="utc_given",
                local_time="2026-03-02T08:00",
                status="in_transit",
                sub_status="customs_released",
                raw_code="CR",
                description="Released by customs",
                city="Los Angeles",
                country="US",
                recorded_at=clock(),
            )
        )
        await session.commit()
    got = await (await client.get(f"/v1/declarations/{decl['id']}", headers=seller.headers)).json()
    assert got["customs_release"]["description"] == "Released by customs"
    assert got["customs_release"]["location"] == "Los Angeles, US"


async def test_posting_without_lines_or_shipment_is_refused(client: Client, seller: Account) -> None:
    resp = await client.post("/v1/declarations", json={"header": header()}, headers=seller.headers)
    assert resp.status == 422
    typo = await client.post("/v1/declarations", json={**body(), "heder": {}}, headers=seller.headers)
    assert typo.status == 422


async def test_clerk_page_sign_in_list_and_download(
    client: Client, app: web.Application, seller: Account, clock: FakeClock
) -> None:
    clerk = await clerk_for(app, seller, clock)
    decl = await validated(client, seller)
    page = await client.get("/clerk")
    html = await page.text()
    token = re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    # a form posted without the token's cookie is refused
    client.session.cookie_jar.clear()
    forged = await client.post("/clerk/login", data={"api_key": clerk.api_key, "csrf": token}, allow_redirects=False)
    assert forged.status == 403
    page = await client.get("/clerk")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)  # type: ignore[union-attr]
    async with app[keys.SESSIONMAKER]() as session:
        writer = await seller_store.create_key(session, seller.seller_id, ("declarations:write",), now=clock())
        await session.commit()
    seller_key = await client.post(
        "/clerk/login", data={"api_key": writer.api_key, "csrf": token}, allow_redirects=False
    )
    assert seller_key.status == 303
    assert "error" in seller_key.headers["Location"]
    page = await client.get("/clerk")
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)  # type: ignore[union-attr]
    resp = await client.post("/clerk/login", data={"api_key": clerk.api_key, "csrf": token}, allow_redirects=False)
    assert resp.status == 303
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert clerk.api_key not in cookie
    listing = await (await client.get("/clerk")).text()
    assert decl["id"] in listing
    assert "valid" in listing
    link = f"/clerk/declarations/{decl['id']}/documents/commercial_invoice.pdf"
    assert link in listing
    pdf = await client.get(link)
    assert pdf.status == 200
    assert (await pdf.read()).startswith(b"%PDF")
    # revoking the key ends the session
    async with app[keys.SESSIONMAKER]() as session:
        await seller_store.revoke_key(session, clerk.key_id, now=clock())
        await session.commit()
    after = await client.get("/clerk")
    assert "Sign in" in await after.text()
