"""Estimated delivery (DESIGN §7): the carrier's value when given, else lane statistics.

Pure: the caller loads transit times of delivered shipments on the same lane (carrier,
origin, destination) and passes them in.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

#: An ETA that moves by at least this much is worth a `shipment.eta_changed` message.
MOVE_THRESHOLD = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LaneEstimate:
    """Transit-time percentiles, in days, of delivered shipments on one lane."""

    p50: float
    p90: float
    samples: int


@dataclass(frozen=True, slots=True)
class Eta:
    """An estimated delivery window."""

    likely: datetime  # the carrier's date (or window start), or the lane median
    latest: datetime  # the carrier's window end, or the lane 90th percentile
    source: Literal["carrier", "lane"]


def lane_estimate(transit_days: Sequence[float], *, min_samples: int = 20) -> LaneEstimate | None:
    """Median and 90th percentile of transit days, or None below `min_samples` samples.

    Percentiles use `statistics.quantiles(..., method="inclusive")`: linear interpolation
    between order statistics at position (n - 1) * p of the sorted sample. Negative and
    non-finite values (clock errors upstream) are dropped before counting.
    """
    clean = [float(d) for d in transit_days if math.isfinite(d) and d >= 0]
    if not clean or len(clean) < min_samples:
        return None
    if len(clean) == 1:
        return LaneEstimate(p50=clean[0], p90=clean[0], samples=1)
    deciles = statistics.quantiles(clean, n=10, method="inclusive")
    return LaneEstimate(p50=deciles[4], p90=deciles[8], samples=len(clean))


def _require_aware(value: datetime | None, name: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def estimate(
    shipped_at: datetime,
    carrier_eta: datetime | None,
    carrier_eta_end: datetime | None,
    lane: LaneEstimate | None,
) -> Eta | None:
    """The carrier's ETA when it gives one, else `shipped_at` plus the lane percentiles.

    A window end earlier than its start is ignored (carriers occasionally send a stale
    end); an end with no start stands for both.
    """
    for value, name in (
        (shipped_at, "shipped_at"),
        (carrier_eta, "carrier_eta"),
        (carrier_eta_end, "carrier_eta_end"),
    ):
        _require_aware(value, name)
    start = carrier_eta if carrier_eta is not None else carrier_eta_end
    if start is not None:
        end = carrier_eta_end if carrier_eta_end is not None and carrier_eta_end >= start else start
        return Eta(likely=start, latest=end, source="carrier")
    if lane is None:
        return None
    return Eta(
        likely=shipped_at + timedelta(days=lane.p50),
        latest=shipped_at + timedelta(days=lane.p90),
        source="lane",
    )


def eta_moved(old: Eta | None, new: Eta | None) -> bool:
    """Whether the likely date moved by a day or more, or an ETA appeared or vanished."""
    if old is None or new is None:
        return (old is None) != (new is None)
    return abs(new.likely - old.likely) >= MOVE_THRESHOLD
