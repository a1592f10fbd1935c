"""One webhook delivery attempt over HTTP, behind the SSRF guard."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from tracker.clock import Clock, utc_now
from tracker.webhooks.retry import parse_retry_after
from tracker.webhooks.ssrf import (
    BlockedAddress,
    Lookup,
    PinnedResolver,
    ResolutionFailed,
    UnsafeUrl,
    resolve_and_check,
)

DEFAULT_TIMEOUT_S = 15.0
DEFAULT_MAX_RESPONSE_BYTES = 1024
USER_AGENT = "cbec-tracker-webhooks/1"
_MAX_ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt produced; `error` is set when no HTTP status was received."""

    status: int | None
    latency_ms: float
    error: str | None
    response_excerpt: str | None
    retry_after: float | None


def make_session(
    *, allow_loopback: bool, lookup: Lookup | None = None, user_agent: str = USER_AGENT
) -> aiohttp.ClientSession:
    """Build the delivery session whose connector connects only to guard-checked addresses.

    Call it inside the running event loop; one session serves every endpoint.
    """
    connector = aiohttp.TCPConnector(
        resolver=PinnedResolver(allow_loopback=allow_loopback, lookup=lookup),
        # Each new connection asks the guard again instead of reusing a cached answer,
        # so a record that changes to a refused address is refused on the next connect.
        use_dns_cache=False,
    )
    return aiohttp.ClientSession(
        connector=connector,
        # A proxy from the environment would make the connector resolve the proxy, not the
        # endpoint, skipping the guard; cookies must never leak from one seller to another.
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": user_agent},
    )


async def _read_excerpt(resp: aiohttp.ClientResponse, limit: int) -> str | None:
    buf = bytearray()
    try:
        while len(buf) < limit:
            chunk = await resp.content.read(limit - len(buf))
            if not chunk:
                break
            buf += chunk
    except (aiohttp.ClientError, TimeoutError):
        # The status already arrived; a body that stalls or breaks only loses the excerpt.
        return None
    return buf.decode("utf-8", errors="replace")


def _connector_error(exc: aiohttp.ClientConnectorError) -> str:
    cause = exc.os_error
    if isinstance(cause, BlockedAddress):
        return f"unsafe_url:{cause.reason}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"dns_error:{cause}"[:_MAX_ERROR_CHARS]
    return f"connection_error:{cause.strerror or type(cause).__name__}"[:_MAX_ERROR_CHARS]


async def deliver(
    session: aiohttp.ClientSession,
    target_url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    allow_loopback: bool,
    resolver: Lookup | None = None,
    clock: Clock = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> AttemptResult:
    """POST one signed message to `target_url`; never raises for network or HTTP failures.

    `session` should come from `make_session` so the connect-time check applies; the
    check here gives a clean refusal before anything is opened and covers IP literals.
    """
    started = monotonic()

    def result(
        status: int | None = None,
        error: str | None = None,
        excerpt: str | None = None,
        retry_after: float | None = None,
    ) -> AttemptResult:
        latency_ms = (monotonic() - started) * 1000.0
        return AttemptResult(status, latency_ms, error, excerpt, retry_after)

    try:
        await resolve_and_check(target_url, allow_loopback=allow_loopback, resolver=resolver)
    except UnsafeUrl as exc:
        return result(error=f"unsafe_url:{exc.reason}")
    except ResolutionFailed as exc:
        return result(error=f"dns_error:{exc}"[:_MAX_ERROR_CHARS])
    try:
        async with session.post(
            target_url,
            data=body,
            headers=dict(headers),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"), clock())
            excerpt = await _read_excerpt(resp, max_response_bytes)
            return result(resp.status, None, excerpt, retry_after)
    except TimeoutError:
        return result(error="timeout")
    except aiohttp.ClientConnectorError as exc:
        return result(error=_connector_error(exc))
    except aiohttp.ClientError as exc:
        return result(error=f"http_error:{type(exc).__name__}")
