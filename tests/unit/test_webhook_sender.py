"""One delivery attempt against real loopback receivers, behind the SSRF guard."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer

from tracker.webhooks.sender import AttemptResult, deliver, make_session
from tracker.webhooks.signing import headers as sign_headers
from tracker.webhooks.signing import new_secret

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BODY = b'{"type":"shipment.delivered","timestamp":"2026-03-01T12:00:00Z","data":{"sequence":3}}'
SECRET = new_secret()
SELLER_HOST = "hooks.seller.test"


@dataclass
class Received:
    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class Receiver:
    """A seller's endpoint: records what arrives and answers per path."""

    requests: list[Received] = field(default_factory=list)
    redirect_to: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)


def make_app(rx: Receiver) -> web.Application:
    async def record(request: web.Request) -> None:
        body = await request.read()
        rx.requests.append(Received(request.method, request.path, CIMultiDict(request.headers), body))

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="thanks")

    async def boom(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=500, text="internal error")

    async def gone(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=410, text="no such hook")

    async def moved(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=302, headers={"Location": rx.redirect_to})

    async def busy(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=429, headers={"Retry-After": "120"}, text="slow down")

    async def busy_date(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=503, headers={"Retry-After": "Sun, 01 Mar 2026 12:02:00 GMT"})

    async def big(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="x" * 5000)

    async def accents(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="é" * 1000)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await rx.release.wait()
        return web.Response(text="late")

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/boom", boom)
    app.router.add_post("/gone", gone)
    app.router.add_post("/moved", moved)
    app.router.add_post("/busy", busy)
    app.router.add_post("/busy-date", busy_date)
    app.router.add_post("/big", big)
    app.router.add_post("/accents", accents)
    app.router.add_post("/slow", slow)
    return app


class FakeDns:
    """Injected resolver: answers from a script of replies per call, counting questions."""

    def __init__(self, replies: Sequence[Sequence[str]]) -> None:
        self._replies = list(replies)
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host != SELLER_HOST:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        reply = self._replies[min(len(self.asked), len(self._replies)) - 1]
        return list(reply)


def ticking(*values: float) -> Callable[[], float]:
    it: Iterator[float] = iter(values)
    return lambda: next(it)


@pytest.fixture
def rx() -> Receiver:
    return Receiver()


@pytest.fixture
async def server(aiohttp_server: AiohttpServer, rx: Receiver) -> TestServer:
    started: TestServer = await aiohttp_server(make_app(rx))
    return started


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns([["127.0.0.1"]])


@pytest.fixture
async def session(dns: FakeDns) -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session(allow_loopback=True, lookup=dns) as s:
        yield s


async def send(
    session: aiohttp.ClientSession,
    url: str,
    *,
    dns: FakeDns | None = None,
    allow_loopback: bool = True,
    timeout_s: float = 15.0,
    max_response_bytes: int = 1024,
) -> AttemptResult:
    signed = sign_headers([SECRET], "msg_1", NOW, BODY)
    return await deliver(
        session,
        url,
        BODY,
        signed,
        timeout_s=timeout_s,
        max_response_bytes=max_response_bytes,
        allow_loopback=allow_loopback,
        resolver=dns,
        clock=lambda: NOW,
    )


async def test_success_sends_signed_post_and_measures_latency(
    session: aiohttp.ClientSession, server: TestServer, rx: Receiver
) -> None:
    signed = sign_headers([SECRET], "msg_1", NOW, BODY)
    result = await deliver(
        session,
        str(server.make_url("/ok")),
        BODY,
        signed,
        allow_loopback=True,
        clock=lambda: NOW,
        monotonic=ticking(10.0, 10.25),
    )
    assert result == AttemptResult(
        status=200, latency_ms=250.0, error=None, response_excerpt="thanks", retry_after=None
    )
    [got] = rx.requests
    assert (got.method, got.path, got.body) == ("POST", "/ok", BODY)
    for name, value in signed.items():
        assert got.headers[name] == value
    assert got.headers["User-Agent"].startswith("cbec-tracker-webhooks")


@pytest.mark.parametrize(
    ("path", "status", "excerpt"),
    [("/boom", 500, "internal error"), ("/gone", 410, "no such hook")],
)
async def test_error_statuses_are_reported_with_excerpt(
    session: aiohttp.ClientSession, server: TestServer, rx: Receiver, path: str, status: int, excerpt: str
) -> None:
    result = await send(session, str(server.make_url(path)))
    assert (result.status, result.error, result.response_excerpt) == (status, None, excerpt)
    assert len(rx.requests) == 1


async def test_redirect_is_not_followed(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession, server: TestServer, rx: Receiver
) -> None:
    elsewhere = Receiver()
    other = await aiohttp_server(make_app(elsewhere))
    rx.redirect_to = str(other.make_url("/ok"))
    result = await send(session, str(server.make_url("/moved")))
    assert result.status == 302
    assert result.error is None
    assert [r.path for r in rx.requests] == ["/moved"]
    assert elsewhere.requests == []


@pytest.mark.parametrize(("path", "status"), [("/busy", 429), ("/busy-date", 503)])
async def test_retry_after_is_parsed(
    session: aiohttp.ClientSession, server: TestServer, path: str, status: int
) -> None:
    result = await send(session, str(server.make_url(path)))
    assert (result.status, result.retry_after) == (status, 120.0)


async def test_slow_receiver_times_out(
    session: aiohttp.ClientSession, server: TestServer, rx: Receiver
) -> None:
    try:
        result = await send(session, str(server.make_url("/slow")), timeout_s=0.2)
    finally:
        rx.release.set()
    assert (result.status, result.error, result.response_excerpt) == (None, "timeout", None)


async def test_response_excerpt_is_truncated(session: aiohttp.ClientSession, server: TestServer) -> None:
    default = await send(session, str(server.make_url("/big")))
    assert default.response_excerpt == "x" * 1024
    small = await send(session, str(server.make_url("/big")), max_response_bytes=10)
    assert small.response_excerpt == "x" * 10
    cut_mid_char = await send(session, str(server.make_url("/accents")), max_response_bytes=1001)
    assert cut_mid_char.response_excerpt == "é" * 500 + "\ufffd"


async def test_loopback_url_is_refused_without_the_setting(
    session: aiohttp.ClientSession, server: TestServer, rx: Receiver
) -> None:
    result = await send(session, str(server.make_url("/ok")), allow_loopback=False)
    assert result == AttemptResult(
        status=None,
        latency_ms=result.latency_ms,
        error="unsafe_url:loopback",
        response_excerpt=None,
        retry_after=None,
    )
    assert rx.requests == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://10.0.0.1/hook", "unsafe_url:private"),
        ("http://169.254.169.254/latest/meta-data/", "unsafe_url:metadata"),
        ("http://[::ffff:127.0.0.1]/hook", "unsafe_url:ipv4_mapped:loopback"),
        ("http://user:pw@example.com/hook", "unsafe_url:credentials"),
    ],
)
async def test_private_targets_are_refused_before_connecting(
    session: aiohttp.ClientSession, url: str, error: str
) -> None:
    result = await send(session, url, allow_loopback=False)
    assert (result.status, result.error, result.response_excerpt) == (None, error, None)


async def test_name_connects_to_the_checked_address_keeping_the_host_header(
    session: aiohttp.ClientSession, server: TestServer, rx: Receiver, dns: FakeDns
) -> None:
    url = f"http://{SELLER_HOST}:{server.port}/ok"
    result = await send(session, url, dns=dns)
    assert (result.status, result.error) == (200, None)
    assert rx.requests[0].headers["Host"] == f"{SELLER_HOST}:{server.port}"
    # Asked once by the up-front check and once by the connector at connect time.
    assert dns.asked == [SELLER_HOST, SELLER_HOST]


async def test_rebinding_between_check_and_connect_is_refused(server: TestServer, rx: Receiver) -> None:
    dns = FakeDns([["127.0.0.1"], ["0.0.0.0"]])
    async with make_session(allow_loopback=True, lookup=dns) as session:
        result = await send(session, f"http://{SELLER_HOST}:{server.port}/ok", dns=dns)
    assert (result.status, result.error, result.response_excerpt) == (None, "unsafe_url:unspecified", None)
    assert rx.requests == []


async def test_unknown_name_is_a_dns_error(session: aiohttp.ClientSession, dns: FakeDns) -> None:
    result = await send(session, "http://nowhere.seller.test/hook", dns=dns)
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("dns_error:")


async def test_closed_port_is_a_connection_error(
    aiohttp_server: AiohttpServer, session: aiohttp.ClientSession
) -> None:
    gone = await aiohttp_server(web.Application())
    url = str(gone.make_url("/hook"))
    await gone.close()
    result = await send(session, url)
    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("connection_error:")
