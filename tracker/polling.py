"""The tracking engine: claim due shipments, poll carriers in batches, persist, reschedule.

One cycle (`Poller.run_once`): lease due shipments, group them by carrier (the carrier, or
the next untried candidate), cut batches at the adapter's batch limit and call adapters
concurrently inside each carrier's token bucket and circuit breaker. Each batch's results
are written in ONE transaction: new events, status, ETA, next poll, lease release and the
outbox messages and notifications they cause. A worker that dies mid-cycle loses nothing:
its leases expire and another worker polls those shipments again. The periodic job runs
`Poller.run_backlog`: cycles back to back while claims come back full, each overlapping
the previous one's writes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from carriers.base import NOWHERE, CarrierError, CarrierEvent, RateLimited, TrackResult
from carriers.status import CUSTOMS, Status, SubStatus
from tracker import keys
from tracker.carrier_registry import CarrierRuntime, build_carriers
from tracker.clock import Clock
from tracker.db import SessionMaker, write_transaction
from tracker.eta import Eta, LaneEstimate, estimate, eta_moved, lane_estimate
from tracker.models import WebhookEndpoint
from tracker.models.types import iso_text
from tracker.schedule import PollPolicy, backoff, next_poll
from tracker.settings import PollingSettings
from tracker.store import outbox
from tracker.store import tracking as store
from tracker.store.notifications import MILESTONES, can_email, notification_row
from tracker.store.tracking import Due, PollState
from tracker.timeline import derive_status, merge_keyed

log = logging.getLogger("tracker.polling")

Sleep = Callable[[float], Awaitable[None]]
_CONFIRMABLE = frozenset({Status.DELIVERED, Status.RETURNED})
#: a failed call is retried after full-jitter backoff between these bounds (seconds)
ERROR_BACKOFF_BASE = 60.0
ERROR_BACKOFF_CAP = 4 * 3600.0


def owner_id() -> str:
    """hostname:pid:random, unique per process run, for leases."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(slots=True)
class CycleReport:
    """What one cycle did; handy for logs, metrics and tests."""

    claimed: int = 0
    applied: int = 0
    requests: int = 0
    rescheduled: int = 0
    failed_batches: int = 0
    new_events: int = 0


#: a shipment, the carrier's answer about it (None: nothing usable) and the carrier asked
_Item = tuple[Due, TrackResult | None, str]


@dataclass(slots=True)
class _Cycle:
    now: datetime
    report: CycleReport
    lanes: dict[tuple[str, str, str], LaneEstimate | None] = field(default_factory=dict)
    #: index into carrier_candidates tried so far, per shipment without a carrier
    attempt: dict[str, int] = field(default_factory=dict)
    #: results waiting to be written, and the tasks writing them (`Poller._enqueue`)
    pending: list[_Item] = field(default_factory=list)
    writers: set[asyncio.Task[None]] = field(default_factory=set)
    #: the first write that failed: the cycle is abandoned there, and `_flush` raises it
    failure: Exception | None = None
    #: set by `_abandon`, by a batch that raised and by a failed write: batches not yet sent
    #: are not sent, and results are not written
    abandoned: bool = False
    claimed: list[Due] = field(default_factory=list)


@dataclass(slots=True)
class _Writes:
    """Rows one batch's transaction inserts in bulk at the end."""

    #: values in `store.EVENT_COLUMNS` order
    events: list[tuple[Any, ...]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    endpoints: dict[str, list[WebhookEndpoint]] = field(default_factory=dict)
    #: (shipment, customer milestone) reached in this batch
    milestones: list[tuple[PollState, str]] = field(default_factory=list)


def pick_result(results: Sequence[TrackResult], registered_at: datetime) -> TrackResult | None:
    """The result that matches a registration when one number maps to several shipments:
    the newest that began at or after the registration, else the newest."""
    found = [r for r in results if r.found and r.error is None]
    if not found:
        return None
    if len(found) == 1:
        return found[0]

    def began(r: TrackResult) -> datetime:
        return min((e.occurred_at for e in r.events), default=registered_at)

    after = [r for r in found if began(r) >= registered_at]
    return max(after or found, key=began)


def _event_row(shipment_id: str, fp: str, e: CarrierEvent, now: datetime) -> tuple[Any, ...]:
    """A new event's values in `store.EVENT_COLUMNS` order (`test_event_row_order`).

    Enum values are read as `_value_`: the `value` property runs two Python-level calls,
    several times the cost of the attribute, five times an event here and in `_event_view`.
    """
    loc = e.location or NOWHERE
    return (
        shipment_id,
        fp,
        e.occurred_at,
        e.time_basis._value_,
        e.local_time[:32],
        e.utc_offset_minutes,
        e.status._value_,
        e.sub_status._value_,
        e.raw_code[:64],
        e.description[:1000],
        (loc.city or None) and loc.city[:200],
        (loc.region or None) and loc.region[:200],
        loc.country,
        (loc.postcode or None) and loc.postcode[:32],
        e.provider[:64],
        now,
    )


def _event_view(e: CarrierEvent) -> dict[str, Any]:
    loc = e.location or NOWHERE
    return {
        "occurred_at": iso_text(e.occurred_at),
        "local_time": e.local_time,
        "status": e.status._value_,
        "sub_status": e.sub_status._value_,
        "description": e.description,
        "provider": e.provider,
        "location": {"city": loc.city, "region": loc.region, "country": loc.country, "postcode": loc.postcode},
    }


def _iso(dt: datetime | None) -> str | None:
    return iso_text(dt) if dt is not None else None


def _deciding(events: Sequence[CarrierEvent], previous: Status) -> list[CarrierEvent]:
    """The events `derive_status` looks at in a merged (sorted) timeline: the last one, and
    the last one with the previous status (what backs a terminal status). Passing only
    these gives the same answer without hashing the whole timeline again."""
    if not events:
        return []
    backing = next((e for e in reversed(events) if e.status == previous), None)
    return [events[-1]] if backing is None or backing is events[-1] else [backing, events[-1]]


def answer_digest(result: TrackResult, code: str, s: PollState) -> str:
    """Digest of a carrier's answer about a shipment and of the status the shipment has.

    Everything `_apply_one` reads from the answer is in it, so is the status and when it
    last changed. When a poll's digest equals the one the previous poll stored, that poll
    left the status the merged timeline gives, and merging the same answer again would
    add no event and give the same status (`derive_status` is idempotent): the poll skips
    reading the stored timeline and fingerprinting the answer's events.
    """
    events = [
        (
            e.occurred_at,
            e.time_basis,
            e.local_time,
            e.status,
            e.sub_status,
            e.raw_code,
            e.description,
            None if (place := e.location) is None else (place.city, place.region, place.country, place.postcode),
            e.provider,
            e.utc_offset_minutes,
        )
        for e in result.events
    ]
    document = (
        code,
        s.status,
        s.sub_status,
        s.status_changed_at,
        result.status,
        result.sub_status,
        result.signed_by,
        result.origin_country,
        result.estimated_delivery,
        result.estimated_delivery_end,
        events,
    )
    try:
        encoded = orjson.dumps(document)
    except orjson.JSONEncodeError:
        # what orjson refuses (a float it cannot write, say) never matches: the full merge runs
        return ""
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


def _customs_since(events: Sequence[CarrierEvent]) -> datetime | None:
    """When the trailing run of customs events began (None when not in customs)."""
    since = None
    for event in reversed(events):
        if event.sub_status not in CUSTOMS:
            break
        since = event.occurred_at
    return since


class Poller:
    """Polls carriers for due shipments. Time, randomness and sleeping are injected."""

    def __init__(
        self,
        sessionmaker: SessionMaker,
        carriers: Mapping[str, CarrierRuntime],
        *,
        clock: Clock,
        settings: PollingSettings,
        owner: str | None = None,
        rand: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.carriers = dict(carriers)
        self.clock = clock
        self.settings = settings
        self.owner = owner or owner_id()
        self.rand = rand
        self.sleep = sleep
        self.default_policy = PollPolicy(jitter=settings.jitter)
        # SQLite has one writer at a time: batches of this process queue here instead of
        # in SQLite's busy handler, which polls with sleeps of up to 100 ms
        self._serial = sessionmaker.kw["bind"].dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        #: transactions one cycle writes results in at the same time; PostgreSQL overlaps
        #: one transaction's round trips with another's work
        self._max_writers = 1 if self._serial else 2

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        if not self._serial:
            async with write_transaction(self.sessionmaker) as session:
                yield session
            return
        async with self._write_lock, write_transaction(self.sessionmaker) as session:
            yield session

    def policy(self, code: str | None) -> PollPolicy:
        runtime = self.carriers.get(code or "")
        return runtime.policy if runtime is not None else self.default_policy

    # --- the cycle ----------------------------------------------------------------------

    async def run_once(self) -> CycleReport:
        """Claim due shipments and poll them once. Returns what was done."""
        cycle = await self._claim()
        try:
            await self._poll_claimed(cycle)
            await self._flush(cycle)
        except BaseException:
            _abandon(cycle)
            raise
        _log_cycle(cycle.report)
        return cycle.report

    async def run_backlog(self) -> CycleReport:
        """Cycles back to back while claims come back full (what the periodic job runs).

        A cycle's carrier calls are over before its writes are: the next cycle claims and
        polls meanwhile, so the carriers, the parsers and the database all stay busy. At most
        two cycles are in flight; a cycle that claims less than the limit is the last.
        Returns the sum of the cycles' reports.
        """
        total = CycleReport()
        cycles: list[_Cycle] = []
        flushes: list[asyncio.Task[None]] = []
        try:
            while True:
                cycle = await self._claim()
                cycles.append(cycle)
                await self._poll_claimed(cycle)
                flushes.append(asyncio.create_task(self._flush(cycle)))
                if len(flushes) > 1:
                    await flushes.pop(0)
                    _finish(cycles.pop(0).report, total)
                if cycle.report.claimed < self.settings.claim_limit:
                    break
            await flushes.pop()
            _finish(cycles.pop().report, total)
        except BaseException:
            for unfinished in cycles:
                _abandon(unfinished)
            for flush in flushes:
                if flush.done() and not flush.cancelled():
                    # a write that failed too is not reported twice: the error raised is the one
                    flush.exception()
                flush.cancel()
            raise
        return total

    async def _claim(self) -> _Cycle:
        now = self.clock()
        cycle = _Cycle(now=now, report=CycleReport())
        lease_until = now + timedelta(seconds=self.settings.lease_seconds)
        async with self._writing() as session:
            claimed = await store.claim_due(
                session, now=now, owner=self.owner, lease_until=lease_until, limit=self.settings.claim_limit
            )
        cycle.claimed = claimed
        cycle.report.claimed = len(claimed)
        return cycle

    async def _poll_claimed(self, cycle: _Cycle) -> None:
        """Call the carriers about every claimed shipment; results queue for `_flush`."""
        work = cycle.claimed
        while work:
            groups: dict[str, list[Due]] = {}
            unroutable: list[Due] = []
            for shipment in work:
                code = self._route(shipment, cycle)
                if code is None:
                    unroutable.append(shipment)
                else:
                    groups.setdefault(code, []).append(shipment)
            self._enqueue([(s, None, s.carrier or "") for s in unroutable], cycle)
            retry = await asyncio.gather(*(self._poll_carrier(code, ships, cycle) for code, ships in groups.items()))
            work = [s for group in retry for s in group]

    def _route(self, shipment: Due, cycle: _Cycle) -> str | None:
        """The carrier to ask: the known carrier, else the next untried candidate we can reach."""
        if shipment.carrier:
            return shipment.carrier if shipment.carrier in self.carriers else None
        candidates = shipment.carrier_candidates or []
        i = cycle.attempt.get(shipment.id, -1) + 1
        while i < len(candidates) and candidates[i] not in self.carriers:
            i += 1
        cycle.attempt[shipment.id] = i
        return candidates[i] if i < len(candidates) else None

    async def _poll_carrier(self, code: str, shipments: list[Due], cycle: _Cycle) -> list[Due]:
        limit = max(1, self.carriers[code].adapter.batch_limit)
        batches = [shipments[i : i + limit] for i in range(0, len(shipments), limit)]
        gate = asyncio.Semaphore(self.settings.concurrency_per_carrier)

        async def one(batch: list[Due]) -> list[Due]:
            async with gate:
                try:
                    return await self._poll_batch(code, batch, cycle)
                except BaseException:
                    # what escapes a batch abandons the cycle (`run_once`): marked before
                    # the gate lets the next batch in, so that one is not sent either
                    cycle.abandoned = True
                    raise

        retry = await asyncio.gather(*(one(b) for b in batches))
        return [s for group in retry for s in group]

    async def _wait_for_token(self, runtime: CarrierRuntime) -> float:
        """Take a token, sleeping (injected) for short waits; returns a too-long wait instead."""
        wait = runtime.bucket.try_acquire()
        while wait > 0:
            if wait > self.settings.max_token_wait_seconds:
                return wait
            await self.sleep(wait)
            wait = runtime.bucket.try_acquire()
        return 0.0

    async def _poll_batch(self, code: str, batch: list[Due], cycle: _Cycle) -> list[Due]:
        """Ask the carrier about one batch; returns shipments to try with their next candidate."""
        runtime = self.carriers[code]
        now = cycle.now
        if cycle.abandoned:
            # the cycle failed elsewhere while this batch waited its turn; its lease expires
            return []
        if not runtime.breaker.allow():
            await self._reschedule(batch, now + timedelta(seconds=max(1.0, runtime.breaker.retry_in())), cycle)
            return []
        wait = await self._wait_for_token(runtime)
        if wait > 0:
            await self._reschedule(batch, now + timedelta(seconds=wait), cycle)
            return []
        numbers = list(dict.fromkeys(s.tracking_number for s in batch))
        cycle.report.requests += 1
        try:
            results = await runtime.adapter.track(numbers)
        except RateLimited as err:
            pause = err.retry_after if err.retry_after is not None else runtime.adapter.default_retry_after
            runtime.bucket.pause_for(pause)
            log.info("carrier rate limited", extra={"carrier": code, "retry_after": pause})
            await self._reschedule(batch, now + timedelta(seconds=max(1.0, pause)), cycle)
            return []
        except Exception as err:
            # an adapter's bug (anything but a `CarrierError`) fails this batch like an
            # outage does, with its traceback logged: raised, it would abandon the whole cycle,
            # and the same answer would do so again once the leases expire
            unexpected = not isinstance(err, CarrierError)
            runtime.breaker.record_failure()
            cycle.report.failed_batches += 1
            log.log(
                logging.ERROR if unexpected else logging.WARNING,
                "carrier call failed",
                extra={"carrier": code, "error": str(err), "error_type": type(err).__name__},
                exc_info=unexpected,
            )
            await self._reschedule(batch, None, cycle, failed=True)
            return []
        runtime.breaker.record_success()
        by_number: dict[str, list[TrackResult]] = {}
        for answer in results:
            by_number.setdefault(answer.tracking_number, []).append(answer)
        retry: list[Due] = []
        items: list[_Item] = []
        for shipment in batch:
            result = pick_result(by_number.get(shipment.tracking_number, []), shipment.created_at)
            if result is None and not shipment.carrier and self._has_next(shipment, cycle):
                retry.append(shipment)
            else:
                items.append((shipment, result, code))
        self._enqueue(items, cycle)
        return retry

    def _has_next(self, shipment: Due, cycle: _Cycle) -> bool:
        candidates = shipment.carrier_candidates or []
        return any(c in self.carriers for c in candidates[cycle.attempt.get(shipment.id, -1) + 1 :])

    async def _reschedule(self, batch: list[Due], at: datetime | None, cycle: _Cycle, *, failed: bool = False) -> None:
        plans = []
        for s in batch:
            when = at
            if when is None:
                delay = backoff(s.poll_errors, base=ERROR_BACKOFF_BASE, cap=ERROR_BACKOFF_CAP, rand=self.rand())
                when = cycle.now + timedelta(seconds=max(ERROR_BACKOFF_BASE / 2, delay))
            plans.append((s.id, when, failed))
        async with self._writing() as session:
            await store.reschedule(session, plans, owner=self.owner, now=cycle.now)
        cycle.report.rescheduled += len(batch)

    # --- persistence --------------------------------------------------------------------

    def _enqueue(self, items: list[_Item], cycle: _Cycle) -> None:
        """Queue results for writing and return at once, so carrier calls go on meanwhile.

        A writer task takes everything queued into one `_apply` transaction, then what
        queued during that write, and so on; a cycle thus commits a few large transactions
        instead of one per carrier call. `_flush` waits for the queue to empty.
        """
        if not items or cycle.abandoned:
            # after a failure nothing more is written: these leases expire too
            return
        cycle.pending.extend(items)
        if len(cycle.writers) < self._max_writers:
            cycle.writers.add(asyncio.create_task(self._drain(cycle)))

    async def _drain(self, cycle: _Cycle) -> None:
        task = asyncio.current_task()
        try:
            while cycle.pending and not cycle.abandoned:
                taken, cycle.pending = cycle.pending, []
                await self._apply(taken, cycle)
        except Exception as err:
            # kept on the cycle, not only on this task: a writer that fails while the cycle
            # still polls has left `writers` before `_flush` gathers them
            if cycle.failure is None:
                cycle.failure = err
            cycle.abandoned = True
            cycle.pending.clear()
        finally:
            # no await between the emptiness check and this: `_enqueue` never counts a
            # writer that is about to stop
            if task is not None:
                cycle.writers.discard(task)

    async def _flush(self, cycle: _Cycle) -> None:
        """Wait until every queued result is committed; raises what a write raised."""
        while cycle.writers or (cycle.pending and not cycle.abandoned):
            if cycle.writers:
                await asyncio.gather(*cycle.writers)
            else:
                await self._drain(cycle)
        if cycle.failure is not None:
            raise cycle.failure

    async def _apply(self, items: list[_Item], cycle: _Cycle, *, owner: str | None = "") -> None:
        """Write results in one transaction (only rows whose lease we still hold).

        Few round trips whatever the number of shipments: one read of the shipments, one of
        the stored events of those whose answer is not the one last applied (`answer_digest`),
        one of each seller's endpoints (and of queued notifications), then one executemany
        or multi-row INSERT per table.
        """
        if not items:
            return
        lease_owner = self.owner if owner == "" else owner
        async with self._writing() as session:
            conn = await session.connection()
            states = {s.id: s for s in await store.lock_leased(conn, [d.id for d, _, _ in items], lease_owner)}
            # answers a previous poll already applied need no stored timeline (`answer_digest`)
            repeated = {
                due.id
                for due, result, code in items
                if result is not None
                and (state := states.get(due.id)) is not None
                and state.carrier == code
                and state.poll_digest
                and answer_digest(result, code, state) == state.poll_digest
            }
            stored = await store.timelines(conn, [i for i in states if i not in repeated])
            out = _Writes()
            for seller_id in {s.seller_id for s in states.values()}:
                out.endpoints[seller_id] = await outbox.enabled_endpoints(session, seller_id)
            written: dict[str, PollState] = {}
            for due, result, code in items:
                state = states.get(due.id)
                if state is None:
                    continue
                await self._apply_one(
                    session,
                    state,
                    result,
                    code,
                    None if state.id in repeated else stored[state.id],
                    cycle,
                    out,
                    release=lease_owner is not None,
                )
                written[state.id] = state
                cycle.report.applied += 1
            await store.update_polled(conn, list(written.values()))
            await store.insert_events(conn, out.events)
            await self._queue_milestones(conn, out.milestones, cycle.now)
            await store.insert_outbox(conn, out.messages, out.deliveries)
        cycle.report.new_events += len(out.events)

    async def _queue_milestones(
        self, conn: AsyncConnection, reached: list[tuple[PollState, str]], now: datetime
    ) -> None:
        """Customer notifications, at most one per milestone per shipment (as
        `notifications.queue_milestone`, for a whole batch at once)."""
        wanted = [(s, m) for s, m in reached if can_email(s.customer_email, s.notify_opt_out, s.pii_erased_at)]
        if not wanted:
            return
        queued = await store.queued_milestones(conn, list({s.id for s, _ in wanted}))
        rows = []
        for s, milestone in wanted:
            if (s.id, milestone) in queued:
                continue
            queued.add((s.id, milestone))
            rows.append(
                notification_row(
                    seller_id=s.seller_id, shipment_id=s.id, milestone=milestone, locale=s.customer_locale, now=now
                )
            )
        await store.insert_notifications(conn, rows)

    async def _lane(self, session: AsyncSession, shipment: PollState, cycle: _Cycle) -> LaneEstimate | None:
        if not shipment.carrier or not shipment.origin_country:
            return None
        key = (shipment.carrier, shipment.origin_country, shipment.dest_country)
        if key not in cycle.lanes:
            days = await store.lane_transit_days(session, *key)
            cycle.lanes[key] = lane_estimate(days, min_samples=self.settings.eta_min_samples)
        return cycle.lanes[key]

    async def _apply_one(
        self,
        session: AsyncSession,
        s: PollState,
        result: TrackResult | None,
        code: str,
        stored: dict[str, CarrierEvent] | None,
        cycle: _Cycle,
        out: _Writes,
        *,
        release: bool,
    ) -> None:
        """Apply one answer; `stored` is the stored timeline, None when the answer is the
        one the previous poll applied (nothing to merge, the status stays)."""
        now = cycle.now
        prev = (store.STATUSES[s.status], store.SUB_STATUSES[s.sub_status])
        status, sub = prev
        new_events: list[CarrierEvent] = []
        if result is not None and stored is not None:
            if not s.carrier:
                s.carrier = code
            merged = merge_keyed(stored, result.events)
            for fp, event in merged.new:
                new_events.append(event)
                out.events.append(_event_row(s.id, fp, event, now))
            status, sub = derive_status(
                _deciding(merged.events, prev[0]),
                prev,
                (result.status, result.sub_status),
                previous_since=s.status_changed_at,
            )
            if merged.events:
                s.first_event_at = merged.events[0].occurred_at
                s.last_event_at = merged.events[-1].occurred_at
            s.customs_since = _customs_since(merged.events) if sub in CUSTOMS else None
            if status == Status.DELIVERED:
                delivered = [e.occurred_at for e in merged.events if e.status == Status.DELIVERED]
                s.delivered_at = delivered[-1] if delivered else (s.delivered_at or now)
            else:
                s.delivered_at = None
            signer = result.signed_by or s.signed_by
            s.signed_by = signer[:200] if signer else None
            s.origin_country = s.origin_country or result.origin_country
        eta_change = await self._update_eta(session, s, result, status, cycle)

        decision = next_poll(
            now=now,
            status=status,
            sub_status=sub,
            registered_at=s.created_at,
            last_event_at=s.last_event_at,
            confirmed_terminal=prev[0] in _CONFIRMABLE,
            policy=self.policy(s.carrier or code),
            jitter=self.rand(),
        )
        if decision.expire:
            status, sub = Status.EXPIRED, SubStatus.OTHER
            s.stop_reason = "expired"
        elif decision.next_at is None and status in _CONFIRMABLE:
            s.confirmed_terminal = True
            s.stop_reason = status.value
        s.next_poll_at = decision.next_at if s.stopped_at is None else None
        s.active = s.next_poll_at is not None
        if release:
            s.lease_owner, s.lease_until = None, None
        s.poll_count += 1
        s.poll_errors = 0
        s.last_polled_at = now
        changed = (status, sub) != prev
        if changed:
            s.status, s.sub_status = status.value, sub.value
            s.status_changed_at = now
        if changed or new_events or eta_change is not None:
            s.updated_at = now
        if decision.expire:
            # the scheduler's status, not the answer's: whatever comes next is merged
            s.poll_digest = None
        elif result is not None and stored is not None:
            s.poll_digest = answer_digest(result, code, s)
        self._outbox(s, prev, new_events, eta_change, now, out)

    async def _update_eta(
        self, session: AsyncSession, s: PollState, result: TrackResult | None, status: Status, cycle: _Cycle
    ) -> tuple[Eta | None, Eta] | None:
        """Refresh eta_latest; returns (old, new) when the move is worth a message."""
        if status in (Status.DELIVERED, Status.RETURNED, Status.EXPIRED):
            return None
        carrier_eta = result.estimated_delivery if result is not None else None
        carrier_end = result.estimated_delivery_end if result is not None else None
        lane = None
        if carrier_eta is None and carrier_end is None:
            lane = await self._lane(session, s, cycle)
        new = estimate(s.first_event_at or s.created_at, carrier_eta, carrier_end, lane)
        if new is None:
            return None
        old = None
        if s.eta_latest is not None:
            old = Eta(
                likely=s.eta_latest,
                latest=s.eta_latest_end or s.eta_latest,
                source="carrier" if s.eta_source == "carrier" else "lane",
            )
        s.eta_first = s.eta_first or new.likely
        s.eta_latest, s.eta_latest_end, s.eta_source = new.likely, new.latest, new.source
        return (old, new) if eta_moved(old, new) else None

    def _outbox(
        self,
        s: PollState,
        prev: tuple[Status, SubStatus],
        new_events: list[CarrierEvent],
        eta_change: tuple[Eta | None, Eta] | None,
        now: datetime,
        out: _Writes,
    ) -> None:
        endpoints = out.endpoints[s.seller_id]

        def message(event_type: str, data: dict[str, Any]) -> None:
            s.sequence += 1
            msg, deliveries = outbox.message_rows(
                seller_id=s.seller_id,
                event_type=event_type,
                data=data,
                now=now,
                endpoints=endpoints,
                shipment_id=s.id,
                sequence=s.sequence,
            )
            out.messages.append(msg)
            out.deliveries.extend(deliveries)

        base = {
            "id": s.id,
            "tracking_number": s.tracking_number,
            "order_number": s.order_number,
            "carrier": s.carrier,
            "status": s.status,
            "sub_status": s.sub_status,
        }
        if new_events:
            message("shipment.updated", {**base, "new_events": [_event_view(e) for e in new_events]})
        if s.status != prev[0].value:
            milestone = MILESTONES.get(s.status)
            if milestone is not None:
                out.milestones.append((s, milestone))
            message(
                "shipment.status_changed",
                {**base, "previous_status": prev[0].value, "previous_sub_status": prev[1].value},
            )
            if s.status == Status.DELIVERED.value:
                message("shipment.delivered", {**base, "delivered_at": _iso(s.delivered_at), "signed_by": s.signed_by})
        if eta_change is not None:
            old, new = eta_change
            message(
                "shipment.eta_changed",
                {
                    **base,
                    "eta": {"likely": _iso(new.likely), "latest": _iso(new.latest), "source": new.source},
                    "previous": None if old is None else {"likely": _iso(old.likely), "latest": _iso(old.latest)},
                    "eta_first": _iso(s.eta_first),
                },
            )

    # --- pushes and shutdown ------------------------------------------------------------

    async def ingest(self, code: str, results: Sequence[TrackResult]) -> int:
        """Feed pushed results (17TRACK webhooks) through the same persistence path.

        Matches every seller's active shipment with the number whose carrier is `code` or
        still unknown. Leases are left alone: a poll in flight simply finds nothing new.
        Returns how many shipments were updated.
        """
        cycle = _Cycle(now=self.clock(), report=CycleReport())
        wanted = {r.tracking_number for r in results if r.tracking_number}
        async with self.sessionmaker() as session:
            candidates = await store.shipments_by_number(session, sorted(wanted))
        items: list[_Item] = []
        for shipment in candidates:
            if shipment.stopped_at is not None or shipment.carrier not in (None, code):
                continue
            mine = [r for r in results if r.tracking_number == shipment.tracking_number]
            result = pick_result(mine, shipment.created_at)
            if result is not None:
                items.append((shipment, result, code))
        await self._apply(items, cycle, owner=None)
        return len(items)

    async def release(self) -> int:
        """Free the leases this process holds (graceful shutdown)."""
        async with self._writing() as session:
            return await store.release_leases(session, self.owner)


def vars_of(report: CycleReport) -> dict[str, int]:
    return {name: getattr(report, name) for name in report.__dataclass_fields__}


def _finish(report: CycleReport, total: CycleReport) -> None:
    _log_cycle(report)
    for name in report.__dataclass_fields__:
        setattr(total, name, getattr(total, name) + getattr(report, name))


def _log_cycle(report: CycleReport) -> None:
    if report.claimed:
        log.info("poll cycle", extra={"action": "poll_cycle", **vars_of(report)})


def _abandon(cycle: _Cycle) -> None:
    """Drop a cycle's unwritten results: the leases expire and another cycle polls those
    shipments again. Batches still running finish their call; the rest are not sent."""
    cycle.abandoned = True
    cycle.pending.clear()
    for task in list(cycle.writers):
        task.cancel()


POLLER: web.AppKey[Poller] = web.AppKey("poller", Poller)


async def poller_ctx(app: web.Application) -> AsyncIterator[None]:
    """Builds the carriers and the poller; on shutdown releases this process's leases."""
    settings = app[keys.SETTINGS]
    services = app[keys.SERVICES]
    carriers = build_carriers(
        settings, app[keys.HTTP], clock=app[keys.CLOCK], simulator_url=services.get("simulator_url")
    )
    poller = Poller(app[keys.SESSIONMAKER], carriers, clock=app[keys.CLOCK], settings=settings.polling)
    app[POLLER] = poller
    yield
    try:
        released = await poller.release()
    except (SQLAlchemyError, OSError) as err:
        # the database is gone: the leases simply expire
        log.warning("leases not released", extra={"owner": poller.owner, "error": str(err)})
        return
    if released:
        log.info("leases released", extra={"count": released, "owner": poller.owner})


async def poll_job(app: web.Application) -> CycleReport:
    return await app[POLLER].run_backlog()
