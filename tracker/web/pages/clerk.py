"""/clerk: customs clerks sign in with their review key and see the dossiers awaiting them.

The session cookie holds the key's visible prefix, an expiry and an HMAC keyed by the
stored key hash: no server-side session table, the key itself never sits in the browser,
and revoking the key ends the session. Forms carry a CSRF token bound to the session (or,
before sign-in, a double-submit cookie)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from tracker import keys
from tracker.customs import KINDS
from tracker.customs.render import TEMPLATES
from tracker.store import declarations as store
from tracker.store import sellers as seller_store
from tracker.store.sellers import Principal
from tracker.web.api.declarations import REVIEW, REVIEW_STATES, pdf_response
from tracker.web.problems import Problem

SESSION_COOKIE = "clerk_session"
LOGIN_CSRF_COOKIE = "clerk_csrf"
SESSION_HOURS = 8
_ENV = Environment(loader=FileSystemLoader(str(TEMPLATES / "clerk")), autoescape=True, undefined=StrictUndefined)


def _sign(key_hash: str, message: str) -> str:
    return hmac.new(key_hash.encode(), message.encode(), hashlib.sha256).hexdigest()


def _secure(request: web.Request) -> bool:
    return request.app[keys.SETTINGS].server.public_url.startswith("https://")


def _cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/clerk", httponly=True, samesite="Strict", secure=_secure(request)
    )


async def _session(request: web.Request) -> tuple[Principal, str] | None:
    """The clerk signed in on this request and the session's CSRF token, or None."""
    raw = request.cookies.get(SESSION_COOKIE, "")
    prefix, _, rest = raw.partition(".")
    expiry, _, mac = rest.partition(".")
    if not (prefix and expiry.isdigit() and mac):
        return None
    now: datetime = request.app[keys.CLOCK]()
    if int(expiry) < int(now.timestamp()):
        return None
    async with request.app[keys.SESSIONMAKER]() as session:
        row = await store.live_key(session, prefix)
    if row is None or not hmac.compare_digest(mac, _sign(row.key_hash, f"{prefix}|{expiry}")):
        return None
    scopes = frozenset(s for s in row.scopes.split(",") if s)
    if REVIEW not in scopes:
        return None
    principal = Principal(
        key_id=row.id, key_prefix=row.prefix, key_seller_id=row.seller_id, seller_id=row.seller_id, scopes=scopes
    )
    return principal, _sign(row.key_hash, f"csrf|{raw}")


def _page(**ctx: Any) -> web.Response:
    html = _ENV.get_template("clerk.html.j2").render(**ctx)
    return web.Response(
        text=html,
        content_type="text/html",
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def _rows(request: web.Request, principal: Principal) -> list[dict[str, Any]]:
    rows = []
    async with request.app[keys.SESSIONMAKER]() as session:
        for decl in await store.list_for(session, principal.seller_id, statuses=REVIEW_STATES, limit=200):
            val: dict[str, Any] = dict(decl.validation or {})
            release = await store.customs_release(session, decl.shipment_id)
            docs = [k for k, ready in (val.get("documents") or {}).items() if ready]
            rows.append(
                {
                    "id": decl.id,
                    "status": decl.status,
                    "entry_number": decl.entry_number,
                    "currency": decl.currency,
                    "total": decl.total_value,
                    "invoice": decl.header.get("invoice_number") or "",
                    "ok": bool(val.get("ok")),
                    "errors": len(val.get("errors") or []),
                    "warnings": len(val.get("warnings") or []),
                    "postal_form": val.get("postal_form"),
                    "release": None
                    if release is None
                    else f"released {release.occurred_at.strftime('%Y-%m-%d %H:%M')} UTC · {release.description}",
                    "documents": [k for k in KINDS if k in docs],
                }
            )
    return rows


async def index(request: web.Request) -> web.Response:
    found = await _session(request)
    if found is None:
        token = secrets.token_urlsafe(24)
        response = _page(signed_in=False, csrf=token, error=request.query.get("error", "")[:100])
        _cookie(response, request, LOGIN_CSRF_COOKIE, token, 3600)
        return response
    principal, csrf = found
    return _page(signed_in=True, csrf=csrf, key_prefix=principal.key_prefix, rows=await _rows(request, principal))


def _redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie_token or not hmac.compare_digest(str(form.get("csrf", "")), cookie_token):
        raise Problem(403, "csrf", "The form expired; reload the page and sign in again.")
    api_key = str(form.get("api_key", "")).strip()
    async with request.app[keys.SESSIONMAKER]() as session:
        row = await seller_store.authenticate(session, api_key) if api_key else None
    if row is None or REVIEW not in row.scopes.split(","):
        # the same answer for an unknown key and a key without the review scope
        raise _redirect("/clerk?error=That+key+cannot+review+declarations.")
    now: datetime = request.app[keys.CLOCK]()
    expiry = str(int((now + timedelta(hours=SESSION_HOURS)).timestamp()))
    value = f"{row.prefix}.{expiry}.{_sign(row.key_hash, f'{row.prefix}|{expiry}')}"
    response = web.HTTPSeeOther("/clerk")
    _cookie(response, request, SESSION_COOKIE, value, SESSION_HOURS * 3600)
    response.del_cookie(LOGIN_CSRF_COOKIE, path="/clerk")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    found = await _session(request)
    form = await request.post()
    if found is None or not hmac.compare_digest(str(form.get("csrf", "")), found[1]):
        raise Problem(403, "csrf", "The form expired; reload the page.")
    response = web.HTTPSeeOther("/clerk")
    response.del_cookie(SESSION_COOKIE, path="/clerk")
    raise response


async def download(request: web.Request) -> web.StreamResponse:
    found = await _session(request)
    if found is None:
        raise _redirect("/clerk")
    principal, _ = found
    async with request.app[keys.SESSIONMAKER]() as session:
        try:
            loaded = await store.get(session, principal.seller_id, request.match_info["id"])
        except LookupError as err:
            raise Problem(404, "not-found", "No such declaration.") from err
    if loaded.declaration.status in ("draft", "rejected"):
        raise Problem(404, "not-found", "No such declaration.")
    return await pdf_response(request, loaded, request.match_info["kind"])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/clerk", index)
    app.router.add_post("/clerk/login", login)
    app.router.add_post("/clerk/logout", logout)
    app.router.add_get("/clerk/declarations/{id}/documents/{kind}.pdf", download)
