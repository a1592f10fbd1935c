"""Nothing personal leaves the public routes, and a number lookup cannot tell an unknown
number from a wrong postcode or email (DESIGN §9, reliability-security §3)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import FakeClock, make_account
from tests.web.test_tracking_pages import CN_DE, Ev, Seed, seed
from tracker import i18n

Client = TestClient  # type: ignore[type-arg]

NAME = "Zebulon Quixote-Marchetti"
EMAIL = "zq.canary-7731@privacy-canary.example"
PHONE = "+44 7700 900461"
ADDRESS = "42 Canarywharf Lane, Flat 9"
POSTCODE = "ZX9 8QW"
SIGNER = "ZEBULON QUIXOTE"

#: every way the seeded details could surface, compared case-insensitively
NEEDLES = [
    NAME,
    "Zebulon",
    "Quixote",
    "Marchetti",
    EMAIL,
    "zq.canary-7731",
    "privacy-canary",
    PHONE,
    "7700900461",
    "7700 900461",
    "900461",
    "Canarywharf",
    ADDRESS,
    POSTCODE,
    "ZX98QW",
    SIGNER,
]


def leaks(body: str) -> list[str]:
    folded = body.casefold()
    return [n for n in NEEDLES if n.casefold() in folded]


@pytest.fixture
async def canary(client: Client, app: web.Application, clock: FakeClock) -> tuple[str, str]:
    account = await make_account(app, "Privacy Shop", clock)
    events = [
        *CN_DE,
        Ev(
            datetime(2026, 3, 4, 9, 0, tzinfo=UTC),
            "out_for_delivery",
            "out_for_delivery",
            f"Out for delivery to {NAME}, {ADDRESS}, tel. 07700 900461",
            "London",
            "GB",
            0,
            postcode=POSTCODE,
        ),
        Ev(
            datetime(2026, 3, 4, 15, 0, tzinfo=UTC),
            "delivered",
            "signed",
            f"Delivered, signed by {SIGNER} at {ADDRESS} {POSTCODE}",
            "London",
            "GB",
            0,
            region="Greater London",
            postcode=POSTCODE,
        ),
    ]
    shipment = await seed(
        app,
        clock,
        account.seller_id,
        Seed(
            number="CANARY0000001GB",
            order="PRIV-1",
            status="delivered",
            sub_status="signed",
            dest="GB",
            postcode=POSTCODE,
            email=EMAIL,
            name=NAME,
            phone=PHONE,
            address=ADDRESS,
            events=events,
        ),
    )
    from sqlmodel import select

    from tracker import keys
    from tracker.models import Shipment

    async with app[keys.SESSIONMAKER]() as session:
        row = (await session.exec(select(Shipment).where(Shipment.id == shipment.id))).one()
        row.signed_by = SIGNER
        session.add(row)
        await session.commit()
    return shipment.public_token, shipment.tracking_number


async def test_no_personal_data_in_any_public_response(client: Client, canary: tuple[str, str]) -> None:
    token, number = canary
    seen: list[tuple[str, int, str]] = []

    async def fetch(method: str, path: str, **kwargs: object) -> None:
        r = await client.request(method, path, allow_redirects=False, **kwargs)  # type: ignore[arg-type]
        seen.append((f"{method} {path} {kwargs.get('data', '')}", r.status, await r.text()))

    for lang in i18n.LANGUAGES:
        await fetch("GET", f"/t/{token}?lang={lang}")
        await fetch("GET", f"/api/public/track/{token}?lang={lang}")
    await fetch("GET", "/track")
    await fetch("POST", "/track", data={"number": number, "postcode": POSTCODE})
    await fetch("POST", "/track", data={"number": number, "email": EMAIL})
    await fetch("POST", "/track", data={"number": number, "postcode": "WR0 NG1"})
    await fetch("POST", "/track", data={"number": number})
    await fetch("GET", f"/track?number={number}&postcode=WR0NG1")
    await fetch("POST", f"/t/{token}/confirm", headers={"Sec-Fetch-Site": "cross-site"})
    await fetch("POST", f"/t/{token}/confirm", headers={"Sec-Fetch-Site": "same-origin"})
    await fetch("GET", f"/t/{token}")
    await fetch("GET", f"/api/public/track/{token}")
    await fetch("GET", "/t/unknown-token")
    # the seeded details really are in the database: the seller's own API shows them
    statuses = {s for _, s, _ in seen}
    assert statuses >= {200, 303, 403, 404}
    assert all(leaks(body) == [] for _, _, body in seen), [(w, leaks(b)) for w, _, b in seen if leaks(b)]
    # the carrier's texts are still shown, with the customer's details scrubbed
    page = next(b for w, s, b in seen if w.startswith(f"GET /t/{token}?lang=en"))
    assert "Delivered, signed by *** at *** ***" in page
    assert "London, Greater London, United Kingdom" in page


async def test_json_has_no_personal_fields(client: Client, canary: tuple[str, str]) -> None:
    token, _ = canary
    body = await (await client.get(f"/api/public/track/{token}")).json()
    keys_seen: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                keys_seen.add(k)
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(body)
    personal = {
        "customer",
        "name_of_recipient",
        "email",
        "customer_email",
        "phone",
        "address",
        "postcode",
        "signed_by",
        "customer_name",
        "dest_address",
        "dest_postcode",
        "dest_city",
        "order_number",
    }
    assert keys_seen & personal == set()


async def test_unknown_number_and_wrong_second_factor_answer_identically(
    client: Client, canary: tuple[str, str], clock: FakeClock
) -> None:
    _, number = canary
    attempts = [
        {"number": "UNKNOWN00000GB", "postcode": "WR0 NG1"},
        {"number": number, "postcode": "WR0 NG1"},
        {"number": number, "email": "someone.else@example.net"},
        {"number": "UNKNOWN00000GB", "email": EMAIL},
        {"number": "PRIV-1", "postcode": "AB1 2CD"},
    ]
    answers = []
    for data in attempts:
        r = await client.post("/track", data=data, headers={"Accept-Language": "es"})
        headers = {k: v for k, v in r.headers.items() if k.lower() not in ("date", "content-length", "x-request-id")}
        answers.append((r.status, headers, await r.read()))
    assert answers[0][0] == 404
    assert all(a == answers[0] for a in answers[1:]), [(a[0], a[1]) for a in answers]
    for data in attempts:
        r = await client.get("/track", params=data, headers={"Accept-Language": "es"})
        assert (r.status, await r.read()) == (answers[0][0], answers[0][2])
    # and the right answer does find it, once the per-IP lookup limit has refilled
    clock.advance(minutes=1)
    ok = await client.post("/track", data={"number": number, "postcode": "zx98qw"}, allow_redirects=False)
    assert ok.status == 303


async def test_event_postcodes_are_never_shown(client: Client, canary: tuple[str, str]) -> None:
    token, _ = canary
    body = await (await client.get(f"/api/public/track/{token}")).json()
    for event in body["events"]:
        assert "postcode" not in event["location"]
        assert not re.search(r"ZX9", event["place"] + event["description"])
