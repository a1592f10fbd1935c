"""Alert rules and the scan that opens and resolves alerts.

Each rule is a list of branches: SQL conditions over one shipment row. A branch is chosen so
that one index range scan finds its rows (see the indexes on `Shipment`); the scan runs one
set-based query per branch, never a Python loop over the table. An alert opens when an
active shipment matches any branch of its rule, and resolves itself ("auto") when the
shipment no longer matches any branch, tracking stopped or not.

Thresholds come from `[alerts]`: defaults, then `[alerts.carriers.<code>]`, then
`[alerts.lanes.<ORIGIN>-<DEST>]` (a lane beats a carrier). Per-carrier and per-lane values
turn into a few OR-ed segments inside the branch, each with its own cutoff, plus the
widest cutoff as the bound the index range uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import ColumnElement, and_, false, func, not_, or_, true
from sqlmodel import col

from tracker import keys
from tracker.db import SessionMaker, write_transaction
from tracker.models import Shipment
from tracker.settings import AlertSettings
from tracker.store import alerts as store

log = logging.getLogger("tracker.alerts")

KINDS: tuple[str, ...] = (
    "pending_too_long",
    "stalled",
    "late",
    "lost",
    "customs_held",
    "failed_attempt",
    "returning",
    "damaged",
)
TERMINAL: tuple[str, ...] = ("delivered", "returned", "expired")
#: statuses in which a parcel is expected to keep producing scans
MOVING: tuple[str, ...] = ("info_received", "in_transit", "out_for_delivery", "failed_attempt", "exception")
THRESHOLD_FIELDS: tuple[str, ...] = (
    "pending_too_long_hours",
    "stalled_days",
    "late_grace_hours",
    "lost_days",
    "customs_days",
)
SYSTEM = "system"
#: alerts opened or resolved in one scan past which the table's planner statistics are refreshed
ANALYZE_AFTER = 1000


@dataclass(frozen=True, slots=True)
class Thresholds:
    pending_too_long_hours: float
    stalled_days: float
    late_grace_hours: float
    lost_days: float
    customs_days: float


def _default(cfg: AlertSettings, name: str, carrier: str | None) -> float:
    if name == "stalled_days":
        return cfg.stalled_days_express if carrier in cfg.express_carriers else cfg.stalled_days_postal
    value: float = getattr(cfg, name)
    return value


def _carrier_value(cfg: AlertSettings, name: str, carrier: str | None) -> float:
    override = cfg.carriers.get(carrier or "")
    value = getattr(override, name) if override is not None else None
    return float(value) if value is not None else _default(cfg, name, carrier)


def thresholds_for(cfg: AlertSettings, carrier: str | None, origin: str | None, dest: str) -> Thresholds:
    """The thresholds one shipment is judged by (the same precedence the SQL segments encode)."""
    lane = cfg.lanes.get(f"{origin or ''}-{dest}".upper())
    values: dict[str, float] = {}
    for name in THRESHOLD_FIELDS:
        lane_value = getattr(lane, name) if lane is not None else None
        values[name] = float(lane_value) if lane_value is not None else _carrier_value(cfg, name, carrier)
    return Thresholds(**values)


# -- SQL building blocks -------------------------------------------------------------------

Compare = Callable[[float], ColumnElement[bool]]


def _lane_match(key: str) -> ColumnElement[bool]:
    origin, _, dest = key.partition("-")
    return and_(func.coalesce(Shipment.origin_country, "") == origin, col(Shipment.dest_country) == dest)


def _segmented(cfg: AlertSettings, name: str, compare: Compare) -> ColumnElement[bool]:
    """`compare(threshold)` with the threshold each shipment's carrier and lane give it."""
    lanes = {k: getattr(o, name) for k, o in cfg.lanes.items() if getattr(o, name) is not None}
    carriers = {c for c, o in cfg.carriers.items() if getattr(o, name) is not None}
    if name == "stalled_days":
        carriers |= set(cfg.express_carriers)
    groups: dict[float, list[ColumnElement[bool]]] = {}
    for key, value in lanes.items():
        groups.setdefault(float(value), []).append(_lane_match(key))
    no_lane: ColumnElement[bool] = not_(or_(*[_lane_match(k) for k in lanes])) if lanes else true()
    carrier_col = func.coalesce(Shipment.carrier, "")
    for code in sorted(carriers):
        groups.setdefault(_carrier_value(cfg, name, code), []).append(and_(carrier_col == code, no_lane))
    rest = and_(carrier_col.not_in(sorted(carriers)), no_lane) if carriers else no_lane
    groups.setdefault(_default(cfg, name, None), []).append(rest)
    if len(groups) == 1:
        return compare(next(iter(groups)))
    # the widest cutoff alone is what an index range can use; the segments refine it
    bound = compare(min(groups))
    return and_(bound, or_(*[and_(or_(*filters), compare(value)) for value, filters in groups.items()]))


def _before(column: Any, now: datetime, unit: str) -> Compare:
    return lambda value: column < now - timedelta(**{unit: value})


def _day_before(column: Any, now: datetime) -> Compare:
    # a promised date is late once the whole day (UTC) plus the grace has passed
    def compare(hours: float) -> ColumnElement[bool]:
        cutoff: date = (now - timedelta(hours=hours)).date()
        return and_(column.is_not(None), column < cutoff)

    return compare


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str
    branches: list[ColumnElement[bool]] = field(default_factory=list)


def rules(cfg: AlertSettings, now: datetime) -> list[Rule]:
    """Every rule's branches at instant `now`."""
    s = Shipment
    status, sub = col(s.status), col(s.sub_status)
    not_terminal = status.not_in(TERMINAL)
    return [
        Rule(
            "pending_too_long",
            [
                and_(
                    status == "pending",
                    col(s.first_event_at).is_(None),
                    _segmented(cfg, "pending_too_long_hours", _before(col(s.created_at), now, "hours")),
                ),
            ],
        ),
        Rule(
            "stalled",
            [
                and_(status.in_(MOVING), _segmented(cfg, "stalled_days", _before(col(s.last_event_at), now, "days"))),
            ],
        ),
        Rule(
            "late",
            [
                and_(not_terminal, _segmented(cfg, "late_grace_hours", _day_before(col(s.promised_delivery), now))),
                and_(not_terminal, _segmented(cfg, "late_grace_hours", _before(col(s.eta_latest_end), now, "hours"))),
                and_(
                    not_terminal,
                    col(s.eta_latest_end).is_(None),
                    _segmented(cfg, "late_grace_hours", _before(col(s.eta_latest), now, "hours")),
                ),
            ],
        ),
        Rule(
            "lost",
            [
                and_(sub == "lost", not_terminal),
                and_(status.in_(MOVING), _segmented(cfg, "lost_days", _before(col(s.last_event_at), now, "days"))),
            ],
        ),
        Rule(
            "customs_held",
            [
                and_(sub.in_(("customs_held", "customs_info_required")), not_terminal),
                and_(
                    col(s.customs_since).is_not(None),
                    not_terminal,
                    sub != "customs_released",
                    _segmented(cfg, "customs_days", _before(col(s.customs_since), now, "days")),
                ),
            ],
        ),
        Rule("failed_attempt", [status == "failed_attempt"]),
        Rule("returning", [sub.in_(("returning", "returned_to_sender")), status == "returned"]),
        Rule("damaged", [sub == "damaged"]),
    ]


def matches_any(rule: Rule) -> ColumnElement[bool]:
    return or_(*rule.branches) if rule.branches else false()


# -- the scan --------------------------------------------------------------------------------


@dataclass(slots=True)
class ScanResult:
    opened: dict[str, int] = field(default_factory=dict)
    resolved: dict[str, int] = field(default_factory=dict)
    #: candidate shipment rows and open alerts the queries returned
    examined: int = 0

    @property
    def total_opened(self) -> int:
        return sum(self.opened.values())

    @property
    def total_resolved(self) -> int:
        return sum(self.resolved.values())


def _details(cfg: AlertSettings, kind: str, row: store.Candidate) -> dict[str, object]:
    t = thresholds_for(cfg, row.carrier, row.origin_country, row.dest_country)
    names = {
        "pending_too_long": "pending_too_long_hours",
        "stalled": "stalled_days",
        "late": "late_grace_hours",
        "lost": "lost_days",
        "customs_held": "customs_days",
    }
    details: dict[str, object] = {"status": row.status, "sub_status": row.sub_status}
    if kind in names:
        details[names[kind]] = getattr(t, names[kind])
    return details


async def _open_batch(sm: SessionMaker, cfg: AlertSettings, rule: Rule, now: datetime, result: ScanResult) -> int:
    async with write_transaction(sm) as session:
        found: dict[str, store.Candidate] = {}
        for branch in rule.branches:
            rows = await store.candidates(session, rule.kind, branch, limit=cfg.batch_size - len(found))
            result.examined += len(rows)
            for row in rows:
                found.setdefault(row.id, row)
            if len(found) >= cfg.batch_size:
                break
        if not found:
            return 0
        opened = await store.insert_open(
            session, rule.kind, [(row, _details(cfg, rule.kind, row)) for row in found.values()], now=now
        )
        await _announce(session, opened, "alert.opened", now=now)
    return len(opened)


async def _resolve_batch(sm: SessionMaker, cfg: AlertSettings, rule: Rule, now: datetime, result: ScanResult) -> int:
    async with write_transaction(sm) as session:
        ids = await store.cleared(session, rule.kind, matches_any(rule), limit=cfg.batch_size)
        result.examined += len(ids)
        if not ids:
            return 0
        resolved = await store.resolve(session, ids, now=now, actor=SYSTEM, resolution="auto")
        await _announce(session, resolved, "alert.resolved", now=now)
    return len(resolved)


async def _announce(session: Any, alerts: list[Any], event_type: str, *, now: datetime) -> None:
    """The outbox message and audit row for each alert, in the transaction that changed it."""
    await store.announce(session, alerts, event_type, now=now, actor=SYSTEM)


async def scan(sm: SessionMaker, cfg: AlertSettings, *, now: datetime) -> ScanResult:
    """Open alerts whose rule matches and resolve those whose condition cleared."""
    result = ScanResult()
    for rule in rules(cfg, now):
        opened = resolved = 0
        while True:
            n = await _resolve_batch(sm, cfg, rule, now, result)
            resolved += n
            if n < cfg.batch_size:
                break
        while True:
            n = await _open_batch(sm, cfg, rule, now, result)
            opened += n
            if n < cfg.batch_size:
                break
        result.opened[rule.kind] = opened
        result.resolved[rule.kind] = resolved
    if result.total_opened + result.total_resolved >= ANALYZE_AFTER:
        await store.refresh_statistics(sm)
    if result.total_opened or result.total_resolved:
        log.info("alert scan", extra={"opened": result.opened, "resolved": result.resolved})
    return result


async def job(app: web.Application) -> None:
    """The scheduler's "alerts" job: one scan per tick; any number of processes may run it."""
    cfg = app[keys.SETTINGS].alerts
    if cfg.enabled:
        await scan(app[keys.SESSIONMAKER], cfg, now=app[keys.CLOCK]())
