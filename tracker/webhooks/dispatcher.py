"""The webhook dispatcher: claim due deliveries with a lease, send them, record the outcome.

At-least-once: a delivery is leased before it is sent and settled only afterwards, so a
dispatcher that dies in between leaves a lease that expires and another dispatcher sends
the same message again, with the same `webhook-id`. Any number of dispatchers may run: on
PostgreSQL they skip each other's locked rows, on SQLite the claim holds the write lock.

`run_once` settles one batch; `drain` (the periodic job) keeps requests in flight while the
results that came back are recorded and the next deliveries are claimed, in one short
transaction per cycle. Both read and write plain rows: ORM objects cost more per delivery
than the request itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import ColumnElement, Row, Select, Table, and_, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker import keys
from tracker.clock import Clock
from tracker.db import SessionMaker, write_transaction
from tracker.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from tracker.settings import WebhookSettings
from tracker.store import bulk, outbox
from tracker.webhooks import retry, signing
from tracker.webhooks.sender import AttemptResult, deliver, make_session
from tracker.webhooks.ssrf import Lookup

log = logging.getLogger("tracker.webhooks")

WEBHOOK_HTTP = web.AppKey("webhook_http", aiohttp.ClientSession)
WEBHOOK_OWNER = web.AppKey("webhook_owner", str)

CLAIM_LIMIT = 500
EXCERPT_CHARS = 512
# A tick keeps claiming while there is work, but yields to the scheduler eventually.
MAX_PASSES_PER_TICK = 20
# last_success_at moves at most this often, so a healthy endpoint is not rewritten per delivery
_SUCCESS_GRANULARITY = timedelta(minutes=1)
# The due deliveries are walked this many at a time, for at most so many pages.
_SCAN_PAGE = 200
_SCAN_PAGES = 4
# After the first result comes back, wait this long for more, so one transaction records many.
RECORD_WINDOW_S = 0.01

_DLV: Table = WebhookDelivery.__table__  # type: ignore[attr-defined]
_MSG: Table = WebhookMessage.__table__  # type: ignore[attr-defined]
_EP: Table = WebhookEndpoint.__table__  # type: ignore[attr-defined]
_ATT: Table = WebhookAttempt.__table__  # type: ignore[attr-defined]
_RELEASED: dict[str, Any] = {"lease_owner": None, "lease_until": None}

def lease_for(settings: WebhookSettings) -> timedelta:
    """How long a claim lasts: past the request timeout with room for recording."""
    return timedelta(seconds=settings.timeout_seconds * 2 + 30)


def new_owner() -> str:
    """A lease owner id unique to this process."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Claimed:
    """Everything needed to send one delivery without touching the database."""

    delivery_id: str
    endpoint_id: str
    message_id: str
    payload: str
    url: str
    secrets: tuple[str, ...]
    claimed_at: datetime


Sent = tuple[Claimed, AttemptResult]
"""A delivery and what its attempt produced."""


@dataclass(frozen=True, slots=True)
class Held:
    """What a dispatcher holds when it claims again before recording everything it sent."""

    leased: Collection[str] = ()
    """Deliveries leased and not recorded yet: one re-armed meanwhile waits until the old
    copy is recorded, so each claim is decided by its own attempt."""
    answered: Collection[str] = ()
    """Those of them whose response is back: still leased, but no longer in flight."""
    sending: Mapping[str, int] = field(default_factory=dict)
    """Requests still in flight, per endpoint."""


NOTHING_HELD = Held()


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        _DLV.c.state == "pending",
        _DLV.c.next_attempt_at <= now,
        or_(_DLV.c.lease_until.is_(None), _DLV.c.lease_until <= now),
    )


def _signing_secrets(secret: str, previous: str | None, expires: datetime | None, now: datetime) -> tuple[str, ...]:
    # store.webhooks.active_secrets on a plain row: the previous secret signs too during its overlap
    if previous and expires is not None and now < expires:
        return (secret, previous)
    return (secret,)


def _due_rows(now: datetime, skip_endpoints: Collection[str]) -> Select[Any]:
    query = (
        select(_DLV.c.id, _DLV.c.endpoint_id, _DLV.c.next_attempt_at)
        .join_from(_DLV, _EP, _EP.c.id == _DLV.c.endpoint_id)
        .where(_due(now), _EP.c.enabled == True)  # noqa: E712
    )
    if skip_endpoints:
        query = query.where(_DLV.c.endpoint_id.not_in(skip_endpoints))
    return query


async def _scan(
    conn: AsyncConnection, *, now: datetime, quota: Callable[[str], int], limit: int, skip: Collection[str]
) -> list[str] | None:
    """Walk the due deliveries oldest first and pick each endpoint's first `quota(endpoint)`.

    Picks what ranking every due delivery per endpoint would, but reads only a page or
    two; None when a few pages do not settle it.
    """
    page = max(limit, _SCAN_PAGE)
    full = set(skip)
    seen: Counter[str] = Counter()
    picked: list[str] = []
    after: tuple[datetime, str] | None = None
    for _ in range(_SCAN_PAGES):
        # endpoints that got their share are left out of the next pages
        query = _due_rows(now, full).order_by(_DLV.c.next_attempt_at, _DLV.c.id).limit(page)
        if after is not None:
            query = query.where(tuple_(_DLV.c.next_attempt_at, _DLV.c.id) > tuple_(*after))
        rows = (await conn.execute(query)).all()
        for delivery_id, endpoint_id, _ in rows:
            seen[endpoint_id] += 1
            if seen[endpoint_id] <= quota(endpoint_id):
                picked.append(delivery_id)
                if len(picked) == limit:
                    return picked
            if seen[endpoint_id] >= quota(endpoint_id):
                full.add(endpoint_id)
        if len(rows) < page:
            return picked
        after = (rows[-1][2], rows[-1][0])
    return None


async def _ranked(
    conn: AsyncConnection, *, now: datetime, per_endpoint: int, limit: int, skip: Collection[str]
) -> list[str]:
    ranked = (
        _due_rows(now, skip)
        .add_columns(
            func.row_number()
            .over(partition_by=_DLV.c.endpoint_id, order_by=(_DLV.c.next_attempt_at, _DLV.c.id))
            .label("rank")
        )
        .subquery()
    )
    picked = (
        select(ranked.c.id)
        .where(ranked.c.rank <= per_endpoint)
        .order_by(ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )
    return list((await conn.execute(picked)).scalars())


async def _candidates(
    conn: AsyncConnection, *, now: datetime, per_endpoint: int, limit: int, held: Held
) -> list[Row[Any]]:
    """Each endpoint's oldest due deliveries, as many as it has free slots, oldest first; locked.

    Endpoints come first and the age second, so one backlogged endpoint cannot fill the batch.
    """
    sending = held.sending
    skip = [endpoint_id for endpoint_id, n in sending.items() if n >= per_endpoint]
    picked = await _scan(
        conn, now=now, quota=lambda e: per_endpoint - sending.get(e, 0), limit=limit, skip=skip
    )
    if picked is None:
        picked = await _ranked(conn, now=now, per_endpoint=per_endpoint, limit=limit, skip=skip)
    if not picked:
        return []
    # The due conditions are repeated so PostgreSQL re-checks them on rows another
    # dispatcher leased between the pick and the lock.
    rows = await conn.execute(
        select(
            _DLV.c.id,
            _DLV.c.endpoint_id,
            _DLV.c.next_attempt_at,
            _MSG.c.id.label("message_id"),
            _MSG.c.payload,
        )
        .join_from(_DLV, _MSG, _MSG.c.id == _DLV.c.message_id)
        .where(_DLV.c.id.in_(picked), _due(now))
        .with_for_update(skip_locked=True, of=_DLV)
    )
    return [r for r in rows if r.id not in held.leased]


async def _targets(
    conn: AsyncConnection, endpoint_ids: list[str], now: datetime
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Lock the endpoints (in id order, so dispatchers never deadlock); their url and secrets."""
    # Locking serialises claims per endpoint across dispatchers, so the in-flight count
    # that follows is exact (a no-op on SQLite, which is already serialised). NO KEY UPDATE:
    # writers adding deliveries take KEY SHARE locks on their endpoints for the foreign key,
    # in any order, and must neither wait for a claim nor deadlock with one.
    rows = await conn.execute(
        select(_EP.c.id, _EP.c.url, _EP.c.secret, _EP.c.previous_secret, _EP.c.previous_secret_expires_at)
        .where(_EP.c.id.in_(endpoint_ids))
        .order_by(_EP.c.id)
        .with_for_update(key_share=True)
    )
    return {r[0]: (r[1], _signing_secrets(r[2], r[3], r[4], now)) for r in rows}


async def _in_flight(
    conn: AsyncConnection, endpoint_ids: list[str], now: datetime, answered: Collection[str]
) -> Counter[str]:
    query = select(_DLV.c.endpoint_id, func.count()).where(
        _DLV.c.endpoint_id.in_(endpoint_ids), _DLV.c.state == "pending", _DLV.c.lease_until > now
    )
    if answered:
        query = query.where(_DLV.c.id.not_in(answered))
    rows = await conn.execute(query.group_by(_DLV.c.endpoint_id))
    return Counter({r[0]: int(r[1]) for r in rows})


async def _claim(
    conn: AsyncConnection,
    *,
    now: datetime,
    owner: str,
    settings: WebhookSettings,
    limit: int,
    held: Held = NOTHING_HELD,
) -> list[Claimed]:
    """Lease up to `limit` due deliveries, at most `concurrency_per_endpoint` in flight per endpoint."""
    per_endpoint = settings.concurrency_per_endpoint
    rows = await _candidates(conn, now=now, per_endpoint=per_endpoint, limit=limit, held=held)
    if not rows:
        return []
    endpoint_ids = sorted({r.endpoint_id for r in rows})
    targets = await _targets(conn, endpoint_ids, now)
    in_flight = await _in_flight(conn, endpoint_ids, now, held.answered)
    chosen = []
    for row in sorted(rows, key=lambda r: (r.next_attempt_at or now, r.id)):
        if row.endpoint_id in targets and in_flight[row.endpoint_id] < per_endpoint:
            in_flight[row.endpoint_id] += 1
            chosen.append(row)
    if not chosen:
        return []
    await conn.execute(
        update(_DLV)
        .where(_DLV.c.id.in_([r.id for r in chosen]))
        .values(lease_owner=owner, lease_until=now + lease_for(settings), attempts=_DLV.c.attempts + 1)
    )
    return [
        Claimed(r.id, r.endpoint_id, r.message_id, r.payload, *targets[r.endpoint_id], claimed_at=now)
        for r in chosen
    ]


async def _send(
    http: aiohttp.ClientSession,
    item: Claimed,
    *,
    settings: WebhookSettings,
    lookup: Lookup | None,
) -> AttemptResult:
    now = item.claimed_at
    body = item.payload.encode("utf-8")
    headers = signing.headers(item.secrets, item.message_id, now, body)
    return await deliver(
        http,
        item.url,
        body,
        headers,
        timeout_s=settings.timeout_seconds,
        max_response_bytes=EXCERPT_CHARS,
        allow_loopback=settings.allow_loopback,
        resolver=lookup,
        clock=lambda: now,
    )


@dataclass(slots=True)
class _Endpoint:
    """An endpoint's health as the results of one batch change it, written back once."""

    id: str
    seller_id: str
    url: str
    enabled: bool
    failing_since: datetime | None
    last_success_at: datetime | None
    changed: dict[str, Any] = field(default_factory=dict)

    def set(self, name: str, value: Any) -> None:
        if getattr(self, name) != value:
            setattr(self, name, value)
            self.changed[name] = value


class _Settlement:
    """Settles the deliveries of one batch: decides each outcome, then writes them grouped."""

    def __init__(
        self,
        session: AsyncSession,
        conn: AsyncConnection,
        *,
        now: datetime,
        settings: WebhookSettings,
        rand: Callable[[], float],
    ) -> None:
        self.session, self.conn, self.now, self.rand = session, conn, now, rand
        self.window = timedelta(days=settings.disable_after_days)
        self.endpoints: dict[str, _Endpoint] = {}
        self.succeeded: dict[int, list[str]] = {}
        self.failed: list[dict[str, Any]] = []
        self.retried: list[dict[str, Any]] = []
        self.wrote_endpoints = False

    def endpoint(self, row: Row[Any]) -> _Endpoint:
        found = self.endpoints.get(row.endpoint_id)
        if found is None:
            found = self.endpoints[row.endpoint_id] = _Endpoint(
                row.endpoint_id, row.seller_id, row.url, bool(row.enabled), row.failing_since, row.last_success_at
            )
        return found

    async def settle(self, row: Row[Any], result: AttemptResult) -> None:
        endpoint, now = self.endpoint(row), self.now
        released = {"id": row.id, "last_status": result.status, **_RELEASED}
        outcome = retry.classify(result.status, result.error)
        if outcome is retry.Outcome.SUCCESS:
            self.succeeded.setdefault(result.status or 0, []).append(row.id)
            endpoint.set("failing_since", None)
            last = endpoint.last_success_at
            if last is None or now - last >= _SUCCESS_GRANULARITY:
                endpoint.set("last_success_at", now)
            return
        if outcome is retry.Outcome.GONE:
            self.failed.append({**released, "state": "failed", "completed_at": now})
            if endpoint.enabled:
                await self.disable(endpoint, "gone: the endpoint answered 410")
            return
        failing_since = endpoint.failing_since or now
        endpoint.set("failing_since", failing_since)
        when = retry.next_attempt_at(row.attempts, now, self.rand(), result.retry_after)
        if when is None:
            self.failed.append({**released, "state": "failed", "completed_at": now})
        else:
            self.retried.append({**released, "next_attempt_at": when})
        if endpoint.enabled and retry.should_disable(
            failing_since, now, window=self.window, last_success_at=endpoint.last_success_at
        ):
            await self.disable(endpoint, f"failing since {failing_since.isoformat()}")

    async def disable(self, endpoint: _Endpoint, reason: str) -> None:
        endpoint.set("enabled", False)
        endpoint.changed.update(disabled_reason=reason, updated_at=self.now)
        # Written before the notice is queued, so the disabled endpoint is not sent its own notice.
        await self.write_endpoint(endpoint)
        await outbox.enqueue(
            self.session,
            seller_id=endpoint.seller_id,
            event_type="endpoint.disabled",
            now=self.now,
            data={
                "id": endpoint.id,
                "url": endpoint.url,
                "reason": reason,
                "failing_since": endpoint.failing_since.isoformat() if endpoint.failing_since else None,
            },
        )
        log.warning("webhook endpoint disabled", extra={"endpoint": endpoint.id, "reason": reason})

    async def write_endpoint(self, endpoint: _Endpoint) -> None:
        if endpoint.changed:
            await self.conn.execute(update(_EP).where(_EP.c.id == endpoint.id).values(**endpoint.changed))
            endpoint.changed = {}
            self.wrote_endpoints = True

    async def write(self) -> None:
        for status, ids in self.succeeded.items():
            await self.conn.execute(
                update(_DLV)
                .where(_DLV.c.id.in_(ids))
                .values(state="succeeded", completed_at=self.now, last_status=status, **_RELEASED)
            )
        await bulk.update_rows(self.conn, _DLV, self.failed, key="id")
        await bulk.update_rows(self.conn, _DLV, self.retried, key="id")
        # in id order, like the claim's locks, so two dispatchers never wait on each other in a cycle
        for endpoint_id in sorted(self.endpoints):
            await self.write_endpoint(self.endpoints[endpoint_id])


def _attempt_row(item: Claimed, result: AttemptResult, owner: str) -> dict[str, Any]:
    return {
        "delivery_id": item.delivery_id,
        "attempted_at": item.claimed_at,
        "status_code": result.status,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "response_excerpt": (result.response_excerpt or "")[:EXCERPT_CHARS] or None,
        "details": {"owner": owner},
    }


async def _record(
    session: AsyncSession,
    results: Sequence[Sent],
    *,
    now: datetime,
    owner: str,
    settings: WebhookSettings,
    rand: Callable[[], float],
) -> bool:
    """Log every attempt; settle the deliveries this dispatcher still holds the lease of.

    Returns whether endpoint rows were written (and so are locked until the commit).
    """
    conn = await session.connection()
    current = {
        r.id: r
        for r in await conn.execute(
            select(
                _DLV.c.id,
                _DLV.c.lease_owner,
                _DLV.c.attempts,
                _EP.c.id.label("endpoint_id"),
                _EP.c.seller_id,
                _EP.c.url,
                _EP.c.enabled,
                _EP.c.failing_since,
                _EP.c.last_success_at,
            )
            .join_from(_DLV, _EP, _EP.c.id == _DLV.c.endpoint_id)
            .where(_DLV.c.id.in_([item.delivery_id for item, _ in results]))
            .with_for_update(of=_DLV)
        )
    }
    # a delivery missing here went with its endpoint, deleted meanwhile
    logged = [(item, result) for item, result in results if item.delivery_id in current]
    await bulk.insert_rows(conn, _ATT, [_attempt_row(item, result, owner) for item, result in logged])
    settlement = _Settlement(session, conn, now=now, settings=settings, rand=rand)
    for item, result in logged:
        row = current[item.delivery_id]
        if row.lease_owner == owner:  # else re-armed or taken over in flight: the newer claim decides
            await settlement.settle(row, result)
    await settlement.write()
    return settlement.wrote_endpoints


async def run_once(
    sessionmaker: SessionMaker,
    http_session: aiohttp.ClientSession,
    *,
    now: datetime,
    settings: WebhookSettings,
    owner: str,
    rand: Callable[[], float],
    limit: int = CLAIM_LIMIT,
    lookup: Lookup | None = None,
) -> int:
    """Claim, send and settle one batch of due deliveries; return how many were sent.

    `rand` returns uniform numbers in [0, 1] for retry jitter; `lookup` replaces DNS.
    """
    async with write_transaction(sessionmaker) as session:
        claimed = await _claim(await session.connection(), now=now, owner=owner, settings=settings, limit=limit)
    if not claimed:
        return 0
    sent = await asyncio.gather(*(_send(http_session, item, settings=settings, lookup=lookup) for item in claimed))
    async with write_transaction(sessionmaker) as session:
        await _record(
            session, list(zip(claimed, sent, strict=True)), now=now, owner=owner, settings=settings, rand=rand
        )
    return len(claimed)


class _InFlight:
    """The deliveries this dispatcher has leased and not recorded: sending, or answered."""

    def __init__(self) -> None:
        self.leased: dict[str, Claimed] = {}
        self.done: list[Sent] = []
        self.arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def sending(self) -> int:
        return len(self.leased) - len(self.done)

    def start(self, item: Claimed, attempt: Coroutine[Any, Any, AttemptResult]) -> None:
        self.leased[item.delivery_id] = item
        task = asyncio.create_task(self._finish(item, attempt))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, item: Claimed, attempt: Coroutine[Any, Any, AttemptResult]) -> None:
        try:
            result = await attempt
        except Exception:
            # `deliver` turns network and HTTP failures into results; anything else is a bug,
            # and the lease brings the delivery back as if this process had died
            log.exception("webhook delivery attempt crashed", extra={"delivery": item.delivery_id})
            del self.leased[item.delivery_id]
            return
        # `take` swaps the list, so look it up only once the result is here
        self.done.append((item, result))
        self.arrived.set()

    def held(self) -> Held:
        answered = {item.delivery_id for item, _ in self.done}
        sending = Counter(item.endpoint_id for key, item in self.leased.items() if key not in answered)
        return Held(leased=set(self.leased), answered=answered, sending=sending)

    def take(self) -> list[Sent]:
        done, self.done = self.done, []
        for item, _ in done:
            del self.leased[item.delivery_id]
        self.arrived.clear()
        return done

    async def results(self, *, wait_s: float, window_s: float) -> None:
        """Wait up to `wait_s` for a result, then up to `window_s` more while others are still out."""
        loop = asyncio.get_running_loop()
        if not self.done:
            await _wait(self.arrived, wait_s)
        deadline = loop.time() + window_s
        while self.done and self.sending and (left := deadline - loop.time()) > 0:
            self.arrived.clear()
            await _wait(self.arrived, left)

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


class _Pump:
    """One drain: cycles of (record the results back, claim for the freed slots, send)."""

    def __init__(
        self,
        sessionmaker: SessionMaker,
        http_session: aiohttp.ClientSession,
        *,
        clock: Clock,
        settings: WebhookSettings,
        owner: str,
        rand: Callable[[], float],
        limit: int,
        budget: int,
        lookup: Lookup | None,
    ) -> None:
        self.sessionmaker, self.http_session, self.clock = sessionmaker, http_session, clock
        self.settings, self.owner, self.rand, self.lookup = settings, owner, rand, lookup
        self.limit, self.budget = limit, budget
        self.flight = _InFlight()
        self.claimed = 0

    async def run(self) -> int:
        try:
            while True:
                await self.cycle()
                if not self.flight.leased:
                    return self.claimed
                # with nothing back yet, look for newly due work once per tick anyway
                await self.flight.results(wait_s=self.settings.tick_seconds, window_s=RECORD_WINDOW_S)
        finally:
            await self.flight.cancel()

    async def cycle(self) -> None:
        results = self.flight.take()
        claimed: list[Claimed] | None = None
        async with write_transaction(self.sessionmaker) as session:
            now = self.clock()
            wrote_endpoints = bool(results) and await _record(
                session, results, now=now, owner=self.owner, settings=self.settings, rand=self.rand
            )
            # The claim locks endpoints in id order; endpoint rows the results changed are
            # locked already, in another order, so they are committed first.
            if not wrote_endpoints:
                claimed = await self.claim(session, now)
        if claimed is None:
            async with write_transaction(self.sessionmaker) as session:
                claimed = await self.claim(session, self.clock())
        for item in claimed:
            self.flight.start(item, _send(self.http_session, item, settings=self.settings, lookup=self.lookup))
        self.claimed += len(claimed)

    async def claim(self, session: AsyncSession, now: datetime) -> list[Claimed]:
        room = min(self.limit - self.flight.sending, self.budget - self.claimed)
        if room <= 0:
            return []
        conn = await session.connection()
        held = self.flight.held()
        return await _claim(conn, now=now, owner=self.owner, settings=self.settings, limit=room, held=held)


async def drain(
    sessionmaker: SessionMaker,
    http_session: aiohttp.ClientSession,
    *,
    clock: Clock,
    settings: WebhookSettings,
    owner: str,
    rand: Callable[[], float],
    limit: int = CLAIM_LIMIT,
    budget: int = CLAIM_LIMIT * MAX_PASSES_PER_TICK,
    lookup: Lookup | None = None,
) -> int:
    """Send due deliveries until none is due or `budget` were claimed; return how many were sent.

    Up to `limit` requests stay in flight. Each cycle is one transaction that records the
    results back so far and claims deliveries for the freed slots while the other
    requests go on, so a slow endpoint holds only its own slots.
    """
    pump = _Pump(
        sessionmaker,
        http_session,
        clock=clock,
        settings=settings,
        owner=owner,
        rand=rand,
        limit=limit,
        budget=budget,
        lookup=lookup,
    )
    return await pump.run()


async def http_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the guarded delivery session and this process's lease owner id."""
    lookup: Lookup | None = app[keys.SERVICES].get("webhook_lookup")
    session = make_session(allow_loopback=app[keys.SETTINGS].webhooks.allow_loopback, lookup=lookup)
    app[WEBHOOK_HTTP] = session
    app[WEBHOOK_OWNER] = new_owner()
    yield
    await session.close()


async def tick(app: web.Application) -> None:
    """The periodic job: drain due deliveries, a bounded number per tick."""
    await drain(
        app[keys.SESSIONMAKER],
        app[WEBHOOK_HTTP],
        clock=app[keys.CLOCK],
        settings=app[keys.SETTINGS].webhooks,
        owner=app[WEBHOOK_OWNER],
        rand=random.random,
        lookup=app[keys.SERVICES].get("webhook_lookup"),
    )
