"""Simulated journeys: deterministic, realistic in shape, scripted by sandbox numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carriers.simulator.journey import Journey
from carriers.simulator.journeys import COUNTRY_BY_CODE, EXPRESS, journey_for
from carriers.simulator.state import SimState
from carriers.status import Status, SubStatus

CARRIERS = ("17track", "dhl", "ups", "fedex", "usps", "sf_express", "yanwen")
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)


def _state(seed: int = 0) -> SimState:
    return SimState(seed=seed, epoch=EPOCH)


def _get(number: str, carrier: str, seed: int = 0) -> Journey:
    journey = journey_for(number, carrier, _state(seed))
    assert journey is not None
    return journey


def _numbers(n: int, prefix: str = "LX") -> list[str]:
    return [f"{prefix}{i:09d}CN" for i in range(n)]


def test_same_inputs_same_journey_and_normalized_number() -> None:
    a = _get("lx 000-000-123 cn", "dhl")
    b = journey_for("LX000000123CN", "dhl", SimState(seed=0, epoch=EPOCH))
    assert a == b
    assert a.number == "LX000000123CN"


def test_seed_and_carrier_change_the_story() -> None:
    numbers = _numbers(50)
    assert sum(_get(n, "dhl", 0) != _get(n, "dhl", 1) for n in numbers) >= 45
    assert sum(_get(n, "dhl").steps != _get(n, "yanwen").steps for n in numbers) >= 45


def _fingerprint_script() -> str:
    return (
        "from datetime import UTC, datetime\n"
        "from carriers.simulator.journeys import journey_for\n"
        "from carriers.simulator.state import SimState\n"
        "s = SimState(seed=7, epoch=datetime(2026, 1, 5, tzinfo=UTC))\n"
        "j = journey_for('RR123456785CN', 'yanwen', s)\n"
        "print(j.outcome, j.destination, [(x.at.isoformat(), x.city) for x in j.steps])\n"
    )


def test_independent_of_python_hash_randomization() -> None:
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", _fingerprint_script()], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1


@pytest.mark.parametrize(
    "number", ["NOTFOUND123", "not-found-42", "notfound", "1Z0000000000", "LX12340000000000", "  "]
)
def test_unknown_numbers(number: str) -> None:
    assert journey_for(number, "dhl", _state()) is None


@pytest.mark.parametrize("number", ["FOUNDNOTFOUND1", "LX000000001CN", "00000000001"])
def test_known_numbers(number: str) -> None:
    assert journey_for(number, "usps", _state()) is not None


def _assert_well_formed(j: Journey) -> None:
    assert j.steps
    assert j.eta is not None
    assert j.eta.tzinfo is not None
    for earlier, later in zip(j.steps, j.steps[1:], strict=False):
        assert earlier.at < later.at
    for step in j.steps:
        assert step.at.utcoffset() == timedelta(0)
        ZoneInfo(step.tz)  # a real IANA zone
        assert len(step.country) == 2
        assert step.country.isupper()
        assert step.provider
    assert EPOCH <= j.steps[0].at <= EPOCH + timedelta(hours=72)


@pytest.mark.parametrize("carrier", CARRIERS)
def test_invariants_over_many_numbers(carrier: str) -> None:
    for number in _numbers(150):
        _assert_well_formed(_get(number, carrier))


def test_cross_border_shape() -> None:
    seen = 0
    for number in _numbers(300):
        j = _get(number, "yanwen")
        if j.outcome != "delivered":
            continue
        seen += 1
        subs = [s.sub_status for s in j.steps]
        assert j.origin == "CN"
        assert j.steps[0].country == "CN"
        assert j.steps[0].tz == "Asia/Shanghai"
        export = subs.index(SubStatus.CUSTOMS_PROCESSING)
        assert subs[export + 1] == SubStatus.CUSTOMS_RELEASED
        assert j.steps[export].country in {"CN", "HK"}
        departed = subs.index(SubStatus.DEPARTED)
        assert departed > export
        imports = [i for i, s in enumerate(j.steps) if s.sub_status in (SubStatus.CUSTOMS_PROCESSING,)]
        assert j.steps[imports[-1]].country == j.destination
        handover = subs.index(SubStatus.HANDED_TO_LAST_MILE)
        assert handover > imports[-1]
        last_mile = COUNTRY_BY_CODE[j.destination].last_mile
        assert j.last_mile == last_mile
        assert all(s.provider == last_mile for s in j.steps[handover + 1 :])
        assert all(s.provider == "yanwen" for s in j.steps[: handover + 1])
        assert j.steps[-2].status == Status.OUT_FOR_DELIVERY
        assert j.steps[-1].status == Status.DELIVERED
        assert j.steps[-1].country == j.destination
    assert seen > 200


def test_destinations_span_many_countries_and_zones() -> None:
    journeys = [_get(n, "17track") for n in _numbers(600)]
    countries = Counter(j.destination for j in journeys)
    assert set(countries) == set(COUNTRY_BY_CODE)
    us_zones = {j.steps[-1].tz for j in journeys if j.destination == "US" and j.outcome == "delivered"}
    assert len(us_zones) >= 4


def test_express_carriers_deliver_themselves() -> None:
    for carrier in sorted(EXPRESS):
        for number in _numbers(60):
            j = _get(number, carrier)
            assert {s.provider for s in j.steps} == {carrier}


def test_usps_always_delivers_in_the_us_and_some_journeys_are_domestic() -> None:
    journeys = [_get(n, "usps") for n in _numbers(200)]
    assert {j.destination for j in journeys} == {"US"}
    domestic = [j for j in journeys if j.origin == "US"]
    assert 50 < len(domestic) < 150
    assert all(s.country == "US" for j in domestic for s in j.steps)
    assert all(j.origin == "CN" for n in _numbers(100) for j in [_get(n, "sf_express")])


def test_cross_border_delivery_takes_five_to_twenty_days() -> None:
    spans = sorted(
        (j.steps[-1].at - j.steps[0].at) / timedelta(days=1)
        for n in _numbers(1500)
        for j in [_get(n, "sf_express")]
        if j.outcome == "delivered"
    )
    assert spans[0] > 3
    assert spans[-1] < 26
    assert spans[len(spans) // 50] >= 5
    assert spans[-len(spans) // 50] <= 20
    assert 8 <= spans[len(spans) // 2] <= 14


def test_outcomes_are_mostly_delivered() -> None:
    outcomes = Counter(_get(n, "dhl").outcome for n in _numbers(2000))
    assert 0.72 < outcomes["delivered"] / 2000 < 0.88
    assert set(outcomes) >= {"failed_attempt", "late", "lost", "returned", "stalled"}


# --- sandbox numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("carrier", CARRIERS)
@pytest.mark.parametrize("suffix", ["1", "2", "3"])
def test_sandbox_outcomes(carrier: str, suffix: str) -> None:
    def get(marker: str) -> Journey:
        j = _get(f"{marker}{suffix}", carrier)
        return j

    delivered = get("SBXDELIVERED")
    assert delivered.outcome == "delivered"
    assert delivered.steps[-1].status == Status.DELIVERED

    lost = get("SBXLOST")
    assert (lost.steps[-1].status, lost.steps[-1].sub_status) == (Status.EXCEPTION, SubStatus.LOST)

    held = get("SBXCUSTOMS")
    assert held.steps[-1].sub_status in (SubStatus.CUSTOMS_HELD, SubStatus.DAMAGED)
    if held.origin != held.destination:
        assert held.steps[-1].sub_status == SubStatus.CUSTOMS_HELD
        assert held.steps[-1].country == held.destination

    returned = get("SBXRETURNED")
    assert returned.steps[-1].status == Status.RETURNED
    assert returned.steps[-1].country == returned.origin

    failed = get("SBXFAILED")
    statuses = [s.status for s in failed.steps]
    attempt = statuses.index(Status.FAILED_ATTEMPT)
    assert statuses[attempt + 1] == Status.AVAILABLE_FOR_PICKUP
    assert failed.steps[-1].status == Status.DELIVERED
    assert failed.steps[-1].sub_status == SubStatus.PICKUP_POINT

    stalled = get("SBXSTALLED")
    assert stalled.steps[-1].at - stalled.steps[0].at <= timedelta(days=3)
    assert stalled.eta is not None
    assert stalled.eta > stalled.steps[-1].at
    assert Status.DELIVERED not in {s.status for s in stalled.steps}

    late = get("SBXLATE")
    assert late.steps[-1].status == Status.DELIVERED
    assert late.eta is not None
    assert late.steps[-1].at - late.eta >= timedelta(days=3)

    damaged = get("SBXEXCEPTION")
    assert damaged.steps[-1].sub_status == SubStatus.DAMAGED


def test_sandbox_marker_anywhere_after_normalization() -> None:
    assert _get("order-sbx-lost-77", "ups").outcome == "lost"
    assert _get("ZZsbxdelivered", "fedex").outcome == "delivered"


def test_visible_and_latest_follow_the_clock() -> None:
    j = _get("SBXDELIVERED9", "dhl")
    assert j.visible(j.steps[0].at - timedelta(seconds=1)) == []
    assert j.latest(j.steps[0].at - timedelta(seconds=1)) is None
    assert j.visible(j.steps[2].at) == list(j.steps[:3])
    assert j.latest(j.steps[-1].at + timedelta(days=30)) == j.steps[-1]


def test_delivery_rounds_start_in_the_local_morning() -> None:
    for number in _numbers(200):
        j = _get(number, "yanwen")
        for step in j.steps:
            if step.status == Status.OUT_FOR_DELIVERY:
                assert 7 <= step.at.astimezone(ZoneInfo(step.tz)).hour < 10
