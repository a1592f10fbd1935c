"""Customer emails through a real SMTP server (aiosmtpd on loopback): languages, both MIME
parts, once per milestone, retries without duplicates, invalid recipients, unsubscribe."""

from __future__ import annotations

import asyncio
import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiosmtpd.controller import Controller
from sqlmodel import col, select

from tests.conftest import FakeClock, make_account, make_settings, shipment_body
from tracker import keys, notify
from tracker.db import SessionMaker, create_sessionmaker, engine_for
from tracker.models import Notification, Shipment
from tracker.notify.mailer import SendResult, SmtpMailer
from tracker.scheduler import JOBS
from tracker.settings import DatabaseSettings, Settings
from tracker.store import notifications as notification_store
from tracker.store import sellers as seller_store
from tracker.store import shipments as shipment_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    """The SMTP server's behaviour and what it accepted."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    data_reply: str | None = None  # e.g. "451 ..." to fail every DATA
    refused: set[str] = field(default_factory=set)
    attempts: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        self.attempts += 1
        if address in self.refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply is not None:
            return self.data_reply
        self.received.append((list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(raw, policy=default_policy) for _, raw in self.received]  # type: ignore[misc]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def settings(database: DatabaseSettings, inbox: tuple[Inbox, int]) -> Settings:
    return make_settings(
        database,
        email={
            "enabled": True,
            "host": "127.0.0.1",
            "port": inbox[1],
            "from_address": "tracking@tracker.test",
            "timeout_seconds": 5,
        },
    )


@pytest.fixture
async def sm(database: DatabaseSettings) -> Any:
    engine = engine_for(database)
    yield create_sessionmaker(engine)
    await engine.dispose()


_n = [0]


async def _shipment(
    sm: SessionMaker,
    clock: FakeClock,
    *,
    locale: str = "en",
    email_to: str = "jane@example.com",
    carrier: str | None = "dhl",
    seller_id: str | None = None,
) -> Shipment:
    _n[0] += 1
    async with sm() as session:
        if seller_id is None:
            seller = await seller_store.create_seller(
                session, "Acme Export", now=clock(), support_email="help@acme.example"
            )
            seller_id = seller.id
        new = shipment_store.NewShipment(
            tracking_number=f"JD{_n[0]:012d}",
            order_number=f"ORD-{_n[0]}",
            dest_country="DE",
            carrier=carrier,
            customer_name="Jane Customer",
            customer_email=email_to,
            customer_locale=locale,
        )
        shipment = await shipment_store.create_shipment(
            session, seller_id, new, now=clock(), public_url="http://tracker.test"
        )
        await session.commit()
        return shipment


async def _queue(sm: SessionMaker, shipment_id: str, status: str, clock: FakeClock) -> None:
    async with sm() as session:
        shipment = await session.get(Shipment, shipment_id)
        assert shipment is not None
        await notification_store.on_status_change(session, shipment, status, now=clock())
        await session.commit()


async def _rows(sm: SessionMaker, shipment_id: str) -> dict[str, Notification]:
    async with sm() as session:
        rows = await session.exec(
            select(Notification).where(Notification.shipment_id == shipment_id).order_by(col(Notification.created_at))
        )
        return {r.milestone: r for r in rows}


def _parts(msg: EmailMessage) -> tuple[str, str]:
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    return plain.get_content(), html.get_content()


@pytest.mark.parametrize(
    ("locale", "language", "subject_phrase", "body_phrase"),
    [
        ("en-US", "en", "your order", "Track your parcel"),
        ("zh-CN", "zh-Hans", "已发货", "查看物流"),
        ("zh", "zh-Hans", "已发货", "运单号"),
        ("de-DE", "de", "wurde versandt", "Sendung verfolgen"),
        ("pt-BR", "pt", "foi enviado", "Rastrear o pacote"),
        ("zh-TW", "en", "has shipped", "Tracking number"),
        ("xx", "en", "has shipped", "Carrier"),
    ],
)
async def test_shipped_email_in_the_customers_language(
    sm: SessionMaker,
    settings: Settings,
    inbox: tuple[Inbox, int],
    clock: FakeClock,
    locale: str,
    language: str,
    subject_phrase: str,
    body_phrase: str,
) -> None:
    server, _ = inbox
    shipment = await _shipment(sm, clock, locale=locale)
    result = await notify.deliver(sm, settings, SmtpMailer(settings.email), clock=clock)
    assert result.counts == {"sent": 1}
    [(rcpt, _raw)] = server.received
    assert rcpt == ["jane@example.com"]
    [msg] = server.messages()
    assert msg["To"] == "jane@example.com"
    assert subject_phrase in str(msg["Subject"])
    assert "Acme Export" in str(msg["Subject"])
    assert msg["Content-Language"] == language
    assert msg["Reply-To"] == "help@acme.example"
    assert "Acme Export" in str(msg["From"])
    plain, html = _parts(msg)
    link = f"http://tracker.test/t/{shipment.public_token}"
    for part in (plain, html):
        assert shipment.tracking_number in part
        assert link in part
        assert body_phrase in part
        assert "DHL" in part
        assert "help@acme.example" in part
    unsubscribe = str(msg["List-Unsubscribe"]).strip("<>")
    assert unsubscribe.startswith("http://tracker.test/unsubscribe/")
    assert unsubscribe in plain
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    rows = await _rows(sm, shipment.id)
    assert rows["shipped"].state == "sent"
    assert rows["shipped"].sent_at == clock()


async def test_html_part_escapes_seller_and_customer_text(
    sm: SessionMaker, settings: Settings, inbox: tuple[Inbox, int], clock: FakeClock
) -> None:
    async with sm() as session:
        seller = await seller_store.create_seller(session, "<b>Evil</b> & Co", now=clock())
        await session.commit()
    await _shipment(sm, clock, seller_id=seller.id)
    await notify.deliver(sm, settings, SmtpMailer(settings.email), clock=clock)
    _plain, html = _parts(inbox[0].messages()[0])
    assert "<b>Evil</b>" not in html
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in html


async def test_each_milestone_is_sent_once(
    sm: SessionMaker, settings: Settings, inbox: tuple[Inbox, int], clock: FakeClock
) -> None:
    server, _ = inbox
    shipment = await _shipment(sm, clock, locale="fr")
    mailer = SmtpMailer(settings.email)
    await notify.deliver(sm, settings, mailer, clock=clock)
    for status in (
        "in_transit",
        "failed_attempt",
        "out_for_delivery",
        "exception",
        "out_for_delivery",
        "delivered",
        "delivered",
    ):
        clock.advance(hours=3)
        await _queue(sm, shipment.id, status, clock)
        await notify.deliver(sm, settings, mailer, clock=clock)
    clock.advance(days=2)
    assert (await notify.deliver(sm, settings, mailer, clock=clock)).counts == {}
    subjects = [str(m["Subject"]) for m in server.messages()]
    assert len(subjects) == 4
    assert "expédiée" in subjects[0]
    assert "problème" in subjects[1]
    assert "en cours de livraison" in subjects[2]
    assert "livré" in subjects[3]
    assert {r.state for r in (await _rows(sm, shipment.id)).values()} == {"sent"}


async def test_a_failing_server_is_retried_with_backoff_and_sends_exactly_once(
    sm: SessionMaker, settings: Settings, inbox: tuple[Inbox, int], clock: FakeClock
) -> None:
    server, _ = inbox
    shipment = await _shipment(sm, clock)
    await _queue(sm, shipment.id, "out_for_delivery", clock)
    mailer = SmtpMailer(settings.email)
    server.data_reply = "451 4.3.0 Temporary failure, try again later"
    start = clock()
    await notify.deliver(sm, settings, mailer, clock=clock)
    rows = await _rows(sm, shipment.id)
    assert {m: (r.state, r.attempts) for m, r in rows.items()} == {
        "shipped": ("queued", 1),
        "out_for_delivery": ("queued", 1),
    }
    assert rows["shipped"].next_attempt_at == start + timedelta(seconds=60)
    assert "451" in (rows["shipped"].error or "")
    # not due yet: nothing is attempted
    before = server.attempts
    clock.advance(seconds=59)
    assert (await notify.deliver(sm, settings, mailer, clock=clock)).counts == {}
    assert server.attempts == before
    clock.advance(seconds=2)
    await notify.deliver(sm, settings, mailer, clock=clock)
    rows = await _rows(sm, shipment.id)
    assert rows["shipped"].attempts == 2
    assert rows["shipped"].next_attempt_at == clock() + timedelta(seconds=120)
    server.data_reply = None  # the server recovers
    clock.advance(seconds=121)
    assert (await notify.deliver(sm, settings, mailer, clock=clock)).counts == {"sent": 2}
    clock.advance(hours=1)
    assert (await notify.deliver(sm, settings, mailer, clock=clock)).counts == {}
    assert sorted(str(m["Subject"]) for m in server.messages()) == [
        f"Acme Export: your order {shipment.order_number} has shipped",
        "Acme Export: your parcel is out for delivery",
    ]


async def test_a_message_that_crashes_the_mailer_is_retried_and_the_rest_are_sent(
    sm: SessionMaker, settings: Settings, inbox: tuple[Inbox, int], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = inbox
    broken = await _shipment(sm, clock, email_to="broken@example.com")
    fine = await _shipment(sm, clock, email_to="fine@example.com")
    smtp = SmtpMailer(settings.email)

    class CrashingForOne:
        async def send(self, message: EmailMessage) -> SendResult:
            if message["To"] == "broken@example.com":
                raise RuntimeError("mailer bug")
            return await smtp.send(message)

    start = clock()
    with caplog.at_level("ERROR", logger="tracker.notify"):
        result = await notify.deliver(sm, settings, CrashingForOne(), clock=clock)
    assert result.counts == {"sent": 1, "queued": 1}
    assert [rcpt for rcpt, _ in server.received] == [["fine@example.com"]]
    assert (await _rows(sm, fine.id))["shipped"].state == "sent"
    row = (await _rows(sm, broken.id))["shipped"]
    assert (row.state, row.attempts, row.error) == ("queued", 1, "RuntimeError: mailer bug")
    assert row.lease_until is None and row.next_attempt_at == start + timedelta(seconds=60)
    [record] = [r for r in caplog.records if r.getMessage() == "notification attempt crashed"]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    # the next attempt, through a working mailer, sends it
    clock.advance(seconds=61)
    assert (await notify.deliver(sm, settings, smtp, clock=clock)).counts == {"sent": 1}
    assert [rcpt for rcpt, _ in server.received] == [["fine@example.com"], ["broken@example.com"]]


async def test_connection_refused_is_retried(sm: SessionMaker, settings: Settings, clock: FakeClock) -> None:
    shipment = await _shipment(sm, clock)
    closed = settings.email.model_copy(update={"port": free_port()})
    result = await notify.deliver(sm, settings, SmtpMailer(closed), clock=clock)
    assert result.counts == {"queued": 1}
    row = (await _rows(sm, shipment.id))["shipped"]
    assert row.state == "queued"
    assert row.error


async def test_attempts_are_bounded(
    sm: SessionMaker, settings: Settings, inbox: tuple[Inbox, int], clock: FakeClock
) -> None:
    inbox[0].data_reply = "421 4.7.0 Too busy"
    shipment = await _shipment(sm, clock)
    policy = notify.NotifyPolicy(max_attempts=3)
    mailer = SmtpMailer(settings.email)
    for _ in range(5):
        await notify.deliver(sm, settings, mailer, clock=clock, policy=policy)
        clock.advance(hours=7)
    row = (await _rows(sm, shipment.id))["shipped"]
    assert (row.state, row.attempts) == ("failed", 3)


async def test_a_refused_recipient_is_recorded_invalid_and_not_retried(
    sm: SessionMaker, settings: Settings, inbox: tuple[Inbox, int], clock: FakeClock
) -> None:
    server, _ = inbox
    server.refused.add("nobody@example.com")
    shipment = await _shipment(sm, clock, email_to="nobody@example.com")
    mailer = SmtpMailer(settings.email)
    assert (await notify.deliver(sm, settings, mailer, clock=clock)).counts == {"invalid": 1}
    row = (await _rows(sm, shipment.id))["shipped"]
    assert row.state == "invalid"
    assert "550" in (row.error or "")
    attempts = server.attempts
    clock.advance(days=3)
    assert (await notify.deliver(sm, settings, mailer, clock=clock)).counts == {}
    assert server.attempts == attempts
    assert server.received == []


async def test_concurrent_workers_send_each_notification_once(
    sm: SessionMaker, settings: Settings, inbox: tuple[Inbox, int], clock: FakeClock
) -> None:
    first = await _shipment(sm, clock)
    for i in range(5):
        await _shipment(sm, clock, seller_id=first.seller_id, email_to=f"c{i}@example.com")
    policy = notify.NotifyPolicy(batch=2)
    mailer = SmtpMailer(settings.email)
    for _ in range(3):
        await asyncio.gather(*[notify.deliver(sm, settings, mailer, clock=clock, policy=policy) for _ in range(3)])
    rcpts = sorted(r[0] for r, _ in inbox[0].received)
    assert rcpts == sorted(["jane@example.com"] + [f"c{i}@example.com" for i in range(5)])


async def test_a_claim_lost_in_a_crash_is_sent_after_the_lease(
    sm: SessionMaker, settings: Settings, inbox: tuple[Inbox, int], clock: FakeClock
) -> None:
    shipment = await _shipment(sm, clock)
    policy = notify.NotifyPolicy(lease_seconds=300)
    [claimed] = await notify.claim(sm, now=clock(), policy=policy)  # the worker then dies
    assert claimed.shipment_id == shipment.id
    mailer = SmtpMailer(settings.email)
    assert (await notify.deliver(sm, settings, mailer, clock=clock, policy=policy)).counts == {}
    clock.advance(seconds=301)
    assert (await notify.deliver(sm, settings, mailer, clock=clock, policy=policy)).counts == {"sent": 1}
    row = (await _rows(sm, shipment.id))["shipped"]
    assert (row.state, row.attempts) == ("sent", 2)
    assert len(inbox[0].received) == 1


async def test_registration_email_goes_out_on_the_next_notify_tick(
    client: TestClient,
    app: web.Application,
    inbox: tuple[Inbox, int],
    clock: FakeClock,  # type: ignore[type-arg]
) -> None:
    assert "notify" in {job.name for job in app[JOBS]}
    account = await make_account(app, "Shop Berlin", clock)
    body = shipment_body(3, customer={"name": "Max", "email": "max@example.de", "locale": "de"})
    created = await client.post("/v1/shipments", json=body, headers=account.headers)
    assert created.status == 201
    job = next(j for j in app[JOBS] if j.name == "notify")
    await job.run(app)
    [msg] = inbox[0].messages()
    assert msg["To"] == "max@example.de"
    assert "wurde versandt" in str(msg["Subject"])
    plain, _html = _parts(msg)
    assert (await created.json())["public_url"] in plain


async def test_unsubscribe_link_stops_further_emails(
    client: TestClient,
    app: web.Application,
    inbox: tuple[Inbox, int],
    clock: FakeClock,  # type: ignore[type-arg]
) -> None:
    sm = app[keys.SESSIONMAKER]
    settings = app[keys.SETTINGS]
    mailer = SmtpMailer(settings.email)
    shipment = await _shipment(sm, clock, locale="de")
    await notify.deliver(sm, settings, mailer, clock=clock)
    [msg] = inbox[0].messages()
    path = urlsplit(str(msg["List-Unsubscribe"]).strip("<>")).path

    page = await client.get(path)
    assert page.status == 200
    text = await page.text()
    assert "<form" in text
    assert "Abmelden" in text
    # a GET alone (link scanners) changes nothing
    async with sm() as session:
        fresh = await session.get(Shipment, shipment.id)
        assert fresh is not None
        assert fresh.notify_opt_out is False

    await _queue(sm, shipment.id, "out_for_delivery", clock)
    tampered = await client.post(
        path[:-3] + "AAA",
        data="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert tampered.status == 404
    done = await client.post(
        path, data="List-Unsubscribe=One-Click", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert done.status == 200
    rows = await _rows(sm, shipment.id)
    assert rows["out_for_delivery"].state == "cancelled"
    async with sm() as session:
        fresh = await session.get(Shipment, shipment.id)
        assert fresh is not None
        assert fresh.notify_opt_out is True
        trail = await seller_store.audit_trail(session, shipment.seller_id, "shipment", shipment.id)
    assert "notifications.unsubscribed" in [t.action for t in trail]

    clock.advance(hours=1)
    await _queue(sm, shipment.id, "delivered", clock)
    assert (await notify.deliver(sm, settings, mailer, clock=clock)).counts == {}
    assert len(inbox[0].received) == 1
    assert "delivered" not in await _rows(sm, shipment.id)
