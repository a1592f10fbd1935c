"""Logistics analytics for continuous improvement: per carrier and lane, over a period.

The store aggregates in SQL (tracker.store.analytics); this module turns the counts into
rates and rows for the dashboard and the CSV download. Definitions:

- on time: delivered no later than the promised date (UTC day), else no later than the
  latest ETA (its window end when there is one); share of delivered shipments that had
  either target;
- transit days: first carrier event to delivery, p50 and p90 (`percentile_cont`);
- first-scan delay: registration to the first carrier event, in hours (mean and p50);
- exception rate: shipments whose status is `exception`; lost rate: sub-status `lost`;
- customs dwell: hours between each customs event and the next event, summed per shipment,
  averaged over the shipments that passed customs;
- returns: status `returned` or on the way back (`returning`, `returned_to_sender`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from tracker.store import analytics as store


@dataclass(frozen=True, slots=True)
class LaneReport:
    carrier: str
    origin: str
    destination: str
    shipments: int
    delivered: int
    on_time_rate: float | None
    transit_p50_days: float | None
    transit_p90_days: float | None
    first_scan_mean_hours: float | None
    first_scan_p50_hours: float | None
    exception_rate: float | None
    lost_rate: float | None
    return_rate: float | None
    customs_shipments: int
    customs_mean_hours: float | None

    @property
    def lane(self) -> str:
        return f"{self.carrier or '?'} {self.origin or '?'}→{self.destination}"


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def report_of(key: store.LaneKey, c: store.LaneCounts) -> LaneReport:
    transit = c.percentiles.get("transit_days", {})
    scan = c.percentiles.get("first_scan_hours", {})
    return LaneReport(
        carrier=key[0],
        origin=key[1],
        destination=key[2],
        shipments=c.shipments,
        delivered=c.delivered,
        on_time_rate=_ratio(c.on_time, c.with_target),
        transit_p50_days=transit.get(0.5),
        transit_p90_days=transit.get(0.9),
        first_scan_mean_hours=_ratio(c.first_scan_hours_sum, c.first_scanned),
        first_scan_p50_hours=scan.get(0.5),
        exception_rate=_ratio(c.exceptions, c.shipments),
        lost_rate=_ratio(c.lost, c.shipments),
        return_rate=_ratio(c.returns, c.shipments),
        customs_shipments=c.customs_shipments,
        customs_mean_hours=_ratio(c.customs_hours_sum, c.customs_shipments),
    )


async def lane_reports(session: AsyncSession, seller_id: str, start: datetime, end: datetime) -> list[LaneReport]:
    """Every lane with shipments created in [start, end), busiest first."""
    counts = await store.lane_counts(session, seller_id, start, end)
    reports = [report_of(key, c) for key, c in counts.items()]
    return sorted(reports, key=lambda r: (-r.shipments, r.carrier, r.origin, r.destination))


CSV_COLUMNS = (
    "carrier",
    "origin",
    "destination",
    "shipments",
    "delivered",
    "on_time_rate",
    "transit_p50_days",
    "transit_p90_days",
    "first_scan_mean_hours",
    "first_scan_p50_hours",
    "exception_rate",
    "lost_rate",
    "return_rate",
    "customs_shipments",
    "customs_mean_hours",
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def to_csv(reports: list[LaneReport]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        writer.writerow([_cell(getattr(r, name)) for name in CSV_COLUMNS])
    return out.getvalue()
