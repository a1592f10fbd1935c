"""Deterministic parcel journeys for the simulator, derived from (number, carrier, seed).

Every simulated carrier endpoint calls `journey_for` per request, so the same number always
tells the same story and two carriers asked about one number tell compatible ones. The
randomness comes from a SHA-256 of the inputs (never `hash()`, which is salted per process).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import accumulate

from carriers.detect import normalize
from carriers.simulator.journey import Journey, Step, zone
from carriers.simulator.state import SimState
from carriers.status import Status, SubStatus

#: sandbox markers, checked in this order, that script the outcome whatever the carrier
SANDBOX: tuple[tuple[str, str], ...] = (
    ("SBXDELIVERED", "delivered"),
    ("SBXLOST", "lost"),
    ("SBXCUSTOMS", "customs_held"),
    ("SBXRETURNED", "returned"),
    ("SBXFAILED", "failed_attempt"),
    ("SBXSTALLED", "stalled"),
    ("SBXLATE", "late"),
    ("SBXEXCEPTION", "exception"),
)

#: outcome weights for ordinary numbers: most parcels arrive
OUTCOME_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("delivered", 80),
    ("failed_attempt", 5),
    ("late", 4),
    ("stalled", 3),
    ("customs_held", 2),
    ("returned", 2),
    ("lost", 2),
    ("exception", 2),
)

OUTCOMES: frozenset[str] = frozenset(o for o, _ in OUTCOME_WEIGHTS)

#: carriers that deliver themselves abroad (no handover to a postal last mile)
EXPRESS: frozenset[str] = frozenset({"dhl", "ups", "fedex"})
#: carriers that also run purely domestic US journeys
US_DOMESTIC: frozenset[str] = frozenset({"ups", "fedex", "usps"})
#: first-mile scanners for carriers that do not collect in China themselves
AGGREGATED_FIRST_MILE: tuple[str, ...] = ("yanwen", "yunexpress", "cainiao", "chinapost")

SIGNERS: tuple[str, ...] = ("A. MILLER", "J. SCHMIDT", "M. DUPONT", "K. TANAKA", "R. SILVA", "FRONT DESK")


@dataclass(frozen=True, slots=True)
class Place:
    city: str
    country: str
    tz: str
    region: str = ""
    postcode: str = ""


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    weight: int
    last_mile: str  # carrier code of the postal/last-mile operator
    gateways: tuple[Place, ...]
    cities: tuple[Place, ...]
    transits: tuple[Place, ...]  # hubs a flight may stop at on the way


def _p(city: str, country: str, tz: str, region: str = "", postcode: str = "") -> Place:
    return Place(city, country, tz, region, postcode)


CN_ORIGINS: tuple[Place, ...] = (
    _p("Shenzhen", "CN", "Asia/Shanghai", "Guangdong", "518000"),
    _p("Guangzhou", "CN", "Asia/Shanghai", "Guangdong", "510000"),
    _p("Dongguan", "CN", "Asia/Shanghai", "Guangdong", "523000"),
    _p("Yiwu", "CN", "Asia/Shanghai", "Zhejiang", "322000"),
    _p("Hangzhou", "CN", "Asia/Shanghai", "Zhejiang", "310000"),
    _p("Shanghai", "CN", "Asia/Shanghai", "Shanghai", "200000"),
    _p("Xiamen", "CN", "Asia/Shanghai", "Fujian", "361000"),
)
CN_HUBS: tuple[Place, ...] = (
    _p("Shenzhen", "CN", "Asia/Shanghai", "Guangdong", "518128"),
    _p("Guangzhou", "CN", "Asia/Shanghai", "Guangdong", "510470"),
    _p("Shanghai", "CN", "Asia/Shanghai", "Shanghai", "201202"),
    _p("Hong Kong", "HK", "Asia/Hong_Kong"),
)

_ANC = _p("Anchorage", "US", "America/Anchorage", "AK", "99502")
_ICN = _p("Incheon", "KR", "Asia/Seoul", "", "22382")
_LEJ = _p("Leipzig", "DE", "Europe/Berlin", "SN", "04435")
_DXB = _p("Dubai", "AE", "Asia/Dubai")
_DOH = _p("Doha", "QA", "Asia/Qatar")
_SIN = _p("Singapore", "SG", "Asia/Singapore", "", "819663")

COUNTRIES: tuple[Country, ...] = (
    Country(
        "US",
        35,
        "usps",
        (
            _p("Los Angeles", "US", "America/Los_Angeles", "CA", "90045"),
            _p("New York", "US", "America/New_York", "NY", "11430"),
            _p("Chicago", "US", "America/Chicago", "IL", "60666"),
        ),
        (
            _p("New York", "US", "America/New_York", "NY", "10001"),
            _p("Miami", "US", "America/New_York", "FL", "33130"),
            _p("Chicago", "US", "America/Chicago", "IL", "60601"),
            _p("Houston", "US", "America/Chicago", "TX", "77002"),
            _p("Denver", "US", "America/Denver", "CO", "80202"),
            _p("Phoenix", "US", "America/Phoenix", "AZ", "85004"),
            _p("Los Angeles", "US", "America/Los_Angeles", "CA", "90012"),
            _p("Seattle", "US", "America/Los_Angeles", "WA", "98101"),
            _p("Anchorage", "US", "America/Anchorage", "AK", "99501"),
            _p("Honolulu", "US", "Pacific/Honolulu", "HI", "96813"),
        ),
        (_ANC, _ICN),
    ),
    Country(
        "DE",
        10,
        "dhl",
        (
            _p("Frankfurt am Main", "DE", "Europe/Berlin", "HE", "60549"),
            _p("Leipzig", "DE", "Europe/Berlin", "SN", "04435"),
        ),
        (
            _p("Berlin", "DE", "Europe/Berlin", "BE", "10115"),
            _p("Hamburg", "DE", "Europe/Berlin", "HH", "20095"),
            _p("München", "DE", "Europe/Berlin", "BY", "80331"),
            _p("Köln", "DE", "Europe/Berlin", "NW", "50667"),
        ),
        (_DXB, _DOH),
    ),
    Country(
        "FR",
        8,
        "colissimo",
        (_p("Roissy-en-France", "FR", "Europe/Paris", "IDF", "95700"),),
        (
            _p("Paris", "FR", "Europe/Paris", "IDF", "75001"),
            _p("Lyon", "FR", "Europe/Paris", "ARA", "69001"),
            _p("Marseille", "FR", "Europe/Paris", "PAC", "13001"),
            _p("Toulouse", "FR", "Europe/Paris", "OCC", "31000"),
        ),
        (_LEJ, _DXB),
    ),
    Country(
        "GB",
        10,
        "royalmail",
        (_p("Hounslow", "GB", "Europe/London", "ENG", "TW6 1AA"),),
        (
            _p("London", "GB", "Europe/London", "ENG", "EC1A 1BB"),
            _p("Manchester", "GB", "Europe/London", "ENG", "M1 1AE"),
            _p("Birmingham", "GB", "Europe/London", "ENG", "B1 1AA"),
            _p("Edinburgh", "GB", "Europe/London", "SCT", "EH1 1YZ"),
        ),
        (_LEJ, _DXB),
    ),
    Country(
        "ES",
        6,
        "correos",
        (_p("Madrid", "ES", "Europe/Madrid", "MD", "28042"),),
        (
            _p("Madrid", "ES", "Europe/Madrid", "MD", "28001"),
            _p("Barcelona", "ES", "Europe/Madrid", "CT", "08001"),
            _p("Valencia", "ES", "Europe/Madrid", "VC", "46001"),
            _p("Las Palmas de Gran Canaria", "ES", "Atlantic/Canary", "CN", "35001"),
        ),
        (_LEJ, _DOH),
    ),
    Country(
        "BR",
        6,
        "correios",
        (_p("Guarulhos", "BR", "America/Sao_Paulo", "SP", "07190-100"),),
        (
            _p("São Paulo", "BR", "America/Sao_Paulo", "SP", "01001-000"),
            _p("Rio de Janeiro", "BR", "America/Sao_Paulo", "RJ", "20010-000"),
            _p("Curitiba", "BR", "America/Sao_Paulo", "PR", "80010-000"),
            _p("Manaus", "BR", "America/Manaus", "AM", "69005-000"),
        ),
        (_DXB, _DOH),
    ),
    Country(
        "JP",
        5,
        "japanpost",
        (_p("Narita", "JP", "Asia/Tokyo", "Chiba", "282-0004"),),
        (
            _p("Tokyo", "JP", "Asia/Tokyo", "Tokyo", "100-0001"),
            _p("Osaka", "JP", "Asia/Tokyo", "Osaka", "530-0001"),
            _p("Sapporo", "JP", "Asia/Tokyo", "Hokkaido", "060-0001"),
        ),
        (),
    ),
    Country(
        "AU",
        7,
        "auspost",
        (_p("Mascot", "AU", "Australia/Sydney", "NSW", "2020"),),
        (
            _p("Sydney", "AU", "Australia/Sydney", "NSW", "2000"),
            _p("Melbourne", "AU", "Australia/Melbourne", "VIC", "3000"),
            _p("Brisbane", "AU", "Australia/Brisbane", "QLD", "4000"),
            _p("Adelaide", "AU", "Australia/Adelaide", "SA", "5000"),
            _p("Perth", "AU", "Australia/Perth", "WA", "6000"),
        ),
        (_SIN,),
    ),
    Country(
        "RU",
        6,
        "russianpost",
        (_p("Khimki", "RU", "Europe/Moscow", "MOS", "141400"),),
        (
            _p("Moscow", "RU", "Europe/Moscow", "MOW", "101000"),
            _p("Saint Petersburg", "RU", "Europe/Moscow", "SPE", "190000"),
            _p("Yekaterinburg", "RU", "Asia/Yekaterinburg", "SVE", "620000"),
            _p("Novosibirsk", "RU", "Asia/Novosibirsk", "NVS", "630000"),
            _p("Vladivostok", "RU", "Asia/Vladivostok", "PRI", "690000"),
        ),
        (),
    ),
    Country(
        "CA",
        7,
        "canadapost",
        (
            _p("Richmond", "CA", "America/Vancouver", "BC", "V7B 1Y7"),
            _p("Mississauga", "CA", "America/Toronto", "ON", "L5P 1B2"),
        ),
        (
            _p("Toronto", "CA", "America/Toronto", "ON", "M5H 2N2"),
            _p("Montréal", "CA", "America/Toronto", "QC", "H2Y 1C6"),
            _p("Vancouver", "CA", "America/Vancouver", "BC", "V6B 1A1"),
            _p("Calgary", "CA", "America/Edmonton", "AB", "T2P 1J9"),
            _p("Halifax", "CA", "America/Halifax", "NS", "B3H 1A1"),
            _p("St. John's", "CA", "America/St_Johns", "NL", "A1C 1A1"),
        ),
        (_ANC,),
    ),
)
COUNTRY_BY_CODE: dict[str, Country] = {c.code: c for c in COUNTRIES}
_COUNTRY_CUMULATIVE: list[int] = list(accumulate(c.weight for c in COUNTRIES))

US_HUBS: tuple[Place, ...] = (
    _p("Memphis", "US", "America/Chicago", "TN", "38118"),
    _p("Louisville", "US", "America/New_York", "KY", "40209"),
    _p("Indianapolis", "US", "America/Indiana/Indianapolis", "IN", "46241"),
    _p("Ontario", "US", "America/Los_Angeles", "CA", "91761"),
)


def sandbox_outcome(number: str) -> str | None:
    """The outcome a sandbox marker in `number` scripts, or None for an ordinary number."""
    norm = normalize(number)
    for marker, outcome in SANDBOX:
        if marker in norm:
            return outcome
    return None


def is_unknown(number: str) -> bool:
    """Numbers the simulator answers with the carrier's not-found shape."""
    norm = normalize(number)
    return not norm or norm.startswith("NOTFOUND") or norm.endswith("0000000000")


def journey_for(number: str, carrier: str, state: SimState) -> Journey | None:
    """The journey of `number` as `carrier` tells it, or None when the number is unknown."""
    return _journey(normalize(number), carrier, state.seed, state.epoch)


@lru_cache(maxsize=65536)
def _journey(number: str, carrier: str, seed: int, epoch: datetime) -> Journey | None:
    if is_unknown(number):
        return None
    rng = random.Random(_seed_of(number, carrier, seed))
    outcome = sandbox_outcome(number) or _weighted(rng, OUTCOME_WEIGHTS)
    start = epoch + timedelta(minutes=rng.randrange(0, 72 * 60))
    domestic = carrier in US_DOMESTIC and rng.random() < 0.5
    builder = _Builder(rng, start)
    if domestic:
        return _domestic(builder, number, carrier, outcome)
    return _cross_border(builder, number, carrier, outcome)


def _seed_of(number: str, carrier: str, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}\x1f{carrier}\x1f{number}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    keys, cumulative = _cumulative(tuple(table))
    return rng.choices(keys, cum_weights=cumulative)[0]


@lru_cache(maxsize=16)
def _cumulative(table: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    # `choices(weights=w)` draws exactly like `choices(cum_weights=accumulate(w))`
    return [k for k, _ in table], list(accumulate(w for _, w in table))


class _Builder:
    """Accumulates steps with strictly increasing instants."""

    def __init__(self, rng: random.Random, start: datetime) -> None:
        self.rng = rng
        self.start = start
        self.t = start
        self.steps: list[Step] = []

    def wait(self, lo_hours: float, hi_hours: float) -> None:
        self.t += timedelta(seconds=round(self.rng.uniform(lo_hours, hi_hours) * 3600))

    def local_morning(self, place: Place, lo_hour: int = 7, hi_hour: int = 10) -> None:
        """Move to a delivery-round hour at `place`, on the same local day or the next one."""
        local = self.t.astimezone(zone(place.tz))
        minute = self.rng.randrange(lo_hour * 60, hi_hour * 60)
        target = local.replace(hour=minute // 60, minute=minute % 60, second=self.rng.randrange(60))
        if target <= local:
            target += timedelta(days=1)
        self.t = target.astimezone(self.start.tzinfo)

    def add(self, status: Status, sub: SubStatus, text: str, place: Place, provider: str) -> None:
        if self.steps and self.t <= self.steps[-1].at:
            self.t = self.steps[-1].at + timedelta(minutes=1)
        self.steps.append(
            Step(
                at=self.t,
                status=status,
                sub_status=sub,
                description=text,
                city=place.city,
                country=place.country,
                tz=place.tz,
                region=place.region,
                postcode=place.postcode,
                provider=provider,
            )
        )


def _destination(rng: random.Random, carrier: str) -> Country:
    if carrier == "usps":
        return COUNTRY_BY_CODE["US"]
    return COUNTRIES[rng.choices(range(len(COUNTRIES)), cum_weights=_COUNTRY_CUMULATIVE)[0]]


def _cross_border(b: _Builder, number: str, carrier: str, outcome: str) -> Journey:
    rng = b.rng
    dest = _destination(rng, carrier)
    origin = rng.choice(CN_ORIGINS)
    hub = rng.choice(CN_HUBS)
    gateway = rng.choice(dest.gateways)
    city = rng.choice(dest.cities)
    transit = rng.choice(dest.transits) if dest.transits and rng.random() < 0.6 else None
    if carrier == "17track":
        first = rng.choice(AGGREGATED_FIRST_MILE)
    elif carrier == "usps":
        first = "chinapost"
    else:
        first = carrier
    last = carrier if carrier in EXPRESS else dest.last_mile
    total_days = rng.uniform(6.0, 16.0)
    # Waits drawn in "pace" units add up to about 153 units on average; flights and the
    # delivery round add roughly two fixed days. Scaling them keeps a trip near total_days.
    pace = (total_days * 24.0 - 48.0) / 153.0

    b.add(Status.INFO_RECEIVED, SubStatus.LABEL_CREATED, "Shipment information received", origin, first)
    if outcome == "stalled":
        b.wait(6, 20)
        b.add(Status.IN_TRANSIT, SubStatus.PICKED_UP, "Picked up by carrier", origin, first)
        b.wait(8, 30)
        b.add(Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived at sorting center", hub, first)
        return _finish(b, number, carrier, outcome, "CN", dest.code, last, eta_days=total_days)
    b.wait(4 * pace, 24 * pace)
    b.add(Status.IN_TRANSIT, SubStatus.PICKED_UP, "Picked up by carrier", origin, first)
    b.wait(6 * pace, 20 * pace)
    b.add(Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived at sorting center", hub, first)
    b.wait(8 * pace, 30 * pace)
    b.add(Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING, "Export customs clearance started", hub, first)
    b.wait(4 * pace, 20 * pace)
    b.add(Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED, "Export customs clearance completed", hub, first)
    b.wait(6 * pace, 30 * pace)
    b.add(Status.IN_TRANSIT, SubStatus.DEPARTED, "Departed from origin airport", hub, first)
    if transit is not None:
        b.wait(6, 11)
        b.add(Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived at transit airport", transit, first)
        b.wait(3, 18)
        b.add(Status.IN_TRANSIT, SubStatus.DEPARTED, "Departed from transit airport", transit, first)
    b.wait(8, 14)
    b.add(Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived at destination airport", gateway, first)
    if outcome == "lost":
        b.wait(8 * 24, 14 * 24)
        b.add(Status.EXCEPTION, SubStatus.LOST, "Shipment could not be located", gateway, first)
        return _finish(b, number, carrier, outcome, "CN", dest.code, last, eta_days=total_days)
    b.wait(2 * pace, 10 * pace)
    b.add(Status.IN_TRANSIT, SubStatus.CUSTOMS_PROCESSING, "Import customs clearance started", gateway, first)
    if outcome == "customs_held":
        b.wait(12, 48)
        b.add(
            Status.EXCEPTION,
            SubStatus.CUSTOMS_INFO_REQUIRED,
            "Customs requires the commercial invoice",
            gateway,
            first,
        )
        b.wait(24, 96)
        b.add(Status.EXCEPTION, SubStatus.CUSTOMS_HELD, "Held by customs", gateway, first)
        return _finish(b, number, carrier, outcome, "CN", dest.code, last, eta_days=total_days)
    b.wait(6 * pace, 40 * pace)
    b.add(Status.IN_TRANSIT, SubStatus.CUSTOMS_RELEASED, "Import customs clearance completed", gateway, first)
    if last != first:
        b.wait(4 * pace, 20 * pace)
        b.add(
            Status.IN_TRANSIT,
            SubStatus.HANDED_TO_LAST_MILE,
            f"Handed over to last-mile carrier {last}",
            gateway,
            first,
        )
    eta = _eta(b, total_days)
    if outcome == "late":
        b.wait(5 * 24, 12 * 24)
        b.add(Status.IN_TRANSIT, SubStatus.DELAYED, "Delayed: network congestion", gateway, last)
    b.wait(12 * pace, 60 * pace)
    b.add(Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived at local delivery facility", city, last)
    if outcome == "exception":
        b.wait(4, 30)
        b.add(Status.EXCEPTION, SubStatus.DAMAGED, "Parcel damaged in transit", city, last)
        return _finish(b, number, carrier, outcome, "CN", dest.code, last, eta=eta)
    return _last_mile(b, number, carrier, outcome, "CN", dest.code, city, origin, first, last, eta)


def _domestic(b: _Builder, number: str, carrier: str, outcome: str) -> Journey:
    rng = b.rng
    us = COUNTRY_BY_CODE["US"]
    origin, city = rng.sample(us.cities, 2)
    hub = rng.choice(US_HUBS)
    b.add(Status.INFO_RECEIVED, SubStatus.LABEL_CREATED, "Shipping label created", origin, carrier)
    b.wait(2, 10)
    b.add(Status.IN_TRANSIT, SubStatus.PICKED_UP, "Picked up", origin, carrier)
    if outcome == "stalled":
        b.wait(3, 12)
        b.add(Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived at origin facility", origin, carrier)
        return _finish(b, number, carrier, outcome, "US", "US", carrier, eta_days=4.0)
    b.wait(2, 8)
    b.add(Status.IN_TRANSIT, SubStatus.DEPARTED, "Departed origin facility", origin, carrier)
    b.wait(6, 20)
    b.add(Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived at hub", hub, carrier)
    if outcome == "lost":
        b.wait(6 * 24, 10 * 24)
        b.add(Status.EXCEPTION, SubStatus.LOST, "Package could not be located", hub, carrier)
        return _finish(b, number, carrier, outcome, "US", "US", carrier, eta_days=4.0)
    b.wait(2, 10)
    b.add(Status.IN_TRANSIT, SubStatus.DEPARTED, "Departed hub", hub, carrier)
    eta = _eta(b, rng.uniform(2.0, 5.0))
    if outcome == "late":
        b.wait(4 * 24, 8 * 24)
        b.add(Status.IN_TRANSIT, SubStatus.DELAYED, "Delayed: weather", hub, carrier)
    b.wait(8, 30)
    b.add(Status.IN_TRANSIT, SubStatus.ARRIVED, "Arrived at destination facility", city, carrier)
    if outcome in ("exception", "customs_held"):
        # a domestic parcel never meets customs; a held one is held for damage review instead
        b.wait(4, 24)
        b.add(Status.EXCEPTION, SubStatus.DAMAGED, "Package damaged", city, carrier)
        return _finish(b, number, carrier, outcome, "US", "US", carrier, eta=eta)
    return _last_mile(b, number, carrier, outcome, "US", "US", city, origin, carrier, carrier, eta)


def _eta(b: _Builder, days: float) -> datetime:
    """The promised delivery instant: at least a day after the latest scan so far."""
    promised = b.start + timedelta(days=days)
    floor = b.t + timedelta(days=1)
    return max(promised, floor).replace(minute=0, second=0, microsecond=0)


def _last_mile(
    b: _Builder,
    number: str,
    carrier: str,
    outcome: str,
    origin_cc: str,
    dest_cc: str,
    city: Place,
    origin: Place,
    first: str,
    last: str,
    eta: datetime,
) -> Journey:
    rng = b.rng
    b.wait(4, 30)
    b.local_morning(city)
    b.add(Status.OUT_FOR_DELIVERY, SubStatus.OUT_FOR_DELIVERY, "Out for delivery", city, last)
    b.wait(1, 7)
    signed_by: str | None = None
    if outcome == "failed_attempt":
        b.add(
            Status.FAILED_ATTEMPT,
            SubStatus.RECIPIENT_UNAVAILABLE,
            "Delivery attempted: recipient not available",
            city,
            last,
        )
        b.wait(2, 6)
        b.add(
            Status.AVAILABLE_FOR_PICKUP,
            SubStatus.PICKUP_POINT,
            "Available for pickup at the post office",
            city,
            last,
        )
        b.wait(20, 96)
        b.add(Status.DELIVERED, SubStatus.PICKUP_POINT, "Picked up by recipient", city, last)
        signed_by = rng.choice(SIGNERS)
    elif outcome == "returned":
        b.add(Status.EXCEPTION, SubStatus.REFUSED, "Delivery refused by recipient", city, last)
        b.wait(12, 48)
        b.add(Status.EXCEPTION, SubStatus.RETURNING, "Returning to sender", city, last)
        b.wait(8 * 24, 20 * 24)
        b.add(Status.RETURNED, SubStatus.RETURNED_TO_SENDER, "Returned to sender", origin, first)
    elif rng.random() < 0.6:
        signed_by = rng.choice(SIGNERS)
        b.add(Status.DELIVERED, SubStatus.SIGNED, f"Delivered, signed for by {signed_by}", city, last)
    else:
        b.add(Status.DELIVERED, SubStatus.LEFT_AT_DOOR, "Delivered, left at front door", city, last)
    return _finish(b, number, carrier, outcome, origin_cc, dest_cc, last, eta=eta, signed_by=signed_by)


def _finish(
    b: _Builder,
    number: str,
    carrier: str,
    outcome: str,
    origin_cc: str,
    dest_cc: str,
    last_mile: str,
    *,
    eta: datetime | None = None,
    eta_days: float | None = None,
    signed_by: str | None = None,
) -> Journey:
    if eta is None:
        eta = _eta(b, eta_days if eta_days is not None else 10.0)
        if outcome == "stalled":
            # the promise was made from the first scans, not from the silence that follows
            eta = (b.start + timedelta(days=eta_days or 10.0)).replace(minute=0, second=0, microsecond=0)
    return Journey(
        number=number,
        carrier=carrier,
        outcome=outcome,
        origin=origin_cc,
        destination=dest_cc,
        steps=tuple(b.steps),
        eta=eta,
        signed_by=signed_by,
        last_mile=last_mile,
    )
