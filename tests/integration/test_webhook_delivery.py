"""Signed deliveries to loopback receivers, retries over simulated days, and nothing lost
when a dispatcher is killed mid-delivery. The clock is advanced by hand; nothing sleeps,
except polls for the continuous dispatcher (`drain`), which works in real time."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from multidict import CIMultiDict
from sqlmodel import col, select
from standardwebhooks.webhooks import Webhook

from tests.conftest import Account, FakeClock, shipment_body
from tracker import keys
from tracker.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tracker.settings import WebhookSettings
from tracker.webhooks.dispatcher import WEBHOOK_HTTP, drain, lease_for, run_once, tick

WORKER = Path(__file__).with_name("webhook_worker.py")

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def clock() -> FakeClock:
    # Standard Webhooks verifiers compare webhook-timestamp with the real clock (5 minutes).
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@dataclass
class Received:
    path: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class Receiver:
    """A seller's endpoint: records every request and answers from a per-path script."""

    requests: list[Received] = field(default_factory=list)
    script: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    default_status: int = 200
    #: the path whose first request is held until `release` is set
    hold_path: str = ""
    hold_count: int = 1
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)

    def ids(self, path: str | None = None) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests if path is None or r.path == path]


def receiver_app(rx: Receiver) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        rx.requests.append(Received(request.path, CIMultiDict(request.headers), await request.read()))
        path = request.path
        if path == rx.hold_path and not rx.release.is_set():
            rx.in_flight[path] += 1
            rx.max_in_flight[path] = max(rx.max_in_flight[path], rx.in_flight[path])
            if sum(1 for r in rx.requests if r.path == path) >= rx.hold_count:
                rx.arrived.set()
            await rx.release.wait()
            rx.in_flight[path] -= 1
        steps = rx.script.get(path)
        status, headers = steps.pop(0) if steps else (rx.default_status, {})
        return web.Response(status=status, text=f"answer {status}", headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
async def receiver(aiohttp_server: Any) -> tuple[Receiver, TestServer]:
    rx = Receiver()
    server: TestServer = await aiohttp_server(receiver_app(rx))
    return rx, server


async def dispatch(
    app: web.Application, clock: FakeClock, *, owner: str = "test-dispatcher", settings: WebhookSettings | None = None
) -> int:
    return await run_once(
        app[keys.SESSIONMAKER],
        app[WEBHOOK_HTTP],
        now=clock(),
        settings=settings or app[keys.SETTINGS].webhooks,
        owner=owner,
        rand=lambda: 0.5,
    )


async def drain_all(app: web.Application, clock: FakeClock, settings: WebhookSettings) -> int:
    return await drain(
        app[keys.ENGINE], app[WEBHOOK_HTTP], clock=clock, settings=settings, owner="pump", rand=lambda: 0.5
    )


async def delivery_states(app: web.Application, endpoint_id: str) -> list[str]:
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    async with app[keys.SESSIONMAKER]() as session:
        return [d.state for d in await session.exec(query)]


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> None:
    """Wait for a running dispatcher to get somewhere (it works in real time)."""
    for _ in range(int(seconds / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the dispatcher did not get there")


async def add_endpoint(client: Client, who: Account, url: str, **body: Any) -> dict[str, Any]:
    resp = await client.post("/v1/webhook-endpoints", json={"url": url, **body}, headers=who.headers)
    assert resp.status == 201, await resp.text()
    created: dict[str, Any] = await resp.json()
    return created


async def test_message(client: Client, who: Account, endpoint_id: str) -> str:
    resp = await client.post(f"/v1/webhook-endpoints/{endpoint_id}/test", headers=who.headers)
    assert resp.status == 202
    message_id: str = (await resp.json())["id"]
    return message_id


test_message.__test__ = False  # type: ignore[attr-defined]


async def log_of(client: Client, who: Account, message_id: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/webhook-messages/{message_id}", headers=who.headers)
    assert resp.status == 200
    detail: dict[str, Any] = await resp.json()
    return detail


async def endpoint_row(app: web.Application, endpoint_id: str) -> WebhookEndpoint:
    async with app[keys.SESSIONMAKER]() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
    assert row is not None
    return row


def signatures(headers: CIMultiDict[str]) -> list[str]:
    return [part.split(",", 1)[1] for part in headers["webhook-signature"].split(" ")]


def expected_signature(secret: str, received: Received) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode() + received.body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


async def test_delivery_is_signed_and_verifiable(
    client: Client, app: web.Application, seller: Account, clock: FakeClock, receiver: tuple[Receiver, TestServer]
) -> None:
    rx, server = receiver
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    created = await client.post("/v1/shipments", json=shipment_body(1), headers=seller.headers)
    shipment_id = (await created.json())["id"]
    assert await dispatch(app, clock) == 1
    assert await dispatch(app, clock) == 0

    [got] = rx.requests
    payload = Webhook(endpoint["secret"]).verify(got.body, dict(got.headers))
    assert payload["type"] == "shipment.created"
    assert payload["data"]["id"] == shipment_id
    assert signatures(got.headers) == [expected_signature(endpoint["secret"], got)]
    assert got.headers["webhook-timestamp"] == str(int(clock().timestamp()))
    assert got.headers["content-type"] == "application/json"
    log = (await (await client.get("/v1/webhook-messages", headers=seller.headers)).json())["data"]
    assert got.headers["webhook-id"] == log[0]["id"]
    detail = await log_of(client, seller, log[0]["id"])
    [delivery] = detail["deliveries"]
    assert (delivery["state"], delivery["attempt_count"], delivery["last_status"]) == ("succeeded", 1, 200)
    [attempt] = delivery["attempts"]
    assert (attempt["status_code"], attempt["error"], attempt["response_excerpt"]) == (200, None, "answer 200")
    assert attempt["latency_ms"] > 0


async def test_500_then_200_retries_with_the_same_webhook_id(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
) -> None:
    rx, server = receiver
    rx.script["/hooks"] = [(500, {})]
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    msg_id = await test_message(client, seller, endpoint["id"])
    assert await dispatch(app, clock) == 1
    assert (await endpoint_row(app, endpoint["id"])).failing_since == clock()
    clock.advance(seconds=4)
    assert await dispatch(app, clock) == 0  # the first retry comes 5 s later (no jitter at rand 0.5)
    clock.advance(seconds=1)
    assert await dispatch(app, clock) == 1
    assert rx.ids() == [msg_id, msg_id]
    assert int(rx.requests[1].headers["webhook-timestamp"]) - int(rx.requests[0].headers["webhook-timestamp"]) == 5
    for got in rx.requests:
        Webhook(endpoint["secret"]).verify(got.body, dict(got.headers))
    [delivery] = (await log_of(client, seller, msg_id))["deliveries"]
    assert delivery["state"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    assert delivery["attempts"][0]["response_excerpt"] == "answer 500"
    row = await endpoint_row(app, endpoint["id"])
    assert (row.failing_since, row.last_success_at, row.enabled) == (None, clock(), True)


async def test_429_retry_after_is_honoured(
    client: Client, app: web.Application, seller: Account, clock: FakeClock, receiver: tuple[Receiver, TestServer]
) -> None:
    rx, server = receiver
    rx.script["/hooks"] = [(429, {"Retry-After": "120"})]
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    msg_id = await test_message(client, seller, endpoint["id"])
    assert await dispatch(app, clock) == 1
    [delivery] = (await log_of(client, seller, msg_id))["deliveries"]
    assert delivery["next_attempt_at"] == (clock() + timedelta(seconds=120)).isoformat()
    clock.advance(seconds=119)
    assert await dispatch(app, clock) == 0
    clock.advance(seconds=1)
    assert await dispatch(app, clock) == 1
    assert rx.ids() == [msg_id, msg_id]


async def test_a_redirect_is_a_failure_and_is_not_followed(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
) -> None:
    rx, server = receiver
    rx.script["/hooks"] = [(302, {"Location": str(server.make_url("/moved"))})]
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    msg_id = await test_message(client, seller, endpoint["id"])
    assert await dispatch(app, clock) == 1
    assert [r.path for r in rx.requests] == ["/hooks"]
    [delivery] = (await log_of(client, seller, msg_id))["deliveries"]
    assert (delivery["state"], delivery["last_status"]) == ("pending", 302)
    assert delivery["next_attempt_at"] == (clock() + timedelta(seconds=5)).isoformat()


async def test_410_disables_the_endpoint_with_notice(
    client: Client, app: web.Application, seller: Account, clock: FakeClock, receiver: tuple[Receiver, TestServer]
) -> None:
    rx, server = receiver
    rx.default_status = 410
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    first = await test_message(client, seller, endpoint["id"])
    assert await dispatch(app, clock) == 1
    got = await (await client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=seller.headers)).json()
    assert got["enabled"] is False
    assert got["disabled_reason"].startswith("gone")
    [delivery] = (await log_of(client, seller, first))["deliveries"]
    assert delivery["state"] == "failed"
    notices = await (
        await client.get("/v1/webhook-messages?event_type=endpoint.disabled", headers=seller.headers)
    ).json()
    [notice] = notices["data"]
    assert notice["payload"]["data"]["id"] == endpoint["id"]
    # nothing more goes to a disabled endpoint until it is enabled again
    rx.default_status = 200
    replay = await client.post(
        f"/v1/webhook-messages/{first}/redeliver", params={"endpoint_id": endpoint["id"]}, headers=seller.headers
    )
    assert replay.status == 409
    clock.advance(hours=1)
    assert await dispatch(app, clock) == 0
    assert (await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/enable", headers=seller.headers)).status == 200
    assert (await client.post(f"/v1/webhook-messages/{first}/redeliver", headers=seller.headers)).status == 202
    assert await dispatch(app, clock) == 1
    assert rx.ids() == [first, first]


async def test_an_endpoint_failing_for_five_days_is_disabled(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
) -> None:
    rx, server = receiver
    rx.default_status = 500
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    started = clock()
    disabled_at = None
    for hour in range(7 * 24):
        if hour % 12 == 0:
            await test_message(client, seller, endpoint["id"])
        await dispatch(app, clock)
        row = await endpoint_row(app, endpoint["id"])
        if not row.enabled:
            disabled_at = clock()
            break
        clock.advance(hours=1)
    assert disabled_at is not None
    assert timedelta(days=5) <= disabled_at - started < timedelta(days=5, hours=2)
    assert row.failing_since == started
    assert row.disabled_reason is not None
    assert row.disabled_reason.startswith("failing since")
    notices = await (
        await client.get("/v1/webhook-messages?event_type=endpoint.disabled", headers=seller.headers)
    ).json()
    assert [n["payload"]["data"]["id"] for n in notices["data"]] == [endpoint["id"]]
    assert all(r.headers["webhook-id"] for r in rx.requests)


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
) -> None:
    rx, server = receiver
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    old = endpoint["secret"]
    new = (await (await client.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate", headers=seller.headers)).json())[
        "secret"
    ]
    await test_message(client, seller, endpoint["id"])
    assert await dispatch(app, clock) == 1
    during = rx.requests[-1]
    assert signatures(during.headers) == [expected_signature(new, during), expected_signature(old, during)]
    Webhook(old).verify(during.body, dict(during.headers))
    Webhook(new).verify(during.body, dict(during.headers))

    clock.advance(hours=24, seconds=1)
    await test_message(client, seller, endpoint["id"])
    assert await dispatch(app, clock) == 1
    after = rx.requests[-1]
    assert signatures(after.headers) == [expected_signature(new, after)]
    assert expected_signature(old, after) not in signatures(after.headers)


async def test_concurrency_per_endpoint_is_respected_across_dispatchers(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
) -> None:
    rx, server = receiver
    rx.hold_path, rx.hold_count = "/slow", 2
    slow = await add_endpoint(client, seller, str(server.make_url("/slow")))
    fast = await add_endpoint(client, seller, str(server.make_url("/fast")))
    for _ in range(5):
        await test_message(client, seller, slow["id"])
        await test_message(client, seller, fast["id"])
    limited = app[keys.SETTINGS].webhooks.model_copy(update={"concurrency_per_endpoint": 2})
    first = asyncio.create_task(dispatch(app, clock, owner="first", settings=limited))
    await asyncio.wait_for(rx.arrived.wait(), timeout=30)
    # both endpoints have two leased deliveries in flight (the /fast answers are not
    # recorded until the batch settles), so another dispatcher may take nothing
    assert await dispatch(app, clock, owner="second", settings=limited) == 0
    assert Counter(r.path for r in rx.requests) == {"/slow": 2, "/fast": 2}
    rx.release.set()
    assert await first == 4
    assert rx.max_in_flight["/slow"] == 2
    assert await dispatch(app, clock, owner="second", settings=limited) == 4
    assert await dispatch(app, clock, settings=limited) == 2
    assert await dispatch(app, clock, settings=limited) == 0
    assert Counter(r.path for r in rx.requests) == {"/slow": 5, "/fast": 5}
    assert len(set(rx.ids())) == 10


@pytest.mark.parametrize("mode", ["once", "drain"])
async def test_a_killed_dispatcher_loses_nothing(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
    mode: str,
) -> None:
    rx, server = receiver
    rx.hold_path = "/hooks"
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    msg_id = await test_message(client, seller, endpoint["id"])
    db = app[keys.SETTINGS].database
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        db.url,
        db.schema_name,
        clock().isoformat(),
        "doomed",
        mode,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    arrived = asyncio.create_task(rx.arrived.wait())
    exited = asyncio.create_task(child.wait())
    done, _ = await asyncio.wait({arrived, exited}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    assert arrived in done, (await child.stderr.read()).decode() if child.stderr else "worker did not deliver"
    # the receiver has the message; the worker has not recorded anything yet
    child.send_signal(signal.SIGKILL)
    assert await exited == -signal.SIGKILL
    rx.release.set()

    async with app[keys.SESSIONMAKER]() as session:
        [delivery] = await session.exec(select(WebhookDelivery).where(WebhookDelivery.message_id == msg_id))
        attempts = list(await session.exec(select(WebhookAttempt)))
    assert (delivery.state, delivery.lease_owner, delivery.attempts, attempts) == ("pending", "doomed", 1, [])
    assert await dispatch(app, clock, owner="rescuer") == 0  # the lease still holds
    clock.advance(seconds=lease_for(app[keys.SETTINGS].webhooks).total_seconds() + 1)
    assert await dispatch(app, clock, owner="rescuer") == 1
    assert rx.ids() == [msg_id, msg_id]
    [logged] = (await log_of(client, seller, msg_id))["deliveries"]
    assert (logged["state"], [a["status_code"] for a in logged["attempts"]]) == ("succeeded", [200])


async def test_a_receiver_down_for_two_days_gets_every_message(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    aiohttp_server: Any,
) -> None:
    port = unused_port()
    url = f"http://127.0.0.1:{port}/hooks"
    endpoint = await add_endpoint(client, seller, url, event_types=["shipment.created"])
    sent: list[str] = []
    rx = Receiver(default_status=503)
    server = None
    for step in range(2 * 24 * 2):  # two days in half-hour steps
        if step % 6 == 0:
            resp = await client.post("/v1/shipments", json=shipment_body(step + 1), headers=seller.headers)
            assert resp.status == 201
        if step == 24:  # the first day: connection refused; the second: up but answering 503
            server = await aiohttp_server(receiver_app(rx), port=port)
        await dispatch(app, clock)
        clock.advance(minutes=30)
    assert server is not None
    log = await (await client.get("/v1/webhook-messages?limit=200", headers=seller.headers)).json()
    sent = [m["id"] for m in log["data"]]
    assert len(sent) == 16
    assert rx.requests
    assert all(r.headers["webhook-id"] in sent for r in rx.requests)
    rx.default_status = 200
    for _ in range(48):  # back up: the longest pending retry is at most a day away
        await dispatch(app, clock)
        clock.advance(minutes=30)
    async with app[keys.SESSIONMAKER]() as session:
        states = Counter(d.state for d in await session.exec(select(WebhookDelivery)))
        attempts = list(await session.exec(select(WebhookAttempt).order_by(col(WebhookAttempt.id))))
    assert states == {"succeeded": 16}
    delivered = {r.headers["webhook-id"] for r in rx.requests if r.headers["webhook-id"] in sent}
    assert delivered == set(sent)
    assert any(a.error and a.error.startswith("connection_error") for a in attempts)
    assert any(a.status_code == 503 for a in attempts)
    assert (await endpoint_row(app, endpoint["id"])).enabled


async def test_drain_sends_past_a_slow_endpoint_and_keeps_it_to_its_slots(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
) -> None:
    rx, server = receiver
    rx.hold_path, rx.hold_count = "/slow", 2
    slow = await add_endpoint(client, seller, str(server.make_url("/slow")))
    fast = await add_endpoint(client, seller, str(server.make_url("/fast")))
    sent = [await test_message(client, seller, e["id"]) for e in (slow, fast) for _ in range(5)]
    settings = app[keys.SETTINGS].webhooks.model_copy(update={"concurrency_per_endpoint": 2, "tick_seconds": 0.05})
    draining = asyncio.create_task(drain_all(app, clock, settings))
    await asyncio.wait_for(rx.arrived.wait(), timeout=30)
    # /fast is sent and settled in full while /slow holds its two slots, and not one more

    async def fast_settled() -> bool:
        return await delivery_states(app, fast["id"]) == ["succeeded"] * 5

    await eventually(fast_settled)
    assert Counter(r.path for r in rx.requests) == {"/slow": 2, "/fast": 5}
    rx.release.set()
    assert await draining == 10
    assert rx.max_in_flight["/slow"] == 2
    assert sorted(rx.ids()) == sorted(sent)
    assert await delivery_states(app, slow["id"]) == ["succeeded"] * 5


async def test_drain_waits_for_the_old_copy_of_a_delivery_re_armed_in_flight(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
) -> None:
    rx, server = receiver
    rx.hold_path = "/hooks"
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    msg_id = await test_message(client, seller, endpoint["id"])
    settings = app[keys.SETTINGS].webhooks.model_copy(update={"tick_seconds": 0.05})
    draining = asyncio.create_task(drain_all(app, clock, settings))
    await asyncio.wait_for(rx.arrived.wait(), timeout=30)
    resp = await client.post(f"/v1/webhook-messages/{msg_id}/redeliver", headers=seller.headers)
    assert resp.status == 202, await resp.text()
    # a probe queued after the redelivery is claimed and settled by later cycles, each of
    # which saw the re-armed delivery due while its old copy was still out
    probe = await add_endpoint(client, seller, str(server.make_url("/probe")))
    await test_message(client, seller, probe["id"])

    async def probe_settled() -> bool:
        return await delivery_states(app, probe["id"]) == ["succeeded"]

    await eventually(probe_settled)
    assert rx.ids("/hooks") == [msg_id]
    rx.release.set()
    # the old copy is logged without deciding; the re-armed delivery is sent once more
    assert await draining == 3
    assert rx.ids("/hooks") == [msg_id, msg_id]
    [delivery] = (await log_of(client, seller, msg_id))["deliveries"]
    assert (delivery["state"], delivery["attempt_count"]) == ("succeeded", 1)
    assert [a["status_code"] for a in delivery["attempts"]] == [200, 200]


async def test_the_periodic_job_drains_what_is_due(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
) -> None:
    rx, server = receiver
    endpoint = await add_endpoint(client, seller, str(server.make_url("/hooks")))
    sent = [await test_message(client, seller, endpoint["id"]) for _ in range(7)]
    await tick(app)
    assert sorted(rx.ids()) == sorted(sent)
    assert await delivery_states(app, endpoint["id"]) == ["succeeded"] * 7


async def test_drain_settles_every_outcome_like_a_single_pass(
    client: Client,
    app: web.Application,
    seller: Account,
    clock: FakeClock,
    receiver: tuple[Receiver, TestServer],
) -> None:
    rx, server = receiver
    rx.script["/boom"] = [(500, {})]
    rx.script["/gone"] = [(410, {})]
    ok, boom, gone = [await add_endpoint(client, seller, str(server.make_url(p))) for p in ("/ok", "/boom", "/gone")]
    sent = {e["id"]: await test_message(client, seller, e["id"]) for e in (ok, boom, gone)}
    # the three, then the disabled notice to the two endpoints still enabled
    assert await drain_all(app, clock, app[keys.SETTINGS].webhooks) == 5
    states = {}
    for endpoint_id, msg_id in sent.items():
        [delivery] = (await log_of(client, seller, msg_id))["deliveries"]
        states[endpoint_id] = (delivery["state"], delivery["last_status"], delivery["next_attempt_at"])
    assert states[ok["id"]][:2] == ("succeeded", 200)
    assert states[boom["id"]] == ("pending", 500, (clock() + timedelta(seconds=5)).isoformat())
    assert states[gone["id"]][:2] == ("failed", 410)
    row = await endpoint_row(app, gone["id"])
    assert (row.enabled, row.disabled_reason) == (False, "gone: the endpoint answered 410")
    notices = await (
        await client.get("/v1/webhook-messages?event_type=endpoint.disabled", headers=seller.headers)
    ).json()
    [notice] = notices["data"]
    assert notice["payload"]["data"]["id"] == gone["id"]
    assert sorted(r.path for r in rx.requests if r.headers["webhook-id"] == notice["id"]) == ["/boom", "/ok"]
    assert (await endpoint_row(app, ok["id"])).last_success_at == clock()
