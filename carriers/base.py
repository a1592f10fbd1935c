"""The adapter contract (DESIGN §5): result types, typed errors, and the shared HTTP edge.

Adapters are pure where they can be (`parse(body)`) and do I/O only in `track(numbers)`,
through the injected `aiohttp.ClientSession` and the helpers here, so every carrier maps
HTTP failures to the same error types.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, ClassVar, TypeVar

import aiohttp
import orjson

from carriers.status import Status, SubStatus

log = logging.getLogger("carriers")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class TimeBasis(StrEnum):
    """How an event's UTC instant was derived from what the carrier sent."""

    OFFSET_GIVEN = "offset_given"  # the carrier sent an explicit offset
    UTC_GIVEN = "utc_given"  # the carrier sent a trustworthy UTC instant
    ZONE_FROM_LOCATION = "zone_from_location"  # local time, zone resolved from the place
    ZONE_ASSUMED = "zone_assumed"  # local time, zone assumed (carrier default / fallback)


@dataclass(frozen=True, slots=True)
class Location:
    city: str | None = None
    region: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2, upper case
    postcode: str | None = None

    def label(self) -> str:
        return ", ".join(p for p in (self.city, self.region, self.country) if p)


#: no place given: stands in for an event's missing location where fields are read
NOWHERE = Location()


@dataclass(frozen=True, slots=True, init=False)
class CarrierEvent:
    occurred_at: datetime  # aware, UTC
    time_basis: TimeBasis
    local_time: str  # wall-clock at the place of the event, ISO 8601 without offset
    status: Status
    sub_status: SubStatus
    raw_code: str
    description: str
    location: Location | None = None
    provider: str = ""  # carrier code of whoever scanned it (first mile / last mile)
    utc_offset_minutes: int | None = None  # offset used to derive occurred_at, when known

    # The generated __init__ of a frozen dataclass stores each field through
    # object.__setattr__, which looks the name up again every time; parsers build an
    # event per scan, so this one writes the slots through their descriptors instead.
    def __init__(
        self,
        occurred_at: datetime,
        time_basis: TimeBasis,
        local_time: str,
        status: Status,
        sub_status: SubStatus,
        raw_code: str,
        description: str,
        location: Location | None = None,
        provider: str = "",
        utc_offset_minutes: int | None = None,
    ) -> None:
        if occurred_at.tzinfo is None:
            raise ValueError("CarrierEvent.occurred_at must be timezone-aware")
        (
            set_occurred_at,
            set_time_basis,
            set_local_time,
            set_status,
            set_sub_status,
            set_raw_code,
            set_description,
            set_location,
            set_provider,
            set_utc_offset_minutes,
        ) = _EVENT_SLOTS
        set_occurred_at(self, occurred_at)
        set_time_basis(self, time_basis)
        set_local_time(self, local_time)
        set_status(self, status)
        set_sub_status(self, sub_status)
        set_raw_code(self, raw_code)
        set_description(self, description)
        set_location(self, location)
        set_provider(self, provider)
        set_utc_offset_minutes(self, utc_offset_minutes)


#: the slot setters of CarrierEvent, in field order (the order its __init__ unpacks them)
_EVENT_SLOTS: tuple[Callable[[CarrierEvent, Any], None], ...] = tuple(
    vars(CarrierEvent)[f.name].__set__ for f in fields(CarrierEvent)
)


@dataclass(slots=True)
class TrackResult:
    tracking_number: str
    found: bool
    status: Status = Status.PENDING
    sub_status: SubStatus = SubStatus.OTHER
    events: list[CarrierEvent] = field(default_factory=list)
    estimated_delivery: datetime | None = None  # start of the window, or the day
    estimated_delivery_end: datetime | None = None  # end of the window when the carrier gives one
    signed_by: str | None = None
    origin_country: str | None = None
    destination_country: str | None = None
    provider: str = ""  # carrier code of the adapter that reported it
    raw_status: str = ""
    #: the carrier's id for this shipment when one number maps to several shipments
    shipment_ref: str | None = None
    #: set when this item could not be read; the rest of the batch is unaffected
    error: str | None = None


# --- errors -----------------------------------------------------------------------------


class CarrierError(Exception):
    """Base of every error an adapter raises."""

    def __init__(self, message: str, *, carrier: str = "") -> None:
        super().__init__(message)
        self.carrier = carrier


class AuthError(CarrierError):
    """Credentials refused (after one token refresh for OAuth2 carriers)."""


class RateLimited(CarrierError):
    def __init__(self, message: str, *, carrier: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, carrier=carrier)
        self.retry_after = retry_after  # seconds


class NotFound(CarrierError):
    """The carrier knows nothing of the number (used where a whole call is about one number)."""


class CarrierUnavailable(CarrierError):
    """5xx, timeouts, connection failures: try again next cycle."""


class BadResponse(CarrierError):
    """A body we cannot read. Carries a trimmed copy of the body for the log."""

    def __init__(self, message: str, *, carrier: str = "", body: bytes | str | None = None) -> None:
        super().__init__(message, carrier=carrier)
        if isinstance(body, bytes):
            body = body[:500].decode("utf-8", "replace")
        self.body = (body or "")[:500]


# --- settings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimit:
    per_second: float
    burst: int = 1


@dataclass(frozen=True, slots=True)
class CarrierSettings:
    base_url: str
    api_key: str = ""  # DHL-API-Key, 17token, Yanwen customer number
    client_id: str = ""  # OAuth2 (UPS, FedEx, USPS); SF partnerID
    client_secret: str = ""  # OAuth2 secret; SF checkWord
    account: str = ""  # carrier account / merchant id where one is needed
    timeout: float = 20.0
    webhook_secret: str = ""  # for carriers that push (17TRACK)
    extra: Mapping[str, str] = field(default_factory=dict)


# --- bodies ---------------------------------------------------------------------------


#: every ASCII digit -> "0", the quote stays, every other byte -> " "
_DIGIT_MASK = bytes(0x30 if 0x30 <= b <= 0x39 else b if b == 0x22 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 19
#: a run of 19 digits that does not open a string: a number token starts the body or
#: follows a byte that is neither a quote nor a digit ("-", ",", ":", "[", a space)
_LONG_NUMBER = b" " + _LONG_RUN
#: orjson reads every integer in [-2**63, 2**64) exactly; beyond, it gives a float this large
_EXACT_INT_LIMIT = 2.0**63


R = TypeVar("R")


def cached_by_values(read: Callable[..., R], maxsize: int = 4096) -> Callable[..., R]:
    """`read` memoized on the raw JSON values it is called with (depot names, zone texts),
    which repeat on every poll. A call with an unhashable value (a list or an object where
    a text belongs) is read afresh. `read` must read equal keys alike: 1, 1.0 and True are
    one key, which holds for readers that take only text."""
    cached = lru_cache(maxsize=maxsize)(read)

    def call(*values: Any) -> R:
        try:
            return cached(*values)
        except TypeError:
            return read(*values)

    return call


def load_json(body: bytes | bytearray | str) -> Any:
    """A JSON body -> Python values, exactly as `json.loads` reads it, raising what it raises.

    orjson reads the common body several times faster, but it refuses a few documents the
    standard parser accepts (NaN, nesting deeper than 1024, UTF-16 bodies) and silently
    turns integers beyond 64 bits into floats, which would mangle a long numeric id. So a
    body that may hold a number of 19 digits or more, or one orjson refuses, is read by
    `json.loads`. A string that starts with such a run (a USPS or FedEx tracking number of
    20 to 22 digits, in every answer about it) is not a number, and keeps the fast reader.
    """
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    masked = raw.translate(_DIGIT_MASK)
    if _LONG_NUMBER not in masked and not masked.startswith(_LONG_RUN):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return json.loads(body)


class ExactFloat(float):
    """A float the body spelled as one (or NaN, Infinity), as `load_json_exact` reads it."""

    __slots__ = ()


class InexactNumber(Exception):
    """A number read from `load_json_fast` may be an integer that lost digits.

    The reader that meets it starts over from `load_json_exact`.
    """


def load_json_exact(body: bytes | bytearray | str) -> Any:
    """`json.loads`, with every float an `ExactFloat` so `number_text` knows it is as spelled."""
    return json.loads(body, parse_float=ExactFloat, parse_constant=ExactFloat)


def load_json_fast(body: bytes | bytearray | str) -> Any:
    """`load_json` without its scan of the body: an integer beyond 64 bits may come back as a
    plain float of 2**63 or more, which `number_text` refuses with `InexactNumber`.

    Scanning every byte for long digit runs costs about as much as decoding the body, while
    a reader only needs exact numbers where it turns one into text: there a float that large
    is the only trace such an integer leaves, so the reader checks there, and only then
    reads the body again exactly. Every other value is what `load_json_exact` gives.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return load_json_exact(body)


def number_text(value: int | float) -> str:
    """`str(value)` for a number from `load_json_fast` or `load_json_exact`.

    Raises `InexactNumber` for a plain float too large to rule out an integer orjson could
    not hold.
    """
    if type(value) is float and (value >= _EXACT_INT_LIMIT or value <= -_EXACT_INT_LIMIT):
        raise InexactNumber(repr(value))
    return str(value)


# --- HTTP helpers -----------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Retry-After as seconds, from either form of RFC 9110 §10.2.3 (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class CarrierAdapter(ABC):
    """Base class of every adapter. Subclasses set the class attributes and implement
    `parse` (pure) and `track` (I/O)."""

    code: ClassVar[str]
    name: ClassVar[str]
    batch_limit: ClassVar[int] = 1
    rate_limit: ClassVar[RateLimit] = RateLimit(per_second=1.0, burst=1)
    #: seconds to wait after a 429 that carries no Retry-After
    default_retry_after: ClassVar[float] = 60.0
    #: the carrier's public tracking page for a number, shown on our tracking page
    public_url_template: ClassVar[str] = ""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        settings: CarrierSettings,
        clock: Clock = utc_now,
    ) -> None:
        self.session = session
        self.settings = settings
        self.clock = clock

    @abstractmethod
    def parse(self, body: bytes) -> list[TrackResult]:
        """One successful response body -> results. Raises only `BadResponse`."""

    @abstractmethod
    async def track(self, numbers: Sequence[str]) -> list[TrackResult]:
        """Ask the carrier about up to `batch_limit` numbers."""

    def public_url(self, number: str) -> str:
        return self.public_url_template.format(number=number) if self.public_url_template else ""

    def url(self, path: str) -> str:
        return self.settings.base_url.rstrip("/") + "/" + path.lstrip("/")

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        ok: Sequence[int] = (200,),
    ) -> HttpResponse:
        """Send one request and map transport failures to typed errors.

        Statuses in `ok` come back to the caller (some carriers put "not found" in a 400 or
        404 body); 401/403 raise `AuthError`, 429 `RateLimited`, 5xx `CarrierUnavailable`,
        anything else `BadResponse`.
        """
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        try:
            async with self.session.request(
                method,
                self.url(path),
                headers=headers,
                params=params,
                json=json,
                data=data,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                body = await resp.read()
                status = resp.status
                resp_headers = {k: v for k, v in resp.headers.items()}
        except TimeoutError as err:
            raise CarrierUnavailable(f"{self.code}: timeout", carrier=self.code) from err
        except aiohttp.ClientError as err:
            raise CarrierUnavailable(f"{self.code}: {type(err).__name__}", carrier=self.code) from err
        if status in ok:
            return HttpResponse(status, resp_headers, body)
        if status in (401, 403):
            raise AuthError(f"{self.code}: HTTP {status}", carrier=self.code)
        if status == 429:
            retry = parse_retry_after(resp_headers.get("Retry-After"), now=self.clock())
            raise RateLimited(
                f"{self.code}: HTTP 429",
                carrier=self.code,
                retry_after=retry if retry is not None else self.default_retry_after,
            )
        if status >= 500:
            raise CarrierUnavailable(f"{self.code}: HTTP {status}", carrier=self.code)
        raise BadResponse(f"{self.code}: unexpected HTTP {status}", carrier=self.code, body=body)


class TokenCache:
    """An OAuth2 client-credentials token kept until shortly before it expires.

    `fetch` returns (access_token, lifetime_seconds). Concurrent callers share one fetch.
    """

    def __init__(self, fetch: Callable[[], Any], clock: Clock, *, margin: float = 60.0) -> None:
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _valid(self) -> bool:
        return (
            self._token is not None
            and self._expires_at is not None
            and self._clock() < self._expires_at - timedelta(seconds=self._margin)
        )

    async def get(self) -> str:
        if self._valid():
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._valid():
                token, lifetime = await self._fetch()
                self.fetches += 1
                self._token = token
                self._expires_at = self._clock() + timedelta(seconds=float(lifetime))
        assert self._token is not None
        return self._token

    def invalidate(self) -> None:
        self._token = None
        self._expires_at = None


async def with_token_refresh(tokens: TokenCache, call: Callable[[str], Any]) -> Any:
    """Run `call(token)`; on `AuthError` drop the token and try exactly once more."""
    token = await tokens.get()
    try:
        return await call(token)
    except AuthError:
        tokens.invalidate()
        token = await tokens.get()
        return await call(token)
