"""Turn a carrier's local wall-clock time into a UTC instant, using the place of the scan.

Carriers often send local time without an offset (DESIGN §4, carrier-apis.md §0). The zone
is chosen in this order, first match wins:

1. the city (normalized, accents and punctuation dropped) in a curated table of major
   cities of countries that span several zones (US, CA, BR, RU, AU, MX, ID, ES, PT, ...),
   -> `ZONE_FROM_LOCATION`;
2. the region code or name (US state, Canadian province, Australian state, Brazilian and
   Mexican state) -> `ZONE_FROM_LOCATION`;
3. the country alone, when the tz database lists one zone for it, or all its zones keep the
   same offsets, or one zone dominates it (China, Spain, Portugal, New Zealand, ...)
   -> `ZONE_FROM_LOCATION`;
4. `fallback_zone` given by the caller (a carrier default, the shipment's origin or
   destination) -> `ZONE_ASSUMED`;
5. UTC -> `ZONE_ASSUMED`.

Country zones come from `zone.tab` of the `tzdata` package. Wall-clock times that fall in
a DST gap or fold are read with `fold=0` (the offset in force before the transition), so
the same input always yields the same instant.
"""

from __future__ import annotations

import importlib.resources
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carriers.base import TimeBasis


def _each(codes: str, zone: str) -> dict[str, str]:
    return dict.fromkeys(codes.split(), zone)


# Multi-zone countries where one zone covers nearly everyone (official single time in
# China; peninsular Spain and mainland Portugal; the main islands of New Zealand, ...).
_PRINCIPAL: dict[str, str] = {
    "CN": "Asia/Shanghai",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "NZ": "Pacific/Auckland",
    "EC": "America/Guayaquil",
    "CL": "America/Santiago",
    "UA": "Europe/Kyiv",
    "MN": "Asia/Ulaanbaatar",
    "PG": "Pacific/Port_Moresby",
    "PF": "Pacific/Tahiti",
    "GL": "America/Nuuk",
}

_US_STATES: dict[str, str] = {
    **_each("CT DE DC FL GA IN KY ME MD MA MI NH NJ NY NC OH PA RI SC VT VA WV", "America/New_York"),
    **_each("AL AR IL IA KS LA MN MS MO NE ND OK SD TN TX WI", "America/Chicago"),
    **_each("CO MT NM UT WY ID", "America/Denver"),
    "AZ": "America/Phoenix",
    **_each("CA NV OR WA", "America/Los_Angeles"),
    "AK": "America/Anchorage",
    "HI": "Pacific/Honolulu",
    "PR": "America/Puerto_Rico",
}

_CA_PROVINCES: dict[str, str] = {
    "NL": "America/St_Johns",
    **_each("NS NB PE", "America/Halifax"),
    **_each("QC ON NU", "America/Toronto"),
    "MB": "America/Winnipeg",
    "SK": "America/Regina",
    **_each("AB NT", "America/Edmonton"),
    "BC": "America/Vancouver",
    "YT": "America/Whitehorse",
}

_AU_STATES: dict[str, str] = {
    "NSW": "Australia/Sydney",
    "ACT": "Australia/Sydney",
    "VIC": "Australia/Melbourne",
    "QLD": "Australia/Brisbane",
    "SA": "Australia/Adelaide",
    "WA": "Australia/Perth",
    "TAS": "Australia/Hobart",
    "NT": "Australia/Darwin",
}

_BR_STATES: dict[str, str] = {
    **_each("SP RJ MG ES PR SC RS GO DF", "America/Sao_Paulo"),
    **_each("BA", "America/Bahia"),
    **_each("CE RN PB PI MA", "America/Fortaleza"),
    "PE": "America/Recife",
    "AL": "America/Maceio",
    "SE": "America/Maceio",
    "PA": "America/Belem",
    "AP": "America/Belem",
    "TO": "America/Araguaina",
    "MS": "America/Campo_Grande",
    "MT": "America/Cuiaba",
    "RO": "America/Porto_Velho",
    "AM": "America/Manaus",
    "RR": "America/Boa_Vista",
    "AC": "America/Rio_Branco",
}

_MX_STATES: dict[str, str] = {
    **_each(
        "AGU CAM CHP CMX COA COL DUR GRO GUA HID JAL MEX MIC MOR NLE OAX PUE QUE SLP TAB TAM TLA VER YUC ZAC",
        "America/Mexico_City",
    ),
    "ROO": "America/Cancun",
    "BCN": "America/Tijuana",
    "BC": "America/Tijuana",
    "SON": "America/Hermosillo",
    "BCS": "America/Mazatlan",
    "SIN": "America/Mazatlan",
    "NAY": "America/Mazatlan",
    "CHH": "America/Chihuahua",
}

_REGIONS: dict[str, dict[str, str]] = {
    "US": _US_STATES,
    "CA": _CA_PROVINCES,
    "AU": _AU_STATES,
    "BR": _BR_STATES,
    "MX": _MX_STATES,
}

# Keys are normalized city names (see `_norm`).
_CITIES: dict[str, dict[str, str]] = {
    "US": {
        **dict.fromkeys(
            [
                "new york",
                "brooklyn",
                "queens",
                "bronx",
                "staten island",
                "jamaica",
                "newark",
                "jersey city",
                "secaucus",
                "edison",
                "wayne",
                "philadelphia",
                "pittsburgh",
                "boston",
                "washington",
                "baltimore",
                "atlanta",
                "miami",
                "doral",
                "orlando",
                "tampa",
                "jacksonville",
                "charlotte",
                "raleigh",
                "richmond",
                "detroit",
                "columbus",
                "cleveland",
                "cincinnati",
                "indianapolis",
                "louisville",
                "buffalo",
                "hartford",
                "providence",
            ],
            "America/New_York",
        ),
        **dict.fromkeys(
            [
                "chicago",
                "houston",
                "dallas",
                "fort worth",
                "san antonio",
                "austin",
                "memphis",
                "nashville",
                "new orleans",
                "kansas city",
                "st louis",
                "saint louis",
                "minneapolis",
                "saint paul",
                "milwaukee",
                "oklahoma city",
                "omaha",
                "des moines",
                "hodgkins",
                "addison",
            ],
            "America/Chicago",
        ),
        **dict.fromkeys(
            ["denver", "salt lake city", "albuquerque", "boise", "el paso", "commerce city"],
            "America/Denver",
        ),
        **dict.fromkeys(["phoenix", "tucson", "tempe", "mesa"], "America/Phoenix"),
        **dict.fromkeys(
            [
                "los angeles",
                "san francisco",
                "oakland",
                "san jose",
                "san diego",
                "seattle",
                "portland",
                "las vegas",
                "sacramento",
                "ontario",
                "city of industry",
                "long beach",
                "fresno",
                "reno",
            ],
            "America/Los_Angeles",
        ),
        "anchorage": "America/Anchorage",
        "honolulu": "Pacific/Honolulu",
        "san juan": "America/Puerto_Rico",
    },
    "CA": {
        **dict.fromkeys(
            ["toronto", "mississauga", "brampton", "ottawa", "montreal", "quebec", "hamilton"],
            "America/Toronto",
        ),
        **dict.fromkeys(["vancouver", "richmond", "surrey", "burnaby", "victoria"], "America/Vancouver"),
        **dict.fromkeys(["calgary", "edmonton"], "America/Edmonton"),
        "winnipeg": "America/Winnipeg",
        **dict.fromkeys(["regina", "saskatoon"], "America/Regina"),
        **dict.fromkeys(["halifax", "moncton", "fredericton"], "America/Halifax"),
        "st johns": "America/St_Johns",
    },
    "BR": {
        **dict.fromkeys(
            [
                "sao paulo",
                "rio de janeiro",
                "belo horizonte",
                "curitiba",
                "porto alegre",
                "brasilia",
                "campinas",
                "guarulhos",
                "goiania",
                "florianopolis",
            ],
            "America/Sao_Paulo",
        ),
        "salvador": "America/Bahia",
        "fortaleza": "America/Fortaleza",
        "recife": "America/Recife",
        "belem": "America/Belem",
        "manaus": "America/Manaus",
        "cuiaba": "America/Cuiaba",
        "campo grande": "America/Campo_Grande",
        "porto velho": "America/Porto_Velho",
        "rio branco": "America/Rio_Branco",
    },
    "RU": {
        **dict.fromkeys(
            [
                "moscow",
                "khimki",
                "moskva",
                "saint petersburg",
                "st petersburg",
                "sankt peterburg",
                "nizhny novgorod",
                "kazan",
                "rostov on don",
                "krasnodar",
                "voronezh",
                "sochi",
            ],
            "Europe/Moscow",
        ),
        "kaliningrad": "Europe/Kaliningrad",
        "samara": "Europe/Samara",
        "volgograd": "Europe/Volgograd",
        **dict.fromkeys(
            ["yekaterinburg", "ekaterinburg", "chelyabinsk", "perm", "ufa", "tyumen"], "Asia/Yekaterinburg"
        ),
        "omsk": "Asia/Omsk",
        **dict.fromkeys(["novosibirsk"], "Asia/Novosibirsk"),
        **dict.fromkeys(["krasnoyarsk"], "Asia/Krasnoyarsk"),
        "irkutsk": "Asia/Irkutsk",
        "yakutsk": "Asia/Yakutsk",
        **dict.fromkeys(["vladivostok", "khabarovsk"], "Asia/Vladivostok"),
        "magadan": "Asia/Magadan",
    },
    "AU": {
        **dict.fromkeys(["sydney", "canberra", "newcastle", "mascot"], "Australia/Sydney"),
        "melbourne": "Australia/Melbourne",
        **dict.fromkeys(["brisbane", "gold coast"], "Australia/Brisbane"),
        "adelaide": "Australia/Adelaide",
        "perth": "Australia/Perth",
        "hobart": "Australia/Hobart",
        "darwin": "Australia/Darwin",
    },
    "MX": {
        **dict.fromkeys(
            ["mexico city", "ciudad de mexico", "cdmx", "guadalajara", "puebla", "queretaro", "leon"],
            "America/Mexico_City",
        ),
        "monterrey": "America/Monterrey",
        "cancun": "America/Cancun",
        "merida": "America/Merida",
        "tijuana": "America/Tijuana",
        "mexicali": "America/Tijuana",
        "hermosillo": "America/Hermosillo",
        "chihuahua": "America/Chihuahua",
        "ciudad juarez": "America/Ciudad_Juarez",
        "mazatlan": "America/Mazatlan",
        "matamoros": "America/Matamoros",
    },
    "ID": {
        **dict.fromkeys(["jakarta", "surabaya", "bandung", "semarang", "medan"], "Asia/Jakarta"),
        "pontianak": "Asia/Pontianak",
        **dict.fromkeys(["makassar", "denpasar", "bali", "balikpapan"], "Asia/Makassar"),
        "jayapura": "Asia/Jayapura",
    },
    "ES": {
        **dict.fromkeys(
            ["las palmas", "las palmas de gran canaria", "santa cruz de tenerife", "tenerife"],
            "Atlantic/Canary",
        ),
    },
    "PT": {"funchal": "Atlantic/Madeira", "ponta delgada": "Atlantic/Azores"},
    "CN": {"urumqi": "Asia/Shanghai"},
}


def _norm(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.replace("'", "")).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain.casefold()).split())


@cache
def _country_zones() -> dict[str, tuple[str, ...]]:
    text = importlib.resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text("utf-8")
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            zones.setdefault(parts[0], []).append(parts[2])
    return {cc: tuple(zs) for cc, zs in zones.items()}


def _same_offsets(zones: tuple[str, ...]) -> bool:
    """True when every zone keeps the same offsets through a whole recent year."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    probes = [start + timedelta(days=7 * i) for i in range(53)]
    patterns = {tuple(p.astimezone(ZoneInfo(z)).utcoffset() for p in probes) for z in zones}
    return len(patterns) == 1


@cache
def country_zone(country: str) -> str | None:
    """The zone of a whole country, or None when it depends on where in the country."""
    cc = country.strip().upper()
    if cc in _PRINCIPAL:
        return _PRINCIPAL[cc]
    zones = _country_zones().get(cc)
    if not zones:
        return None
    if len(zones) == 1 or _same_offsets(zones):
        return zones[0]
    return None


def _city_candidates(city: str) -> list[str]:
    pieces = [city, *re.split(r",|\s-\s|/", city)]
    out: list[str] = []
    for piece in pieces:
        key = _norm(piece)
        if key and key not in out:
            out.append(key)
    return out


def zone_for(country: str | None, city: str | None = None, region: str | None = None) -> str | None:
    """The IANA zone of a place, or None when the place does not pin one down."""
    if not country:
        return None
    return _place_zone(country, city, region)


# Carriers name the same hubs and depots over and over; the lookup normalizes text, so
# remembering recent places saves most of the work of a parse.
@lru_cache(maxsize=4096)
def _place_zone(country: str, city: str | None, region: str | None) -> str | None:
    cc = country.strip().upper()
    cities = _CITIES.get(cc, {})
    if city and cities:
        for key in _city_candidates(city):
            if key in cities:
                return cities[key]
    if cc in _REGIONS:
        for text in (region, *(_city_candidates(city) if city else [])):
            found = _region_zone(cc, text) if text else None
            if found:
                return found
    return country_zone(cc)


@cache
def _subdivision_codes(country: str) -> dict[str, str]:
    """Normalized subdivision name -> code suffix ("new jersey" -> "NJ"), from pycountry."""
    import pycountry  # lazily: its databases are only needed for region names

    out: dict[str, str] = {}
    subs: Any = pycountry.subdivisions.get(country_code=country)  # type: ignore[no-untyped-call]
    for sub in subs or []:
        out[_norm(sub.name)] = sub.code.split("-", 1)[1]
    return out


def _region_zone(country: str, text: str) -> str | None:
    regions = _REGIONS[country]
    key = _norm(text)
    code = key.replace(" ", "").upper()
    if code in regions:
        return regions[code]
    code = _subdivision_codes(country).get(key, "")
    if code in regions:
        return regions[code]
    # "JAMAICA NY", "Sydney NSW": a trailing region code after the city name
    last = key.rsplit(" ", 1)[-1].upper()
    return regions.get(last) if " " in key else None


@lru_cache(maxsize=1024)
def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_info(name: str | None) -> ZoneInfo | None:
    """The zone of an IANA name; None for no name or an unknown one."""
    return _zone(name)


_NAIVE_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - the origin of wall-clock readings
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_OFFSET = timedelta(0)
_FROM_LOCATION = TimeBasis.ZONE_FROM_LOCATION  # enum members cost a descriptor call each read
_ASSUMED = TimeBasis.ZONE_ASSUMED


def localize(local: datetime, zone: ZoneInfo) -> tuple[datetime, int]:
    """Read a wall-clock time in `zone` (fold=0) -> (UTC instant, offset minutes)."""
    # datetime.replace and the datetime constructor both go through general argument parsing
    # and cost several times a lookup in the zone, so the usual path avoids them: the zone
    # reads a plain reading's fields as they are, and the UTC result is reached by arithmetic
    naive = local if local.tzinfo is None and not local.fold else local.replace(tzinfo=None, fold=0)
    offset = zone.utcoffset(naive) or _NO_OFFSET
    return _UTC_EPOCH + (naive - _NAIVE_EPOCH - offset), (offset.days * 86400 + offset.seconds) // 60


@lru_cache(maxsize=4096)
def _local_zone(
    country: str | None, city: str | None, region: str | None, fallback_zone: str | None
) -> tuple[ZoneInfo | None, TimeBasis]:
    zone = _zone(zone_for(country, city, region))
    if zone is not None:
        return zone, TimeBasis.ZONE_FROM_LOCATION
    return _zone(fallback_zone), TimeBasis.ZONE_ASSUMED


def resolve_local(
    local: datetime,
    *,
    country: str | None,
    city: str | None = None,
    region: str | None = None,
    fallback_zone: str | None = None,
) -> tuple[datetime, TimeBasis, int]:
    """Local wall-clock time + place -> (UTC instant, how it was derived, offset minutes).

    `local` must be naive (the wall-clock reading); an aware value is converted as is.
    """
    if local.tzinfo is not None:
        offset = local.utcoffset() or timedelta(0)
        return local.astimezone(UTC), TimeBasis.OFFSET_GIVEN, int(offset.total_seconds() // 60)
    zone, basis = _local_zone(country, city, region, fallback_zone)
    if zone is not None:
        instant, minutes = localize(local, zone)
        return instant, basis, minutes
    return local.replace(tzinfo=UTC), TimeBasis.ZONE_ASSUMED, 0


def resolve_in(local: datetime, zone: ZoneInfo | None, fallback: ZoneInfo | None) -> tuple[datetime, TimeBasis, int]:
    """`resolve_local` for a naive `local` once the zones are known: `zone` is
    `zone_info(zone_for(country, city, region))` of the place, `fallback` is
    `zone_info(fallback_zone)`."""
    if zone is not None:
        basis = _FROM_LOCATION
    elif fallback is not None:
        zone, basis = fallback, _ASSUMED
    else:
        return local.replace(tzinfo=UTC), _ASSUMED, 0
    instant, minutes = localize(local, zone)
    return instant, basis, minutes


_OFFSET_RE = re.compile(r"^(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_offset(text: str) -> int:
    """A UTC offset as minutes east of UTC: "+8", "+08:00", "-7:00", "+0800", "GMT+8", "Z".

    Raises ValueError for anything else, or for offsets beyond ±14:00.
    """
    value = text.strip()
    if value.upper() in ("Z", "UTC", "GMT"):
        return 0
    m = _OFFSET_RE.match(value)
    if m is None:
        raise ValueError(f"not a UTC offset: {text!r}")
    sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    if minutes >= 60:
        raise ValueError(f"not a UTC offset: {text!r}")
    total = hours * 60 + minutes
    if total > 14 * 60:
        raise ValueError(f"UTC offset out of range: {text!r}")
    return -total if sign == "-" else total


def split_iso(text: str) -> tuple[datetime, int | None]:
    """An ISO 8601 timestamp -> (wall-clock reading, offset minutes or None when absent).

    The wall-clock reading is returned without tzinfo on purpose: it is the carrier's local
    time, to be resolved with `resolve_local` when no offset came with it.
    Raises ValueError when the text is not a timestamp.
    """
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        return parsed, None
    offset = parsed.utcoffset() or _NO_OFFSET
    # the wall-clock reading by arithmetic, as in `localize`: replace(tzinfo=None) costs more
    wall = _NAIVE_EPOCH + ((parsed - _UTC_EPOCH) + offset)
    return wall, (offset.days * 86400 + offset.seconds) // 60


_AFTER_SECONDS = ("", "Z", "+", "-")


def shown_time(text: str, parsed: datetime) -> str:
    """`wall_clock(parsed)` for `parsed = datetime.fromisoformat(text)`, without formatting
    again when `text` already starts with the display form (the usual carrier timestamp)."""
    # text[4], [7], [10], [13] and [16] read in one slice: "YYYY-MM-DDTHH:MM:SS"
    if len(text) >= 19 and text[4:17:3] == "--T::" and text[19:20] in _AFTER_SECONDS:
        return text[:19]
    return wall_clock(parsed)


def wall_clock(local: datetime) -> str:
    """The display form of a wall-clock reading: ISO 8601 without offset, to the second."""
    if local.tzinfo is not None:
        local = local.replace(tzinfo=None)
    return local.isoformat(timespec="seconds")


@lru_cache(maxsize=256)
def _offset(minutes: int) -> timedelta:
    return timedelta(minutes=minutes)


def from_offset(local: datetime, minutes: int) -> datetime:
    """A wall-clock reading at a known offset -> UTC instant."""
    if local.tzinfo is not None:
        local = local.replace(tzinfo=None)
    # arithmetic from the epochs, as in `localize`: two datetime.replace calls cost 2 µs
    return _UTC_EPOCH + (local - _NAIVE_EPOCH - _offset(minutes))
