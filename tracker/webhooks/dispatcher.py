"""The webhook dispatcher: claim due deliveries with a lease, send them, record the outcome.

At-least-once: a delivery is leased before it is sent and settled only afterwards, so a
dispatcher that dies in between leaves a lease that expires and another dispatcher sends
the same message again, with the same `webhook-id`. Any number of dispatchers may run: on
PostgreSQL they skip each other's locked rows, on SQLite the claim holds the write lock.

`run_once` settles one batch; `drain` (the periodic job) keeps requests in flight while the
results that came back are recorded and the next deliveries are claimed. Both read and
write plain rows: ORM objects cost more per delivery than the request itself.
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
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Row,
    Select,
    String,
    Table,
    all_,
    and_,
    any_,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
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
class _Held:
    """What a dispatcher holds when it claims again before recording everything it sent."""

    leased: Collection[str] = ()
    """Deliveries leased and not recorded yet: one re-armed meanwhile waits until the old
    copy is recorded, so each claim is decided by its own attempt."""
    answered: Collection[str] = ()
    """Those of them whose response is back: still leased, but no longer in flight."""
    sending: Mapping[str, int] = field(default_factory=dict)
    """Requests still in flight, per endpoint."""


_NOTHING_HELD = _Held()


def _among(conn: AsyncConnection, column: ColumnElement[str], values: Collection[str]) -> ColumnElement[bool]:
    """`column IN values`. On PostgreSQL `= ANY(array)`: one statement text for any number
    of values, so the driver prepares it once instead of once per length."""
    if conn.dialect.name == "postgresql":
        return column == any_(literal(list(values), ARRAY(String)))
    return column.in_(values)


def _not_among(conn: AsyncConnection, column: ColumnElement[str], values: Collection[str]) -> ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        return column != all_(literal(list(values), ARRAY(String)))
    return column.not_in(values)


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


def _due_rows(conn: AsyncConnection, now: datetime, skip_endpoints: Collection[str]) -> Select[Any]:
    query = (
        select(_DLV.c.id, _DLV.c.endpoint_id, _DLV.c.next_attempt_at)
        .join_from(_DLV, _EP, _EP.c.id == _DLV.c.endpoint_id)
        .where(_due(now), _EP.c.enabled == True)  # noqa: E712
    )
    if skip_endpoints:
        query = query.where(_not_among(conn, _DLV.c.endpoint_id, skip_endpoints))
    return query


def _locked(query: Select[Any]) -> Select[Any]:
    """The rows of `query` with their message, locked for this claim; rows locked by
    another dispatcher are skipped."""
    return (
        query.add_columns(_MSG.c.id.label("message_id"), _MSG.c.payload)
        .join(_MSG, _MSG.c.id == _DLV.c.message_id)
        .with_for_update(skip_locked=True, of=_DLV)
    )


async def _scan(
    conn: AsyncConnection, *, now: datetime, quota: Callable[[str], int], limit: int, held: _Held, skip: set[str]
) -> list[Row[Any]] | None:
    """Walk the due deliveries oldest first, locking them, and pick each endpoint's first `quota`.

    Picks what ranking every due delivery per endpoint would, but reads only a page or
    two; None when a few pages do not settle it. Rows read but not picked stay locked
    until the commit, which only makes other dispatchers pass over them meanwhile.
    """
    page = max(limit, _SCAN_PAGE)
    full = set(skip)
    seen: Counter[str] = Counter()
    picked: list[Row[Any]] = []
    after: tuple[datetime, str] | None = None
    for _ in range(_SCAN_PAGES):
        # endpoints that got their share are left out of the next pages
        query = _due_rows(conn, now, full).order_by(_DLV.c.next_attempt_at, _DLV.c.id).limit(page)
        if after is not None:
            query = query.where(tuple_(_DLV.c.next_attempt_at, _DLV.c.id) > tuple_(*after))
        rows = (await conn.execute(_locked(query))).all()
        for row in rows:
            if row.id in held.leased:
                continue  # re-armed while its old copy is out: see _Held.leased
            seen[row.endpoint_id] += 1
            if seen[row.endpoint_id] <= quota(row.endpoint_id):
                picked.append(row)
                if len(picked) == limit:
                    return picked
            if seen[row.endpoint_id] >= quota(row.endpoint_id):
                full.add(row.endpoint_id)
        if len(rows) < page:
            return picked
        after = (rows[-1].next_attempt_at, rows[-1].id)
    return None


async def _ranked(
    conn: AsyncConnection, *, now: datetime, per_endpoint: int, limit: int, held: _Held, skip: Collection[str]
) -> list[Row[Any]]:
    """The same pick by ranking every due delivery per endpoint in the database."""
    ranked = (
        _due_rows(conn, now, skip)
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
    # The due conditions are repeated so PostgreSQL re-checks them on rows another
    # dispatcher leased between the ranking and the lock.
    rows = await conn.execute(_locked(_due_rows(conn, now, ()).where(_DLV.c.id.in_(picked))))
    return [r for r in rows if r.id not in held.leased]


async def _candidates(
    conn: AsyncConnection, *, now: datetime, per_endpoint: int, limit: int, held: _Held
) -> list[Row[Any]]:
    """Each endpoint's oldest due deliveries, as many as it has free slots, oldest first; locked.

    Endpoints come first and the age second, so one backlogged endpoint cannot fill the batch.
    """
    sending = held.sending
    skip = {endpoint_id for endpoint_id, n in sending.items() if n >= per_endpoint}
    picked = await _scan(
        conn, now=now, quota=lambda e: per_endpoint - sending.get(e, 0), limit=limit, held=held, skip=skip
    )
    if picked is None:
        picked = await _ranked(conn, now=now, per_endpoint=per_endpoint, limit=limit, held=held, skip=skip)
    return picked


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
        .where(_among(conn, _EP.c.id, endpoint_ids))
        .order_by(_EP.c.id)
        .with_for_update(key_share=True)
    )
    return {r[0]: (r[1], _signing_secrets(r[2], r[3], r[4], now)) for r in rows}


async def _in_flight(
    conn: AsyncConnection, endpoint_ids: list[str], now: datetime, answered: Collection[str]
) -> Counter[str]:
    query = select(_DLV.c.endpoint_id, func.count()).where(
        _among(conn, _DLV.c.endpoint_id, endpoint_ids), _DLV.c.state == "pending", _DLV.c.lease_until > now
    )
    if answered:
        query = query.where(_not_among(conn, _DLV.c.id, answered))
    rows = await conn.execute(query.group_by(_DLV.c.endpoint_id))
    return Counter({r[0]: int(r[1]) for r in rows})


async def _claim(
    conn: AsyncConnection,
    *,
    now: datetime,
    owner: str,
    settings: WebhookSettings,
    limit: int,
    held: _Held = _NOTHING_HELD,
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
        .where(_among(conn, _DLV.c.id, [r.id for r in chosen]))
        .values(lease_owner=owner, lease_until=now + lease_for(settings), attempts=_DLV.c.attempts + 1)
    )
    return [
        Claimed(r.id, r.endpoint_id, r.message_id, r.payload, *targets[r.endpoint_id], claimed_at=now) for r in chosen
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
        self, conn: AsyncConnection, *, now: datetime, settings: WebhookSettings, rand: Callable[[], float]
    ) -> None:
        self.conn, self.now, self.rand = conn, now, rand
        self.window = timedelta(days=settings.disable_after_days)
        self.endpoints: dict[str, _Endpoint] = {}
        self.succeeded: dict[int, list[str]] = {}
        self.failed: list[dict[str, Any]] = []
        self.retried: list[dict[str, Any]] = []

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
        # the session joins the transaction under way: it flushes into it and leaves it open
        async with AsyncSession(bind=self.conn) as session:
            await outbox.enqueue(
                session,
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
            await session.flush()
        log.warning("webhook endpoint disabled", extra={"endpoint": endpoint.id, "reason": reason})

    async def write_endpoint(self, endpoint: _Endpoint) -> None:
        if endpoint.changed:
            await self.conn.execute(update(_EP).where(_EP.c.id == endpoint.id).values(**endpoint.changed))
            endpoint.changed = {}

    async def write(self) -> None:
        for status, ids in self.succeeded.items():
            await self.conn.execute(
                update(_DLV)
                .where(_among(self.conn, _DLV.c.id, ids))
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
    conn: AsyncConnection,
    results: Sequence[Sent],
    *,
    now: datetime,
    owner: str,
    settings: WebhookSettings,
    rand: Callable[[], float],
) -> None:
    """Log every attempt; settle the deliveries this dispatcher still holds the lease of."""
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
            .where(_among(conn, _DLV.c.id, [item.delivery_id for item, _ in results]))
            .with_for_update(of=_DLV)
        )
    }
    # a delivery missing here went with its endpoint, deleted meanwhile
    logged = [(item, result) for item, result in results if item.delivery_id in current]
    await bulk.insert_rows(conn, _ATT, [_attempt_row(item, result, owner) for item, result in logged])
    settlement = _Settlement(conn, now=now, settings=settings, rand=rand)
    for item, result in logged:
        row = current[item.delivery_id]
        if row.lease_owner == owner:  # else re-armed or taken over in flight: the newer claim decides
            await settlement.settle(row, result)
    await settlement.write()


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
            await session.connection(),
            list(zip(claimed, sent, strict=True)),
            now=now,
            owner=owner,
            settings=settings,
            rand=rand,
        )
    return len(claimed)


class _InFlight:
    """The deliveries this dispatcher has leased and not recorded: sending, answered, or
    being recorded."""

    def __init__(self) -> None:
        self.leased: dict[str, Claimed] = {}
        self.done: list[Sent] = []
        self.recording: list[Sent] = []
        self.arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def sending(self) -> int:
        return len(self.leased) - len(self.done) - len(self.recording)

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

    def held(self) -> _Held:
        answered = {item.delivery_id for item, _ in self.done} | {item.delivery_id for item, _ in self.recording}
        sending = Counter(item.endpoint_id for key, item in self.leased.items() if key not in answered)
        return _Held(leased=set(self.leased), answered=answered, sending=sending)

    def take(self) -> list[Sent]:
        """The results back so far, to record; they count as answered until `recorded`."""
        self.recording, self.done = self.done, []
        self.arrived.clear()
        return self.recording

    def recorded(self, ok: bool) -> None:
        """The results taken are written (or, after a failed transaction, back in the queue)."""
        if ok:
            for item, _ in self.recording:
                del self.leased[item.delivery_id]
        else:
            self.done[:0] = self.recording
        self.recording = []

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


@contextlib.asynccontextmanager
async def _writer(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection kept for a whole drain; on SQLite each transaction takes the write lock
    at BEGIN, as `write_transaction` does."""
    async with engine.connect() as conn:
        yield await conn.execution_options(sqlite_begin="IMMEDIATE")


def _retryable(exc: DBAPIError) -> bool:
    # a deadlock or serialisation failure rolls one transaction back; its work is redone
    return getattr(exc.orig, "sqlstate", None) in {"40P01", "40001"}


class _Pump:
    """One drain: cycles of (record the results back, claim for the freed slots, send).

    On PostgreSQL the record and the claim are two transactions on two connections at
    once: the claim counts the results being recorded as answered, so it need not wait.
    SQLite has one writer at a time, so there both go in one transaction.
    """

    def __init__(
        self,
        engine: AsyncEngine,
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
        self.engine, self.http_session, self.clock = engine, http_session, clock
        self.settings, self.owner, self.rand, self.lookup = settings, owner, rand, lookup
        self.limit, self.budget = limit, budget
        self.flight = _InFlight()
        self.claimed = 0

    async def run(self) -> int:
        async with contextlib.AsyncExitStack() as stack:
            claiming = await stack.enter_async_context(_writer(self.engine))
            together = self.engine.dialect.name == "sqlite"
            # on SQLite the second connection only reads, without the write lock
            recording = await stack.enter_async_context(self.engine.connect() if together else _writer(self.engine))
            try:
                while True:
                    results = self.flight.take()
                    if together:
                        claimed = await self.record_and_claim(claiming, results, reading=recording)
                    else:
                        async with asyncio.TaskGroup() as group:
                            group.create_task(self.record(recording, results))
                            claiming_task = group.create_task(self.claim(claiming))
                        claimed = claiming_task.result()
                    self.start(claimed)
                    if not self.flight.leased:
                        # a claim beside a record may have passed over a delivery re-armed
                        # while in flight; the next one sees it
                        if together or not results:
                            return self.claimed
                        continue
                    # with nothing back yet, look for newly due work once per tick anyway
                    await self.flight.results(wait_s=self.settings.tick_seconds, window_s=RECORD_WINDOW_S)
            finally:
                await self.flight.cancel()

    async def record_and_claim(
        self, conn: AsyncConnection, results: list[Sent], *, reading: AsyncConnection
    ) -> list[Claimed]:
        # Idle cycles only read: a writer holding SQLite's lock for nothing would fail other
        # writers that read first and then write ("database is locked").
        if not results and not await self.anything_due(reading):
            return []
        async with conn.begin():
            now = self.clock()
            if results:
                await _record(conn, results, now=now, owner=self.owner, settings=self.settings, rand=self.rand)
            # Recorded in this very transaction, so the claim may lease them again. Should
            # it fail, the drain stops, and the leases bring them back as after a crash.
            self.flight.recorded(ok=True)
            return await self.lease(conn, now)

    async def record(self, conn: AsyncConnection, results: list[Sent]) -> None:
        if not results:
            return
        try:
            async with conn.begin():
                await _record(conn, results, now=self.clock(), owner=self.owner, settings=self.settings, rand=self.rand)
        except DBAPIError as exc:
            self.flight.recorded(ok=False)
            if not _retryable(exc):
                raise
            log.warning("webhook results not recorded, trying again", extra={"error": str(exc.orig)})
            return
        except BaseException:
            self.flight.recorded(ok=False)
            raise
        self.flight.recorded(ok=True)

    async def claim(self, conn: AsyncConnection) -> list[Claimed]:
        try:
            async with conn.begin():
                return await self.lease(conn, self.clock())
        except DBAPIError as exc:
            if not _retryable(exc):
                raise
            log.warning("webhook claim rolled back, trying again", extra={"error": str(exc.orig)})
            return []

    async def anything_due(self, conn: AsyncConnection) -> bool:
        room = min(self.limit - self.flight.sending, self.budget - self.claimed)
        if room <= 0:
            return False
        per_endpoint = self.settings.concurrency_per_endpoint
        async with conn.begin():
            due = await _candidates(
                conn, now=self.clock(), per_endpoint=per_endpoint, limit=room, held=self.flight.held()
            )
        return bool(due)

    async def lease(self, conn: AsyncConnection, now: datetime) -> list[Claimed]:
        room = min(self.limit - self.flight.sending, self.budget - self.claimed)
        if room <= 0:
            return []
        held = self.flight.held()
        return await _claim(conn, now=now, owner=self.owner, settings=self.settings, limit=room, held=held)

    def start(self, claimed: list[Claimed]) -> None:
        for item in claimed:
            self.flight.start(item, _send(self.http_session, item, settings=self.settings, lookup=self.lookup))
        self.claimed += len(claimed)


async def drain(
    engine: AsyncEngine,
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

    Up to `limit` requests stay in flight. Results are recorded and the freed slots
    claimed again while the other requests go on, so a slow endpoint holds only its
    own slots.
    """
    pump = _Pump(
        engine,
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
        app[keys.ENGINE],
        app[WEBHOOK_HTTP],
        clock=app[keys.CLOCK],
        settings=app[keys.SETTINGS].webhooks,
        owner=app[WEBHOOK_OWNER],
        rand=random.random,
        lookup=app[keys.SERVICES].get("webhook_lookup"),
    )
