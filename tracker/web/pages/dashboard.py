"""/dashboard: the seller's pages. Server-rendered, usable without JavaScript.

A seller signs in with an API key (exchanged for a signed session cookie, see
tracker.web.session); every query takes the session's seller id, so a seller sees only
its own data. Every POST form carries a CSRF token bound to the session.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import BodyPartReader, web
from markupsafe import Markup

from tracker import analytics, charts, i18n, importer, keys
from tracker.alerts import KINDS
from tracker.db import writing
from tracker.store import ConflictError, NotFoundError
from tracker.store import alerts as alert_store
from tracker.store import dashboard as store
from tracker.store import sellers as seller_store
from tracker.store import shipments as shipment_store
from tracker.store import webhooks as webhook_store
from tracker.store.outbox import enqueue
from tracker.web.pages.tracking import brand_colors
from tracker.web.problems import Problem
from tracker.web.session import (
    CookieSession,
    Signed,
    check_csrf,
    check_login_token,
    current,
    new_login_token,
    set_login_token,
)
from tracker.web.session import sign_in as session_sign_in
from tracker.web.session import sign_out as session_sign_out

HERE = Path(__file__).parent
SESSION = CookieSession(
    cookie="dashboard_session", login_cookie="dashboard_csrf", path="/dashboard", hours=12, scope="shipments:read"
)
STATUSES = tuple(i18n.STATUS_TEXT)
RESOLUTIONS = ("refunded", "compensated", "found", "other")
PAGE_SIZE = 25
MAX_UPLOAD = 20 * 1024 * 1024
_CSS = (HERE / "static" / "page.css").read_text(encoding="utf-8") + (
    HERE / "templates" / "dashboard" / "dashboard.css"
).read_text(encoding="utf-8")


def _N(message: str) -> str:
    return message


NAV = (
    ("shipments", _N("Shipments")),
    ("alerts", _N("Alerts")),
    ("webhooks", _N("Webhooks")),
    ("customs", _N("Customs")),
    ("analytics", _N("Analytics")),
    ("import", _N("Import")),
)
RESOLUTION_TEXT = {
    "refunded": _N("Refunded"),
    "compensated": _N("Compensated"),
    "found": _N("Found"),
    "other": _N("Other"),
}


# ---------------------------------------------------------------- rendering


@lru_cache(maxsize=len(i18n.LANGUAGES))
def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(HERE / "templates" / "dashboard"), jinja2.FileSystemLoader(HERE / "templates")]
        ),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = lambda dt: dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if dt else "–"
    env.filters["pct"] = lambda v: "–" if v is None else f"{v * 100:.1f} %"
    env.filters["num"] = lambda v: "–" if v is None else f"{v:.1f}"
    env.globals["status_text"] = lambda status: i18n.status_text(lang, status)
    env.globals["sub_status_text"] = lambda sub: i18n.sub_status_text(lang, sub)
    return env


def _lang(request: web.Request) -> str:
    return i18n.negotiate(
        request.query.get("lang"), request.cookies.get(i18n.COOKIE), request.headers.get("Accept-Language")
    )


def page(
    request: web.Request, template: str, *, status: int = 200, signed: Signed | None = None, **ctx: Any
) -> web.Response:
    lang = _lang(request)
    color, on = brand_colors(None)
    style = f":root{{--brand:{color};--on-brand:{on};--brand-strong:{color};--on-brand-strong:{on}}}\n{_CSS}"
    t = i18n.translations(lang).gettext
    html = (
        _environment(lang)
        .get_template(template)
        .render(
            lang=lang,
            languages=list(i18n.LANGUAGES.items()),
            self_path=request.path,
            style=Markup(style),  # noqa: S704  (our own stylesheet)
            nav=[(key, t(label)) for key, label in NAV],
            signed=signed,
            csrf=signed.csrf if signed else "",
            **ctx,
        )
    )
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    response = web.Response(
        status=status,
        text=html,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'self' data:; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Vary": "Accept-Language, Cookie",
        },
    )
    chosen = i18n.canonical(request.query.get("lang"))
    if chosen:
        response.set_cookie(i18n.COOKIE, chosen, max_age=365 * 24 * 3600, path="/", samesite="Lax")
    return response


async def _signed(request: web.Request) -> Signed:
    signed = await current(request, SESSION)
    if signed is None:
        if request.method == "GET":
            raise web.HTTPSeeOther("/dashboard/login")
        raise Problem(403, "csrf", "Sign in again; the session expired.")
    return signed


async def _posted(request: web.Request, scope: str) -> tuple[Signed, dict[str, str]]:
    """The session and form of a POST, after the CSRF and scope checks."""
    signed = await _signed(request)
    form = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
    check_csrf(signed, form.get("csrf", ""))
    if not signed.principal.has(scope):
        raise Problem(403, "insufficient-scope", f"This API key lacks the scope {scope}.", required_scope=scope)
    return signed, form


def _back(form: dict[str, str], default: str) -> web.HTTPSeeOther:
    target = form.get("next", "")
    # only our own pages: never an open redirect
    return web.HTTPSeeOther(target if target.startswith("/dashboard/") and "//" not in target else default)


def _not_found(request: web.Request, signed: Signed) -> web.Response:
    return page(request, "not_found.html", status=404, signed=signed, active="")


# ---------------------------------------------------------------- sign-in


async def index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/dashboard/shipments")


async def login_form(request: web.Request) -> web.Response:
    if await current(request, SESSION) is not None:
        raise web.HTTPSeeOther("/dashboard/shipments")
    return _login_page(request, error=False)


def _login_page(request: web.Request, *, error: bool) -> web.Response:
    token = new_login_token()
    response = page(request, "login.html", status=401 if error else 200, active="", login_csrf=token, error=error)
    set_login_token(request, response, SESSION, token)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    check_login_token(request, SESSION, str(form.get("csrf", "")))
    response = web.HTTPSeeOther("/dashboard/shipments")
    if await session_sign_in(request, response, SESSION, str(form.get("api_key", "")).strip()):
        raise response
    # the same answer for an unknown key, a revoked key and a key without the read scope
    return _login_page(request, error=True)


async def logout(request: web.Request) -> web.StreamResponse:
    signed = await _signed(request)
    form = await request.post()
    check_csrf(signed, str(form.get("csrf", "")))
    response = web.HTTPSeeOther("/dashboard/login")
    session_sign_out(response, SESSION)
    raise response


# ---------------------------------------------------------------- shipments


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


async def shipments(request: web.Request) -> web.Response:
    signed = await _signed(request)
    seller_id = signed.principal.seller_id
    q = request.query
    filters = {k: q.get(k, "").strip() for k in ("status", "carrier", "alert", "from", "to", "q")}
    start, end = _day(filters["from"]), _day(filters["to"])
    cursor = q.get("cursor") or None
    async with request.app[keys.SESSIONMAKER]() as session:
        counts = await store.status_counts(session, seller_id)
        next_cursor = None
        if filters["q"]:
            ids = await store.find_shipment_ids(session, seller_id, filters["q"])
            rows = await store.shipments_by_ids(session, seller_id, ids)
        else:
            try:
                found = await shipment_store.list_shipments(
                    session,
                    seller_id,
                    status=filters["status"] or None,
                    carrier=filters["carrier"] or None,
                    has_open_alert={"yes": True, "no": False}.get(filters["alert"]),
                    created_after=_midnight(start) if start else None,
                    created_before=_midnight(end) + timedelta(days=1) if end else None,
                    limit=PAGE_SIZE,
                    cursor=cursor,
                )
            except ValueError:
                raise web.HTTPSeeOther("/dashboard/shipments") from None
            rows, next_cursor = found.items, found.next_cursor
        alerts = await shipment_store.open_alert_kinds(session, [s.id for s in rows])
    kept = {k: v for k, v in filters.items() if v}
    return page(
        request,
        "shipments.html",
        signed=signed,
        active="shipments",
        rows=rows,
        alerts=alerts,
        filters=filters,
        statuses=STATUSES,
        chips=[(s, counts.get(s, 0)) for s in STATUSES if counts.get(s)],
        total=sum(counts.values()),
        chip_query=lambda status: urlencode({**{k: v for k, v in kept.items() if k != "status"}, "status": status}),
        next_query=urlencode({**kept, "cursor": next_cursor}) if next_cursor else None,
        first_query=urlencode(kept) if cursor else None,
        bad_dates=bool((filters["from"] and not start) or (filters["to"] and not end)),
    )


async def shipment(request: web.Request) -> web.Response:
    signed = await _signed(request)
    seller_id = signed.principal.seller_id
    async with request.app[keys.SESSIONMAKER]() as session:
        try:
            s = await shipment_store.get_shipment(session, seller_id, request.match_info["id"])
        except NotFoundError:
            return _not_found(request, signed)
        events = await shipment_store.events_of(session, s.id)
        alerts = await store.open_alerts_of(session, seller_id, s.id)
        notices = await store.notifications_of(session, seller_id, s.id)
        messages = await webhook_store.list_messages(session, seller_id, shipment_id=s.id, limit=20)
        deliveries = {m.id: await webhook_store.deliveries_view(session, m.id) for m in messages.items}
    public_url = request.app[keys.SETTINGS].server.public_url
    return page(
        request,
        "shipment.html",
        signed=signed,
        active="shipments",
        s=s,
        events=list(reversed(events)),
        alerts=alerts,
        notices=notices,
        messages=messages.items,
        deliveries=deliveries,
        resolutions=[(r, i18n.translations(_lang(request)).gettext(RESOLUTION_TEXT[r])) for r in RESOLUTIONS],
        public_link=f"{public_url}/t/{s.public_token}",
        here=request.path,
    )


# ---------------------------------------------------------------- alerts


async def alerts(request: web.Request) -> web.Response:
    signed = await _signed(request)
    seller_id = signed.principal.seller_id
    kind = request.query.get("kind", "")
    kind = kind if kind in KINDS else ""
    async with request.app[keys.SESSIONMAKER]() as session:
        try:
            found = await alert_store.list_alerts(
                session,
                seller_id,
                state="unresolved",
                kind=kind or None,
                limit=PAGE_SIZE,
                cursor=request.query.get("cursor") or None,
            )
        except ValueError:
            raise web.HTTPSeeOther("/dashboard/alerts") from None
        numbers = await store.shipment_numbers(session, seller_id, [a.shipment_id for a in found.items])
    t = i18n.translations(_lang(request)).gettext
    return page(
        request,
        "alerts.html",
        signed=signed,
        active="alerts",
        rows=found.items,
        numbers=numbers,
        kinds=KINDS,
        kind=kind,
        resolutions=[(r, t(RESOLUTION_TEXT[r])) for r in RESOLUTIONS],
        next_query=urlencode({"kind": kind, "cursor": found.next_cursor}) if found.next_cursor else None,
        here=request.path_qs,
    )


async def acknowledge(request: web.Request) -> web.StreamResponse:
    signed, form = await _posted(request, "alerts:write")
    p = signed.principal
    now = request.app[keys.CLOCK]()
    note = form.get("note", "").strip()[:2000] or None
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        try:
            alert = await alert_store.get_alert(session, p.seller_id, request.match_info["id"])
            changed = await alert_store.acknowledge(session, alert, now=now, actor=p.key_prefix, note=note)
        except NotFoundError as err:
            raise Problem(404, "not-found", "No such alert.") from err
        except ConflictError as err:
            raise Problem(409, err.slug, err.detail) from err
        if changed:
            await seller_store.audit(
                session,
                seller_id=p.seller_id,
                actor=p.key_prefix,
                action="alert.acknowledged",
                object_type="alert",
                object_id=alert.id,
                now=now,
                details={"note": note} if note else None,
            )
            await session.commit()
    raise _back(form, "/dashboard/alerts")


async def resolve(request: web.Request) -> web.StreamResponse:
    signed, form = await _posted(request, "alerts:write")
    p = signed.principal
    now = request.app[keys.CLOCK]()
    action = form.get("action", "")
    if action not in RESOLUTIONS:
        raise Problem(422, "validation-failed", "Choose what was done about the alert.")
    note = form.get("note", "").strip()[:2000] or None
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        try:
            alert = await alert_store.get_alert(session, p.seller_id, request.match_info["id"])
        except NotFoundError as err:
            raise Problem(404, "not-found", "No such alert.") from err
        resolved = await alert_store.resolve(
            session, [alert.id], now=now, actor=p.key_prefix, resolution=action, note=note
        )
        if not resolved:
            raise Problem(409, "alert-resolved", "The alert is already resolved.")
        locked = await alert_store.lock_shipments(session, [alert.shipment_id])
        await enqueue(
            session,
            seller_id=p.seller_id,
            event_type="alert.resolved",
            now=now,
            shipment=locked.get(alert.shipment_id),
            data=alert_store.alert_view(resolved[0]),
        )
        details: dict[str, object] = {"action": action, **({"note": note} if note else {})}
        await seller_store.audit(
            session,
            seller_id=p.seller_id,
            actor=p.key_prefix,
            action="alert.resolved",
            object_type="alert",
            object_id=alert.id,
            now=now,
            details=details,
        )
        await session.commit()
    raise _back(form, "/dashboard/alerts")


# ---------------------------------------------------------------- webhooks and customs


async def webhooks(request: web.Request) -> web.Response:
    signed = await _signed(request)
    seller_id = signed.principal.seller_id
    async with request.app[keys.SESSIONMAKER]() as session:
        endpoints = await webhook_store.list_endpoints(session, seller_id)
        try:
            found = await webhook_store.list_messages(
                session, seller_id, limit=PAGE_SIZE, cursor=request.query.get("cursor") or None
            )
        except ValueError:
            raise web.HTTPSeeOther("/dashboard/webhooks") from None
        deliveries = {m.id: await webhook_store.deliveries_view(session, m.id) for m in found.items}
    return page(
        request,
        "webhooks.html",
        signed=signed,
        active="webhooks",
        endpoints=endpoints,
        urls={e.id: e.url for e in endpoints},
        messages=found.items,
        deliveries=deliveries,
        next_query=urlencode({"cursor": found.next_cursor}) if found.next_cursor else None,
        here=request.path_qs,
    )


async def redeliver(request: web.Request) -> web.StreamResponse:
    signed, form = await _posted(request, "webhooks:manage")
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        try:
            message = await webhook_store.get_message(session, signed.principal.seller_id, request.match_info["id"])
        except NotFoundError as err:
            raise Problem(404, "not-found", "No such message.") from err
        await webhook_store.redeliver(session, message, now=now)
        await session.commit()
    raise _back(form, "/dashboard/webhooks")


async def customs(request: web.Request) -> web.Response:
    signed = await _signed(request)
    seller_id = signed.principal.seller_id
    async with request.app[keys.SESSIONMAKER]() as session:
        rows = await store.awaiting_declarations(session, seller_id)
        numbers = await store.shipment_numbers(session, seller_id, [d.shipment_id or "" for d in rows])
    return page(request, "customs.html", signed=signed, active="customs", rows=rows, numbers=numbers)


# ---------------------------------------------------------------- analytics


def _period(request: web.Request) -> tuple[date, date]:
    today: date = request.app[keys.CLOCK]().astimezone(UTC).date()
    end = _day(request.query.get("to")) or today
    start = _day(request.query.get("from")) or end - timedelta(days=89)
    return (start, end) if start <= end else (end, start)


async def _reports(request: web.Request, signed: Signed) -> tuple[date, date, list[analytics.LaneReport]]:
    start, end = _period(request)
    async with request.app[keys.SESSIONMAKER]() as session:
        reports = await analytics.lane_reports(
            session, signed.principal.seller_id, _midnight(start), _midnight(end) + timedelta(days=1)
        )
    return start, end, reports


def _charts(lang: str, reports: list[analytics.LaneReport]) -> list[Markup]:
    t = i18n.translations(lang).gettext
    labels = [r.lane for r in reports]

    def pct(v: float) -> str:
        return f"{v * 100:.1f} %"

    return [
        charts.bar_chart(
            t("Delivered on time"),
            labels,
            [charts.Series(t("on time"), [r.on_time_rate for r in reports])],
            formatter=pct,
            maximum=1.0,
        ),
        charts.bar_chart(
            t("Transit days"),
            labels,
            [
                charts.Series("p50", [r.transit_p50_days for r in reports]),
                charts.Series("p90", [r.transit_p90_days for r in reports]),
            ],
        ),
        charts.bar_chart(
            t("First scan after registration (hours, median)"),
            labels,
            [charts.Series(t("hours"), [r.first_scan_p50_hours for r in reports])],
        ),
        charts.bar_chart(
            t("Exceptions and returns"),
            labels,
            [
                charts.Series(t("exceptions"), [r.exception_rate for r in reports]),
                charts.Series(t("returns"), [r.return_rate for r in reports]),
            ],
            formatter=pct,
        ),
        charts.bar_chart(
            t("Customs dwell (hours, mean)"),
            labels,
            [charts.Series(t("hours"), [r.customs_mean_hours for r in reports])],
        ),
    ]


async def analytics_page(request: web.Request) -> web.Response:
    signed = await _signed(request)
    start, end, reports = await _reports(request, signed)
    return page(
        request,
        "analytics.html",
        signed=signed,
        active="analytics",
        start=start.isoformat(),
        end=end.isoformat(),
        reports=reports,
        charts=_charts(_lang(request), reports),
        csv_query=urlencode({"from": start.isoformat(), "to": end.isoformat()}),
    )


async def analytics_csv(request: web.Request) -> web.Response:
    signed = await _signed(request)
    start, end, reports = await _reports(request, signed)
    return web.Response(
        text=analytics.to_csv(reports),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="analytics-{start}-{end}.csv"',
            "Cache-Control": "no-store",
        },
    )


# ---------------------------------------------------------------- CSV import


async def import_form(request: web.Request) -> web.Response:
    signed = await _signed(request)
    return page(
        request,
        "import.html",
        signed=signed,
        active="import",
        mappings=["auto", *importer.MAPPINGS],
        report=None,
        file_error=None,
    )


async def _read_upload(request: web.Request) -> tuple[dict[str, str], bytes]:
    """The form fields and the file, read from the stream so large files pass the body limit."""
    fields: dict[str, str] = {}
    data = b""
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file":
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk():
                size += len(chunk)
                if size > MAX_UPLOAD:
                    raise Problem(413, "too-large", "The file is larger than 20 MB; use `tracker import`.")
                chunks.append(chunk)
            data = b"".join(chunks)
        elif part.name:
            fields[part.name] = (await part.text())[:200]
    return fields, data


async def import_upload(request: web.Request) -> web.Response:
    signed = await _signed(request)
    if not request.content_type.startswith("multipart/"):
        raise Problem(403, "csrf", "The form expired; reload the page and try again.")
    fields, data = await _read_upload(request)
    check_csrf(signed, fields.get("csrf", ""))
    if not signed.principal.has("shipments:write"):
        raise Problem(
            403, "insufficient-scope", "This API key lacks the scope shipments:write.", required_scope="shipments:write"
        )
    mapping = fields.get("mapping", "auto")
    skip_invalid = fields.get("skip_invalid") == "1"
    ctx: dict[str, Any] = {"mappings": ["auto", *importer.MAPPINGS], "report": None, "file_error": None}
    try:
        report = await importer.import_text(
            request.app[keys.SESSIONMAKER],
            signed.principal.seller_id,
            importer.decode(data),
            now=request.app[keys.CLOCK](),
            public_url=request.app[keys.SETTINGS].server.public_url,
            skip_invalid=skip_invalid,
            mapping=mapping if mapping in importer.MAPPINGS else "auto",
        )
    except importer.ImportFileError as err:
        return page(
            request, "import.html", status=422, signed=signed, active="import", **{**ctx, "file_error": str(err)}
        )
    return page(
        request,
        "import.html",
        status=200 if report.committed else 422,
        signed=signed,
        active="import",
        **{**ctx, "report": report},
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/dashboard", index)
    r.add_get("/dashboard/login", login_form)
    r.add_post("/dashboard/login", login)
    r.add_post("/dashboard/logout", logout)
    r.add_get("/dashboard/shipments", shipments)
    r.add_get("/dashboard/shipments/{id}", shipment)
    r.add_get("/dashboard/alerts", alerts)
    r.add_post("/dashboard/alerts/{id}/acknowledge", acknowledge)
    r.add_post("/dashboard/alerts/{id}/resolve", resolve)
    r.add_get("/dashboard/webhooks", webhooks)
    r.add_post("/dashboard/webhooks/messages/{id}/redeliver", redeliver)
    r.add_get("/dashboard/customs", customs)
    r.add_get("/dashboard/analytics", analytics_page)
    r.add_get("/dashboard/analytics.csv", analytics_csv)
    r.add_get("/dashboard/import", import_form)
    r.add_post("/dashboard/import", import_upload)
