"""Public tracking pages: content, languages, caching headers, receipt confirmation,
re-shipments, number lookup and rate limits, against a real database."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from babel.messages.pofile import read_po
from sqlmodel import select

from tests.conftest import FakeClock, make_account
from tracker import i18n, keys
from tracker.app import create_app
from tracker.models import AuditLog, Seller, Shipment, TrackingEvent, WebhookMessage
from tracker.settings import Settings
from tracker.store import shipments as shipment_store
from tracker.web.pages import tracking
from tracker.web.ratelimit_http import KeyedLimiter, PublicLimits

Client = TestClient  # type: ignore[type-arg]
NBSP = "\u202f"


@dataclass
class Ev:
    at: datetime
    status: str
    sub_status: str
    description: str
    city: str | None = None
    country: str | None = None
    offset: int | None = 0
    region: str | None = None
    postcode: str | None = None


@dataclass
class Seed:
    number: str = "JD014600006281234567"
    order: str = "ORD-1001"
    carrier: str | None = "dhl"
    status: str = "in_transit"
    sub_status: str = "customs_processing"
    origin: str | None = "CN"
    dest: str = "DE"
    postcode: str | None = "10115"
    email: str | None = "kunde@example.com"
    name: str | None = "Erika Mustermann"
    phone: str | None = "+49 30 1234567"
    address: str | None = "Musterstraße 1"
    eta: datetime | None = None
    eta_end: datetime | None = None
    replaces: str | None = None
    events: list[Ev] = field(default_factory=list)


CN_DE = [
    Ev(
        datetime(2026, 3, 1, 14, 5, tzinfo=UTC),
        "info_received",
        "label_created",
        "Shipment information received",
        "Shenzhen",
        "CN",
        480,
    ),
    Ev(datetime(2026, 3, 2, 2, 30, tzinfo=UTC), "in_transit", "departed", "Departed facility", "Shenzhen", "CN", 480),
    Ev(
        datetime(2026, 3, 3, 6, 15, tzinfo=UTC),
        "in_transit",
        "customs_processing",
        "Customs clearance started",
        "Leipzig",
        "DE",
        60,
    ),
]


async def seed(app: web.Application, clock: FakeClock, seller_id: str, s: Seed) -> Shipment:
    """A shipment and its timeline written straight into the database."""
    new = shipment_store.NewShipment(
        tracking_number=s.number,
        order_number=s.order,
        dest_country=s.dest,
        carrier=s.carrier,
        customer_name=s.name,
        customer_email=s.email,
        customer_phone=s.phone,
        dest_postcode=s.postcode,
        dest_city="Berlin",
        dest_address=s.address,
        origin_country=s.origin,
        replaces=s.replaces,
    )
    async with app[keys.SESSIONMAKER]() as session:
        shipment = await shipment_store.create_shipment(
            session, seller_id, new, now=clock(), public_url="http://tracker.test"
        )
        shipment.status, shipment.sub_status = s.status, s.sub_status
        shipment.eta_latest, shipment.eta_latest_end = s.eta, s.eta_end
        if s.status == "delivered" and s.events:
            shipment.delivered_at = s.events[-1].at
        session.add(shipment)
        for i, e in enumerate(s.events):
            session.add(event_row(shipment.id, i, e, clock()))
        if s.events:
            shipment.last_event_at = s.events[-1].at
        await session.commit()
        await session.refresh(shipment)
    return shipment


def event_row(shipment_id: str, i: int, e: Ev, now: datetime) -> TrackingEvent:
    local = e.at.astimezone(UTC) + timedelta(minutes=e.offset or 0)
    return TrackingEvent(
        shipment_id=shipment_id,
        fingerprint=hashlib.sha256(f"{shipment_id}{i}{e.at}".encode()).hexdigest(),
        occurred_at=e.at,
        time_basis="offset_given" if e.offset is not None else "zone_assumed",
        local_time=local.replace(tzinfo=None).isoformat(),
        utc_offset_minutes=e.offset,
        status=e.status,
        sub_status=e.sub_status,
        raw_code=e.sub_status.upper(),
        description=e.description,
        city=e.city,
        region=e.region,
        country=e.country,
        postcode=e.postcode,
        provider="dhl",
        recorded_at=now,
    )


async def brand(app: web.Application, seller_id: str, **values: Any) -> None:
    async with app[keys.SESSIONMAKER]() as session:
        row = (await session.exec(select(Seller).where(Seller.id == seller_id))).one()
        for k, v in values.items():
            setattr(row, k, v)
        session.add(row)
        await session.commit()


@pytest.fixture
async def shop(client: Client, app: web.Application, clock: FakeClock) -> str:
    account = await make_account(app, "Lotus Goods", clock)
    await brand(
        app,
        account.seller_id,
        brand_color="#c2185b",
        logo_url="https://cdn.lotus.example/logo.png",
        support_url="https://help.lotus.example/",
        support_email="care@lotus.example",
    )
    return account.seller_id


def text_of(html: str) -> str:
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html))


# ---------------------------------------------------------------- content


async def test_page_shows_status_eta_milestones_timeline_carrier_and_seller(
    client: Client, app: web.Application, clock: FakeClock, shop: str
) -> None:
    s = await seed(
        app,
        clock,
        shop,
        Seed(events=CN_DE, eta=datetime(2026, 3, 9, tzinfo=UTC), eta_end=datetime(2026, 3, 12, tzinfo=UTC)),
    )
    r = await client.get(f"/t/{s.public_token}", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert r.status == 200
    assert r.content_type == "text/html"
    html = await r.text()
    text = text_of(html)
    assert '<html lang="en">' in html
    assert '<h1 id="status">In transit</h1>' in html
    assert "Being processed by customs" in text
    assert "Expected between March 9, 2026 and March 12, 2026" in text
    # wall clock of the place: 06:15 UTC in Leipzig (UTC+1) is 7:15 AM there
    assert f"Mar 3, 2026, 7:15{NBSP}AM (GMT+01:00)" in text
    assert f"Mar 1, 2026, 10:05{NBSP}PM (GMT+08:00)" in text
    assert "Leipzig, Germany" in text
    assert "Shenzhen, China" in text
    assert "Customs clearance started" in text
    # newest first
    assert text.index("Leipzig") < text.index("Shenzhen")
    assert "DHL" in text
    assert (
        'href="https://www.dhl.com/global-en/home/tracking/tracking-express.html?submit=1&amp;tracking-id='
        'JD014600006281234567"' in html
    )
    assert re.search(r"From\s+China", text)
    assert re.search(r"To\s+Germany", text)
    assert "Lotus Goods" in text
    assert 'src="https://cdn.lotus.example/logo.png"' in html
    assert "--brand:#c2185b;--on-brand:#ffffff" in html
    assert 'href="https://help.lotus.example/"' in html
    assert "care@lotus.example" in html
    steps = re.findall(r'<li class="(done|current|todo)"[^>]*>([^<]+)<', html)
    assert steps == [
        ("done", "Info received"),
        ("done", "In transit"),
        ("current", "Customs"),
        ("todo", "Out for delivery"),
        ("todo", "Delivered"),
    ]
    # no script anywhere: the page works without JavaScript and the CSP allows none
    assert "<script" not in html
    assert "script-src" not in r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]


async def test_eta_single_day_and_delivered_date(
    client: Client, app: web.Application, clock: FakeClock, shop: str
) -> None:
    one = await seed(
        app,
        clock,
        shop,
        Seed(
            number="1Z999AA10123456784",
            carrier="ups",
            order="O-2",
            eta=datetime(2026, 3, 9, 8, tzinfo=UTC),
            eta_end=datetime(2026, 3, 9, 20, tzinfo=UTC),
        ),
    )
    text = text_of(await (await client.get(f"/t/{one.public_token}?lang=en")).text())
    assert "Expected on March 9, 2026" in text
    assert "between" not in text
    delivered = [
        *CN_DE,
        Ev(datetime(2026, 3, 5, 11, 0, tzinfo=UTC), "delivered", "signed", "Delivered", "Berlin", "DE", 60),
    ]
    two = await seed(
        app,
        clock,
        shop,
        Seed(
            number="JD0146000099",
            order="O-3",
            status="delivered",
            sub_status="signed",
            events=delivered,
            eta=datetime(2026, 3, 9, tzinfo=UTC),
        ),
    )
    r = await client.get(f"/t/{two.public_token}?lang=de")
    html = await r.text()
    assert "Zugestellt am 5. März 2026" in text_of(html)
    assert "Voraussichtlich" not in html
    assert re.findall(r'<li class="(done|current|todo)"', html) == ["done"] * 5


async def test_unknown_token_is_a_404_page_and_a_problem(client: Client, shop: str) -> None:
    r = await client.get("/t/not-a-real-token", headers={"Accept-Language": "fr"})
    assert r.status == 404
    assert r.content_type == "text/html"
    assert "Page introuvable" in await r.text()
    j = await client.get("/api/public/track/not-a-real-token")
    assert j.status == 404
    assert j.content_type == "application/problem+json"
    assert (await j.json())["status"] == 404


async def test_json_is_what_the_page_shows(client: Client, app: web.Application, clock: FakeClock, shop: str) -> None:
    s = await seed(app, clock, shop, Seed(events=CN_DE))
    r = await client.get(f"/api/public/track/{s.public_token}", headers={"Accept-Language": "zh-CN"})
    assert r.status == 200
    assert r.content_type == "application/json"
    body = await r.json()
    assert body["lang"] == "zh-Hans"
    assert body["status_text"] == "运输中"
    assert body["sub_status_text"] == "海关处理中"
    assert body["carrier"] == {"code": "dhl", "name": "DHL", "url": body["carrier"]["url"]}
    assert body["carrier"]["url"].endswith("tracking-id=JD014600006281234567")
    assert body["origin_country"] == {"code": "CN", "name": "中国"}
    assert body["destination_country"] == {"code": "DE", "name": "德国"}
    first = body["events"][0]
    assert first["local_time"] == "2026-03-03T07:15:00+01:00"
    assert first["location"] == {"city": "Leipzig", "region": None, "country": "DE", "country_name": "德国"}
    assert first["place"] == "Leipzig, 德国"
    assert [m["state"] for m in body["milestones"]] == ["done", "done", "current", "todo", "todo"]
    page = await (await client.get(f"/t/{s.public_token}", headers={"Accept-Language": "zh-CN"})).text()
    for e in body["events"]:
        assert e["when"] in page
        assert e["place"] in page
    assert body["status_text"] in page
    assert body["sub_status_text"] in page


# ---------------------------------------------------------------- languages


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("zh-Hans-CN", "zh-Hans"),
        ("pt-BR", "pt"),
        ("fr-CA,fr;q=0.9", "fr"),
        ("sv,de;q=0.5", "de"),
        ("ja;q=0.1,ru;q=0.8", "ru"),
        ("en;q=0,es", "es"),
        ("", "en"),
        ("xx, *", "en"),
    ],
)
def test_accept_language_negotiation(header: str, expected: str) -> None:
    assert i18n.negotiate(None, None, header) == expected


def test_query_beats_cookie_beats_header() -> None:
    assert i18n.negotiate("ja", "de", "fr") == "ja"
    assert i18n.negotiate(None, "de", "fr") == "de"
    assert i18n.negotiate("klingon", "de", "fr") == "de"
    assert i18n.negotiate("zh_Hans", None, None) == "zh-Hans"


HEADLINES = {
    "en": "In transit",
    "zh-Hans": "运输中",
    "es": "En tránsito",
    "fr": "En transit",
    "de": "Unterwegs",
    "ru": "В пути",
    "pt": "Em trânsito",
    "ja": "輸送中",
}


@pytest.mark.parametrize("lang", list(i18n.LANGUAGES))
async def test_every_language_renders_with_its_lang_attribute(
    client: Client, app: web.Application, clock: FakeClock, shop: str, lang: str
) -> None:
    s = await seed(app, clock, shop, Seed(events=CN_DE))
    r = await client.get(f"/t/{s.public_token}?lang={lang}")
    html = await r.text()
    assert f'<html lang="{lang}">' in html
    assert f'<h1 id="status">{HEADLINES[lang]}</h1>' in html
    assert r.cookies["lang"].value == lang
    # the switcher offers every language, the current one marked
    assert len(re.findall(r'hreflang="[^"]+"', html)) == len(i18n.LANGUAGES)
    assert f'href="/t/{s.public_token}?lang={lang}" lang="{lang}" hreflang="{lang}" aria-current="page"' in html


async def test_switcher_cookie_sticks(client: Client, app: web.Application, clock: FakeClock, shop: str) -> None:
    s = await seed(app, clock, shop, Seed(events=CN_DE))
    await client.get(f"/t/{s.public_token}?lang=ja")
    r = await client.get(f"/t/{s.public_token}", headers={"Accept-Language": "en"})
    assert '<html lang="ja">' in await r.text()


def _page_messages() -> set[str]:
    """Every message the public pages use, extracted from their sources."""
    from babel.messages.extract import extract_from_file

    ids = {m[1] for m in extract_from_file("python", str(Path(i18n.__file__)), keywords={"_N": None})}
    for name in ("base.html", "tracking.html", "lookup.html", "error.html"):
        ids |= {
            m[1]
            for m in extract_from_file(
                "jinja2", str(tracking.HERE / "templates" / name), options={"extensions": "jinja2.ext.i18n"}
            )
        }
    return {str(i) for i in ids}


def test_catalogs_are_complete_and_keep_placeholders() -> None:
    ids = _page_messages()
    assert len(ids) > 60
    with (i18n.LOCALES_DIR / "messages.pot").open("rb") as fh:
        assert ids <= {m.id for m in read_po(fh) if m.id}
    for tag in i18n.LANGUAGES:
        path = i18n.LOCALES_DIR / i18n.babel_name(tag) / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as fh:
            catalog = read_po(fh)
        for msgid in ids:
            message = catalog.get(msgid)
            assert message is not None, (tag, msgid)
            assert message.string, (tag, msgid)
            assert "fuzzy" not in message.flags, (tag, msgid)
            text = str(message.string)
            assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(re.findall(r"%\(\w+\)s", text)), (tag, msgid)
            if tag != "en" and len(msgid) > 12:
                assert text != msgid, (tag, msgid)


def test_catalog_compiles_in_memory_without_mo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "fr" / "LC_MESSAGES"
    target.mkdir(parents=True)
    (target / "messages.po").write_bytes((i18n.LOCALES_DIR / "fr" / "LC_MESSAGES" / "messages.po").read_bytes())
    monkeypatch.setattr(i18n, "LOCALES_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        assert not (target / "messages.mo").exists()
        assert i18n.translations("fr").gettext("Carrier") == "Transporteur"
    finally:
        i18n.translations.cache_clear()


# ---------------------------------------------------------------- caching headers


async def test_etag_last_modified_and_304(client: Client, app: web.Application, clock: FakeClock, shop: str) -> None:
    s = await seed(app, clock, shop, Seed(events=CN_DE))
    for path in (f"/t/{s.public_token}", f"/api/public/track/{s.public_token}"):
        r = await client.get(path, headers={"Accept-Language": "en"})
        assert r.status == 200
        etag, last_modified = r.headers["ETag"], r.headers["Last-Modified"]
        assert r.headers["Vary"] == "Accept-Language, Cookie"
        assert (await client.get(path, headers={"Accept-Language": "en", "If-None-Match": etag})).status == 304
        assert (
            await client.get(path, headers={"Accept-Language": "en", "If-None-Match": f'"x", W/{etag}'})
        ).status == 304
        assert (
            await client.get(path, headers={"Accept-Language": "en", "If-Modified-Since": last_modified})
        ).status == 304
        older = "Sun, 01 Mar 2026 00:00:00 GMT"
        assert (await client.get(path, headers={"Accept-Language": "en", "If-Modified-Since": older})).status == 200
        other = await client.get(path, headers={"Accept-Language": "fr", "If-None-Match": etag})
        assert other.status == 200
        assert other.headers["ETag"] != etag
        # If-None-Match wins over If-Modified-Since
        assert (
            await client.get(
                path, headers={"Accept-Language": "fr", "If-None-Match": etag, "If-Modified-Since": last_modified}
            )
        ).status == 200


async def test_etag_changes_with_new_events_and_status(
    client: Client, app: web.Application, clock: FakeClock, shop: str
) -> None:
    s = await seed(app, clock, shop, Seed(events=CN_DE))
    path = f"/t/{s.public_token}"
    first = await client.get(path)
    etag = first.headers["ETag"]
    scan = clock() + timedelta(seconds=1)
    async with app[keys.SESSIONMAKER]() as session:
        row = (await session.exec(select(Shipment).where(Shipment.id == s.id))).one()
        row.status, row.sub_status, row.last_event_at, row.updated_at = (
            "out_for_delivery",
            "out_for_delivery",
            scan,
            scan,
        )
        session.add(row)
        session.add(
            event_row(
                s.id, 9, Ev(scan, "out_for_delivery", "out_for_delivery", "With courier", "Berlin", "DE", 60), scan
            )
        )
        await session.commit()
    # served from the rendered-page cache until it is re-validated
    assert (await client.get(path, headers={"If-None-Match": etag})).status == 304
    clock.advance(seconds=tracking.DEFAULT_TTL + 1)
    r = await client.get(path, headers={"If-None-Match": etag})
    assert r.status == 200
    assert r.headers["ETag"] != etag
    assert '<h1 id="status">Out for delivery</h1>' in await r.text()


# ---------------------------------------------------------------- receipt confirmation


async def test_customer_confirms_receipt_once_and_the_seller_is_told(
    client: Client, app: web.Application, clock: FakeClock, shop: str
) -> None:
    s = await seed(app, clock, shop, Seed(status="delivered", sub_status="left_at_door", events=CN_DE))
    page = await (await client.get(f"/t/{s.public_token}")).text()
    assert f'action="/t/{s.public_token}/confirm"' in page
    origin = str(client.make_url("")).rstrip("/")
    r = await client.post(
        f"/t/{s.public_token}/confirm", data={"lang": "en"}, headers={"Origin": origin}, allow_redirects=False
    )
    assert r.status == 303
    assert r.headers["Location"] == f"/t/{s.public_token}"
    clock.advance(minutes=5)
    again = await client.post(
        f"/t/{s.public_token}/confirm", headers={"Sec-Fetch-Site": "same-origin"}, allow_redirects=False
    )
    assert again.status == 303
    async with app[keys.SESSIONMAKER]() as session:
        row = (await session.exec(select(Shipment).where(Shipment.id == s.id))).one()
        assert row.received_confirmed_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
        msgs = list(
            await session.exec(select(WebhookMessage).where(WebhookMessage.event_type == "shipment.received_confirmed"))
        )
        audit = list(await session.exec(select(AuditLog).where(AuditLog.action == "shipment.received_confirmed")))
    assert len(msgs) == 1
    assert len(audit) == 1
    payload = json.loads(msgs[0].payload)
    assert payload["data"]["id"] == s.id
    assert payload["data"]["tracking_number"] == s.tracking_number
    assert payload["data"]["received_confirmed_at"].startswith("2026-03-02T08:00")
    text = text_of(await (await client.get(f"/t/{s.public_token}")).text())
    assert "you confirmed receipt on March 2, 2026" in text
    assert "/confirm" not in text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "null"},
    ],
)
async def test_cross_site_confirmation_is_refused(
    client: Client, app: web.Application, clock: FakeClock, shop: str, headers: dict[str, str]
) -> None:
    s = await seed(app, clock, shop, Seed(status="delivered", sub_status="signed", events=CN_DE))
    r = await client.post(f"/t/{s.public_token}/confirm", headers=headers, allow_redirects=False)
    assert r.status == 403
    assert r.content_type == "text/html"
    async with app[keys.SESSIONMAKER]() as session:
        row = (await session.exec(select(Shipment).where(Shipment.id == s.id))).one()
        assert row.received_confirmed_at is None


async def test_confirm_unknown_token_is_404(client: Client, shop: str) -> None:
    r = await client.post("/t/nope/confirm", headers={"Sec-Fetch-Site": "same-origin"}, allow_redirects=False)
    assert r.status == 404


# ---------------------------------------------------------------- re-shipments


async def test_reshipment_links_both_ways(client: Client, app: web.Application, clock: FakeClock, shop: str) -> None:
    old = await seed(app, clock, shop, Seed(status="exception", sub_status="lost", events=CN_DE))
    clock.advance(days=1)
    new = await seed(
        app,
        clock,
        shop,
        Seed(
            number="JD0146000077", replaces=old.id, events=CN_DE[:1], status="info_received", sub_status="label_created"
        ),
    )
    old_page = await (await client.get(f"/t/{old.public_token}?lang=en")).text()
    assert "This parcel was replaced by a new shipment." in old_page
    assert f'href="/t/{new.public_token}"' in old_page
    assert "JD0146000077" in old_page
    new_page = await (await client.get(f"/t/{new.public_token}?lang=en")).text()
    assert "This parcel replaces an earlier shipment:" in new_page
    assert f'<a href="/t/{old.public_token}">{old.tracking_number}</a>' in new_page
    body = await (await client.get(f"/api/public/track/{new.public_token}")).json()
    assert body["replaces"] == {"tracking_number": old.tracking_number, "url": f"/t/{old.public_token}"}
    assert body["replaced_by"] is None


# ---------------------------------------------------------------- lookup


async def test_lookup_form_and_matches(client: Client, app: web.Application, clock: FakeClock, shop: str) -> None:
    s = await seed(app, clock, shop, Seed(events=CN_DE))
    form = await client.get("/track?lang=es")
    assert form.status == 200
    html = await form.text()
    assert 'method="post" action="/track"' in html
    assert "Buscar mi paquete" in html
    cases = [
        {"number": "jd0146 0000 6281 234567", "postcode": "101 15"},
        {"number": "JD014600006281234567", "email": "  KUNDE@example.com "},
        {"number": "ORD-1001", "postcode": "10115"},
    ]
    for data in cases:
        r = await client.post("/track", data=data, allow_redirects=False)
        assert r.status == 303, data
        assert r.headers["Location"] == f"/t/{s.public_token}"
    r = await client.get("/track", params={"number": "ORD-1001", "postcode": "10115"}, allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == f"/t/{s.public_token}"


async def test_number_alone_asks_for_a_second_factor(
    client: Client, app: web.Application, clock: FakeClock, shop: str
) -> None:
    s = await seed(app, clock, shop, Seed(events=CN_DE))
    known = await client.post("/track", data={"number": s.tracking_number})
    unknown = await client.post("/track", data={"number": "ZZ999999999ZZ"})
    assert known.status == unknown.status == 200
    body = await known.text()
    assert body == await unknown.text()
    assert "Enter the destination postcode or the email address you ordered with as well." in body
    assert s.public_token not in body


# ---------------------------------------------------------------- rate limits


def test_keyed_limiter_refills_with_injected_time() -> None:
    clock = FakeClock()
    limiter = KeyedLimiter(per_minute=6, burst=2, clock=clock)
    assert [limiter.hit("a"), limiter.hit("a")] == [0, 0]
    assert limiter.hit("a") == 10
    assert limiter.hit("b") == 0
    clock.advance(seconds=10)
    assert limiter.hit("a") == 0
    assert limiter.hit("a") == 10


def test_keyed_limiter_is_bounded() -> None:
    limiter = KeyedLimiter(per_minute=1, burst=1, clock=FakeClock(), max_keys=3)
    for key in "abcd":
        limiter.hit(key)
    assert limiter.hit("a") == 0  # forgotten, so a fresh bucket
    assert len(limiter._buckets) == 3


@pytest.fixture
async def limited(aiohttp_client: Any, settings: Settings, clock: FakeClock) -> tuple[Client, web.Application]:
    limits = PublicLimits(
        page_per_minute=6, page_burst=3, lookup_per_minute=6, lookup_burst=4, number_per_minute=1, number_burst=2
    )
    from tests.conftest import make_settings

    trusted = make_settings(settings.database, server={"trust_forwarded_for": True})
    app = create_app(trusted, clock=clock, services={"public_limits": limits})
    return await aiohttp_client(app), app


async def test_page_rate_limit_per_ip(limited: tuple[Client, web.Application], clock: FakeClock) -> None:
    client, app = limited
    seller = await make_account(app, "Rate Shop", clock)
    s = await seed(app, clock, seller.seller_id, Seed(events=CN_DE))
    ip1 = {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(3):
        assert (await client.get(f"/t/{s.public_token}", headers=ip1)).status == 200
    r = await client.get(f"/t/{s.public_token}", headers={**ip1, "Accept-Language": "de"})
    assert r.status == 429
    assert r.content_type == "text/html"
    assert r.headers["Retry-After"] == "10"
    assert "Zu viele Anfragen" in await r.text()
    j = await client.get(f"/api/public/track/{s.public_token}", headers=ip1)
    assert j.status == 429
    assert j.content_type == "application/problem+json"
    assert int(j.headers["Retry-After"]) >= 1
    assert (await j.json())["status"] == 429
    # another address is not affected, and time heals
    assert (await client.get(f"/t/{s.public_token}", headers={"X-Forwarded-For": "203.0.113.9"})).status == 200
    clock.advance(seconds=10)
    assert (await client.get(f"/t/{s.public_token}", headers=ip1)).status == 200


async def test_lookup_rate_limit_per_number_across_addresses(
    limited: tuple[Client, web.Application], clock: FakeClock
) -> None:
    client, app = limited
    seller = await make_account(app, "Rate Shop", clock)
    s = await seed(app, clock, seller.seller_id, Seed(events=CN_DE))
    for i in range(2):
        r = await client.post(
            "/track",
            data={"number": s.tracking_number, "postcode": "00000"},
            headers={"X-Forwarded-For": f"192.0.2.{i}"},
        )
        assert r.status == 404
    r = await client.post(
        "/track",
        data={"number": s.tracking_number, "postcode": "10115"},
        headers={"X-Forwarded-For": "192.0.2.50"},
        allow_redirects=False,
    )
    assert r.status == 429
    assert int(r.headers["Retry-After"]) == 60
    # the same for a number that does not exist: the limit does not reveal which numbers are real
    for i in range(2):
        await client.post(
            "/track", data={"number": "NOPE0000001", "postcode": "1"}, headers={"X-Forwarded-For": f"192.0.2.{100 + i}"}
        )
    assert (
        await client.post(
            "/track", data={"number": "NOPE0000001", "postcode": "1"}, headers={"X-Forwarded-For": "192.0.2.200"}
        )
    ).status == 429
    clock.advance(seconds=60)
    r = await client.post(
        "/track",
        data={"number": s.tracking_number, "postcode": "10115"},
        headers={"X-Forwarded-For": "192.0.2.51"},
        allow_redirects=False,
    )
    assert r.status == 303


async def test_lookup_rate_limit_per_ip(limited: tuple[Client, web.Application], clock: FakeClock) -> None:
    client, _ = limited
    ip = {"X-Forwarded-For": "198.51.100.99"}
    statuses = [
        (await client.post("/track", data={"number": f"N{i:08d}", "postcode": "1"}, headers=ip)).status
        for i in range(5)
    ]
    assert statuses == [404, 404, 404, 404, 429]


# ---------------------------------------------------------------- escaping (untrusted texts)


async def test_untrusted_texts_are_escaped_and_brand_values_validated(
    client: Client, app: web.Application, clock: FakeClock
) -> None:
    account = await make_account(app, "Evil Shop", clock)
    await brand(
        app,
        account.seller_id,
        name="<script>alert('n')</script>",
        brand_color="#fff}</style><i>",
        logo_url="javascript:alert(2)",
        support_url="javascript:alert(3)",
        support_email='x@y.example"><script>',
    )
    evil = [
        Ev(
            datetime(2026, 3, 1, tzinfo=UTC),
            "in_transit",
            "arrived",
            '<img src=x onerror="alert(4)">',
            "<b>City</b>",
            "CN",
            480,
        )
    ]
    s = await seed(app, clock, account.seller_id, Seed(events=evil))
    html = await (await client.get(f"/t/{s.public_token}")).text()
    assert "<script" not in html
    assert "<img src=x" not in html
    assert "<b>City" not in html
    assert "<i>" not in html
    assert "&lt;script&gt;alert(&#39;n&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(4)&#34;&gt;" in html
    assert "javascript:" not in html
    assert f"--brand:{tracking.DEFAULT_BRAND}" in html
    body = await (await client.get(f"/api/public/track/{s.public_token}")).json()
    assert body["seller"]["logo_url"] is None
    assert body["seller"]["support_email"] is None
    assert body["seller"]["brand_color"] == tracking.DEFAULT_BRAND


def test_brand_text_colour_contrasts() -> None:
    assert tracking.brand_colors("#FFEB3B") == ("#ffeb3b", "#000000")
    assert tracking.brand_colors("#0d47a1") == ("#0d47a1", "#ffffff")
    assert tracking.brand_colors("url(x)") == (tracking.DEFAULT_BRAND, "#ffffff")


async def test_malformed_form_bodies_are_400_not_500(client: Client, shop: str) -> None:
    headers = {"Content-Type": "multipart/form-data", "Sec-Fetch-Site": "same-origin"}
    for path in ("/track", "/t/whatever/confirm"):
        r = await client.post(path, data=b"garbage", headers=headers)
        assert r.status == 400, path
        assert r.content_type == "application/problem+json"
