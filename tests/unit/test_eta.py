from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.eta import Eta, LaneEstimate, estimate, eta_moved, lane_estimate

SHIPPED = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def interpolated_percentile(values: list[float], p: float) -> float:
    """Textbook linear interpolation at rank (n - 1) * p, written out by hand."""
    xs = sorted(values)
    h = (len(xs) - 1) * p
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def test_percentiles_of_one_to_twenty_one() -> None:
    # 21 values 1..21: the median is the 11th value, the 90th percentile sits at rank 18 -> 19
    days = [float(d) for d in range(21, 0, -1)]
    assert lane_estimate(days) == LaneEstimate(p50=11.0, p90=19.0, samples=21)


def test_percentiles_interpolate_between_samples() -> None:
    # 20 values 0,1,...,19: median rank 9.5 -> 9.5; p90 rank 17.1 -> 17.1
    est = lane_estimate([float(d) for d in range(20)])
    assert est is not None
    assert est.p50 == pytest.approx(9.5)
    assert est.p90 == pytest.approx(17.1)


@given(st.lists(st.floats(min_value=0, max_value=90, allow_nan=False), min_size=2, max_size=200))
def test_percentiles_match_hand_interpolation(days: list[float]) -> None:
    est = lane_estimate(days, min_samples=2)
    assert est is not None
    assert est.samples == len(days)
    assert est.p50 == pytest.approx(interpolated_percentile(days, 0.5), abs=1e-9)
    assert est.p90 == pytest.approx(interpolated_percentile(days, 0.9), abs=1e-9)
    assert est.p50 <= est.p90 + 1e-9


def test_too_few_samples_give_none() -> None:
    assert lane_estimate([5.0] * 19) is None
    assert lane_estimate([5.0] * 20) == LaneEstimate(p50=5.0, p90=5.0, samples=20)
    assert lane_estimate([], min_samples=0) is None


def test_bad_samples_are_dropped_before_counting() -> None:
    days = [7.0] * 20 + [-1.0, math.nan, math.inf]
    assert lane_estimate(days) == LaneEstimate(p50=7.0, p90=7.0, samples=20)
    assert lane_estimate([7.0] * 19 + [-3.0]) is None


def test_single_sample_when_allowed() -> None:
    assert lane_estimate([4.5], min_samples=1) == LaneEstimate(p50=4.5, p90=4.5, samples=1)


def test_order_of_samples_does_not_matter() -> None:
    days = [float(d % 13) + 0.25 * d for d in range(40)]
    shuffled = days[:]
    random.Random(7).shuffle(shuffled)
    assert lane_estimate(days) == lane_estimate(shuffled)


# --- estimate ---------------------------------------------------------------------------

LANE = LaneEstimate(p50=8.5, p90=14.0, samples=50)


def test_carrier_window_wins_over_lane() -> None:
    start = datetime(2024, 3, 9, tzinfo=UTC)
    end = datetime(2024, 3, 11, tzinfo=UTC)
    assert estimate(SHIPPED, start, end, LANE) == Eta(likely=start, latest=end, source="carrier")


def test_carrier_single_date() -> None:
    day = datetime(2024, 3, 9, tzinfo=UTC)
    assert estimate(SHIPPED, day, None, None) == Eta(likely=day, latest=day, source="carrier")


def test_carrier_end_only_stands_for_both() -> None:
    end = datetime(2024, 3, 12, tzinfo=UTC)
    assert estimate(SHIPPED, None, end, LANE) == Eta(likely=end, latest=end, source="carrier")


def test_window_end_before_start_is_ignored() -> None:
    start = datetime(2024, 3, 9, tzinfo=UTC)
    stale_end = datetime(2024, 3, 7, tzinfo=UTC)
    assert estimate(SHIPPED, start, stale_end, None) == Eta(likely=start, latest=start, source="carrier")


def test_lane_estimate_adds_percentiles_to_ship_date() -> None:
    # 8.5 days after 1 March 10:00 is 9 March 22:00; 14 days is 15 March 10:00
    assert estimate(SHIPPED, None, None, LANE) == Eta(
        likely=datetime(2024, 3, 9, 22, 0, tzinfo=UTC),
        latest=datetime(2024, 3, 15, 10, 0, tzinfo=UTC),
        source="lane",
    )


def test_nothing_known_gives_none() -> None:
    assert estimate(SHIPPED, None, None, None) is None


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2024, 3, 9)
    with pytest.raises(ValueError, match="carrier_eta"):
        estimate(SHIPPED, naive, None, None)
    with pytest.raises(ValueError, match="shipped_at"):
        estimate(naive, None, None, LANE)


# --- eta_moved --------------------------------------------------------------------------


def lane_eta(likely: datetime) -> Eta:
    return Eta(likely=likely, latest=likely + timedelta(days=3), source="lane")


def test_moves_of_a_day_or_more_count() -> None:
    base = lane_eta(datetime(2024, 3, 10, tzinfo=UTC))
    assert eta_moved(base, lane_eta(datetime(2024, 3, 11, tzinfo=UTC)))
    assert eta_moved(base, lane_eta(datetime(2024, 3, 8, tzinfo=UTC)))
    assert not eta_moved(base, lane_eta(datetime(2024, 3, 10, 23, 59, tzinfo=UTC)))
    assert not eta_moved(base, lane_eta(datetime(2024, 3, 9, 0, 1, tzinfo=UTC)))


def test_only_the_likely_date_matters() -> None:
    day = datetime(2024, 3, 10, tzinfo=UTC)
    assert not eta_moved(
        Eta(likely=day, latest=day, source="lane"),
        Eta(likely=day, latest=day + timedelta(days=5), source="carrier"),
    )


def test_appearing_and_vanishing_count_as_moves() -> None:
    some = lane_eta(datetime(2024, 3, 10, tzinfo=UTC))
    assert eta_moved(None, some)
    assert eta_moved(some, None)
    assert not eta_moved(None, None)
