"""Browser sessions for the HTML pages: an API key is exchanged once for a signed cookie.

The cookie holds the key's visible prefix, an expiry and an HMAC keyed by the stored key
hash, so no session table is needed, the key itself never sits in the browser, and
revoking the key ends every session made with it. Forms carry a CSRF token derived from
the session cookie; before sign-in, a double-submit cookie protects the sign-in form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from sqlmodel import select

from tracker import keys
from tracker.models import ApiKey
from tracker.store import sellers as seller_store
from tracker.store.sellers import Principal
from tracker.web.problems import Problem


@dataclass(frozen=True, slots=True)
class CookieSession:
    """Where a family of pages keeps its session: cookie names, path, lifetime, scope."""

    cookie: str
    login_cookie: str
    path: str
    hours: int
    scope: str


@dataclass(frozen=True, slots=True)
class Signed:
    principal: Principal
    csrf: str


def _sign(key_hash: str, message: str) -> str:
    return hmac.new(key_hash.encode(), message.encode(), hashlib.sha256).hexdigest()


def secure(request: web.Request) -> bool:
    """Cookies are Secure whenever the service is published over https."""
    return request.app[keys.SETTINGS].server.public_url.startswith("https://")


def _set(
    response: web.StreamResponse, request: web.Request, cfg: CookieSession, name: str, value: str, age: int
) -> None:
    response.set_cookie(name, value, max_age=age, path=cfg.path, httponly=True, samesite="Lax", secure=secure(request))


async def _live_key(request: web.Request, prefix: str) -> ApiKey | None:
    async with request.app[keys.SESSIONMAKER]() as session:
        row = (await session.exec(select(ApiKey).where(ApiKey.prefix == prefix))).first()
    return row if row is not None and row.revoked_at is None else None


async def current(request: web.Request, cfg: CookieSession) -> Signed | None:
    """The signed-in principal of this request and its CSRF token, or None."""
    raw = request.cookies.get(cfg.cookie, "")
    prefix, _, rest = raw.partition(".")
    expiry, _, mac = rest.partition(".")
    if not (prefix and expiry.isdigit() and mac):
        return None
    now: datetime = request.app[keys.CLOCK]()
    if int(expiry) < int(now.timestamp()):
        return None
    row = await _live_key(request, prefix)
    if row is None or not hmac.compare_digest(mac, _sign(row.key_hash, f"{cfg.path}|{prefix}|{expiry}")):
        return None
    scopes = frozenset(s for s in row.scopes.split(",") if s)
    if cfg.scope not in scopes:
        return None
    principal = Principal(
        key_id=row.id, key_prefix=row.prefix, key_seller_id=row.seller_id, seller_id=row.seller_id, scopes=scopes
    )
    return Signed(principal, _sign(row.key_hash, f"csrf|{raw}"))


def new_login_token() -> str:
    """A fresh token for the sign-in form; `set_login_token` mirrors it in a cookie."""
    return secrets.token_urlsafe(24)


def set_login_token(request: web.Request, response: web.StreamResponse, cfg: CookieSession, token: str) -> None:
    _set(response, request, cfg, cfg.login_cookie, token, 3600)


def check_login_token(request: web.Request, cfg: CookieSession, submitted: str) -> None:
    expected = request.cookies.get(cfg.login_cookie, "")
    if not expected or not hmac.compare_digest(submitted, expected):
        raise Problem(403, "csrf", "The form expired; reload the page and sign in again.")


def check_csrf(signed: Signed, submitted: str) -> None:
    if not hmac.compare_digest(submitted, signed.csrf):
        raise Problem(403, "csrf", "The form expired; reload the page and try again.")


async def sign_in(request: web.Request, response: web.StreamResponse, cfg: CookieSession, api_key: str) -> bool:
    """Set the session cookie on `response` when `api_key` is live and has the scope."""
    async with request.app[keys.SESSIONMAKER]() as session:
        row = await seller_store.authenticate(session, api_key) if api_key else None
    if row is None or cfg.scope not in row.scopes.split(","):
        return False
    now: datetime = request.app[keys.CLOCK]()
    expiry = str(int((now + timedelta(hours=cfg.hours)).timestamp()))
    value = f"{row.prefix}.{expiry}.{_sign(row.key_hash, f'{cfg.path}|{row.prefix}|{expiry}')}"
    _set(response, request, cfg, cfg.cookie, value, cfg.hours * 3600)
    response.del_cookie(cfg.login_cookie, path=cfg.path)
    return True


def sign_out(response: web.StreamResponse, cfg: CookieSession) -> None:
    response.del_cookie(cfg.cookie, path=cfg.path)
