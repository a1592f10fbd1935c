"""Bad input gets a clear RFC 9457 answer naming the field, and nothing is stored."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Account, shipment_body


async def assert_problem(resp, status: int) -> dict:  # type: ignore[no-untyped-def, type-arg]
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    assert "Traceback" not in await resp.text()
    return body  # type: ignore[no-any-return]


async def count(client: TestClient, seller: Account) -> int:  # type: ignore[type-arg]
    return len((await (await client.get("/v1/shipments", headers=seller.headers)).json())["data"])


async def test_malformed_json(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    resp = await client.post(
        "/v1/shipments",
        data=b'{"tracking_number": ',
        headers={**seller.headers, "Content-Type": "application/json"},
    )
    body = await assert_problem(resp, 400)
    assert body["type"].endswith("/malformed-json")
    assert await count(client, seller) == 0


async def test_not_json_content_type(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    resp = await client.post(
        "/v1/shipments",
        data=b"tracking_number=1",
        headers={**seller.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    await assert_problem(resp, 415)


async def test_body_not_an_object(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    resp = await client.post("/v1/shipments", json=[1, 2], headers=seller.headers)
    body = await assert_problem(resp, 422)
    assert body["errors"][0]["path"] == "$"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"tracking_number": 12345}, "tracking_number"),
        ({"tracking_number": "ab"}, "tracking_number"),
        ({"order_number": ""}, "order_number"),
        ({"destination": {"country": "ZZ"}}, "destination.country"),
        ({"destination": {"country": "US", "floor": 3}}, "destination.floor"),
        ({"customer": {"email": "not-an-email"}}, "customer.email"),
        ({"customer": {"locale": "english please"}}, "customer.locale"),
        ({"promised_delivery": "2026-13-01"}, "promised_delivery"),
        ({"promised_delivery": "next tuesday"}, "promised_delivery"),
        ({"carrier": "pigeon"}, "carrier"),
        ({"unexpected": True}, "unexpected"),
        ({"items": [{"description": "Phone case", "quantity": "many"}]}, "items[0].quantity"),
    ],
)
async def test_invalid_fields_name_their_path(
    client: TestClient, seller: Account, change: dict, path: str
) -> None:  # type: ignore[type-arg]
    body = await assert_problem(
        await client.post("/v1/shipments", json=shipment_body(1, **change), headers=seller.headers), 422
    )
    assert path in [e["path"] for e in body["errors"]], body
    assert await count(client, seller) == 0


async def test_missing_required_fields(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    body = await assert_problem(await client.post("/v1/shipments", json={}, headers=seller.headers), 422)
    assert {e["path"] for e in body["errors"]} >= {"tracking_number", "order_number", "destination"}


async def test_oversized_body_is_413(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    big = shipment_body(1, items=[{"description": "x" * 400, "quantity": 1}] * 200)
    resp = await client.post("/v1/shipments", json=big, headers=seller.headers)
    await assert_problem(resp, 413)
    assert await count(client, seller) == 0


async def test_unknown_route_and_method(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    await assert_problem(await client.get("/v1/nothing-here", headers=seller.headers), 404)
    await assert_problem(await client.delete("/v1/shipments", headers=seller.headers), 405)


async def test_unknown_shipment(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    await assert_problem(await client.get("/v1/shipments/shp_missing", headers=seller.headers), 404)


async def test_bad_idempotency_key(client: TestClient, seller: Account) -> None:  # type: ignore[type-arg]
    resp = await client.post(
        "/v1/shipments", json=shipment_body(1), headers={**seller.headers, "Idempotency-Key": "k" * 300}
    )
    await assert_problem(resp, 400)
