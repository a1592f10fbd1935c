"""Public tracking pages: /t/{token}, /track and /api/public/track/{token} (DESIGN §9).

Privacy: nothing personal leaves here. The view is built from an explicit allow-list of
fields, carrier texts are scrubbed of the customer's own details, and a number lookup
answers the same for an unknown number as for a wrong postcode or email.

Speed: the rendered body is cached per (token, language, kind) under its ETag, with the
response headers it is served with, and the ETag is re-derived from the database at most
every `ttl` seconds (one indexed query), so a page is at most that stale (ten seconds by
default) while repeat views cost no query and no rendering. A miss reads the page with one
query and renders it once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime as http_date
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web
from markupsafe import Markup
from multidict import CIMultiDict

import carriers
from carriers.status import CUSTOMS
from tracker import i18n, keys
from tracker.db import write_transaction
from tracker.store import public as store
from tracker.store import sellers as seller_store
from tracker.store.outbox import enqueue
from tracker.web import openapi
from tracker.web.problems import Problem, problem_response
from tracker.web.ratelimit_http import Limiters, PublicLimits, client_ip

HERE = Path(__file__).parent
_CSS = (HERE / "static" / "page.css").read_text(encoding="utf-8").strip()
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_EMAIL = re.compile(r"^[^@\s<>\"'(),;:]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
DEFAULT_BRAND = "#1f4fa3"
DEFAULT_TTL = 10.0
CACHE_ENTRIES = 5_000
HTML = "text/html"


def _fingerprint_of_sources() -> str:
    """Changes whenever a template, the CSS or a catalog changes, so a deploy busts ETags."""
    digest = hashlib.sha256()
    files = sorted((HERE / "templates").glob("*.html")) + sorted(i18n.LOCALES_DIR.glob("*/LC_MESSAGES/*.po"))
    for path in files:
        digest.update(path.read_bytes())
    digest.update(_CSS.encode())
    return digest.hexdigest()[:16]


SOURCE_VERSION = _fingerprint_of_sources()


# ---------------------------------------------------------------- branding and safety


def _luminance(hex_color: str) -> float:
    h = hex_color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = []
    for i in (0, 2, 4):
        c = int(h[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def brand_colors(value: str | None) -> tuple[str, str]:
    """The seller's colour when it is a plain hex colour (nothing else can reach the CSS),
    and the text colour (black or white) that contrasts most with it."""
    color = value if value and _HEX.match(value) else DEFAULT_BRAND
    lum = _luminance(color)
    on = "#000000" if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else "#ffffff"
    return color.lower(), on


def safe_url(value: str | None, *, schemes: tuple[str, ...] = ("https", "http")) -> str | None:
    if not value:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in schemes or not parts.netloc:
        return None
    return value.strip()


def _sensitive(shipment: store.PageShipment) -> list[re.Pattern[str]]:
    """The customer's own details, as they might appear inside carrier texts."""
    values = [
        shipment.customer_name,
        shipment.customer_email,
        shipment.dest_address,
        shipment.signed_by,
        shipment.dest_postcode,
    ]
    words: list[str] = []
    for name in (shipment.customer_name, shipment.signed_by):
        words.extend(w for w in (name or "").split() if len(w) >= 3)
    patterns = [re.compile(re.escape(v.strip()), re.IGNORECASE) for v in values if v and len(v.strip()) >= 3]
    patterns += [re.compile(rf"\b{re.escape(w)}\b", re.IGNORECASE) for w in words]
    digits = re.sub(r"\D", "", shipment.customer_phone or "")
    if len(digits) >= 7:
        patterns.append(re.compile(r"[\s\-().]*".join(digits[-7:])))
    return patterns


def scrub(text: str, patterns: Iterable[re.Pattern[str]]) -> str:
    for pattern in patterns:
        text = pattern.sub("***", text)
    return text


# ---------------------------------------------------------------- the view (JSON = page)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _carrier(code: str | None, number: str) -> dict[str, Any]:
    if not code:
        return {"code": None, "name": None, "url": None}
    try:
        cls = carriers.adapter_class(code)
    except KeyError:
        return {"code": code, "name": code, "url": None}
    template = cls.public_url_template
    url = template.format(number=quote(number, safe="")) if template else None
    return {"code": code, "name": cls.name, "url": url}


def _milestones(lang: str, shipment: store.PageShipment, events: tuple[store.PageEvent, ...]) -> list[dict[str, str]]:
    statuses = {shipment.status} | {e.status for e in events}
    subs = {shipment.sub_status} | {e.sub_status for e in events}
    reached = {
        "info_received": bool(events) or shipment.status != "pending",
        "in_transit": bool(
            statuses
            & {
                "in_transit",
                "out_for_delivery",
                "available_for_pickup",
                "failed_attempt",
                "delivered",
                "exception",
                "returned",
            }
        ),
        "customs": bool(subs & ({s.value for s in CUSTOMS} | {"customs_released"})),
        "out_for_delivery": bool(
            statuses & {"out_for_delivery", "available_for_pickup", "failed_attempt", "delivered"}
        ),
        "delivered": shipment.status == "delivered",
    }
    keys_ = [key for key, _ in i18n.MILESTONES]
    last = max((i for i, k in enumerate(keys_) if reached[k]), default=-1)
    t = i18n.translations(lang).gettext
    words = {state: t(message) for state, message in i18n.MILESTONE_STATE.items()}
    out = []
    for i, (key, label) in enumerate(i18n.MILESTONES):
        state = "done" if i < last or shipment.status == "delivered" else "current" if i == last else "todo"
        out.append({"key": key, "label": t(label), "state": state, "state_text": words[state]})
    return out


def _place(lang: str, e: store.PageEvent) -> str:
    parts = [p for p in (e.city, e.region if e.region != e.city else None) if p]
    if e.country:
        parts.append(i18n.country_name(lang, e.country))
    return ", ".join(parts)


def _event(lang: str, e: store.PageEvent, patterns: list[re.Pattern[str]]) -> dict[str, Any]:
    moment, zone = i18n.wall_clock(e.occurred_at, e.local_time, e.utc_offset_minutes)
    text = i18n.sub_status_text(lang, e.sub_status) or i18n.status_text(lang, e.status)
    description = scrub(e.description, patterns).strip()
    return {
        "occurred_at": e.occurred_at.astimezone(UTC).isoformat(),
        "local_time": moment.isoformat() if zone is not None else moment.replace(tzinfo=None).isoformat(),
        "utc_offset_minutes": e.utc_offset_minutes,
        "when": i18n.format_event_time(lang, e.occurred_at, e.local_time, e.utc_offset_minutes),
        "status": e.status,
        "sub_status": e.sub_status,
        "text": text,
        "description": description if description.casefold() != text.casefold() else "",
        "place": _place(lang, e),
        "location": {
            "city": e.city,
            "region": e.region,
            "country": e.country,
            "country_name": i18n.country_name(lang, e.country) or None,
        },
    }


def _country(lang: str, code: str | None) -> dict[str, str] | None:
    return {"code": code.upper(), "name": i18n.country_name(lang, code)} if code else None


def _related(related: store.Related | None) -> dict[str, str] | None:
    return {"tracking_number": related.tracking_number, "url": f"/t/{related.token}"} if related else None


def _seller(seller: store.PageSeller) -> dict[str, Any]:
    color, _ = brand_colors(seller.brand_color)
    email = seller.support_email if seller.support_email and _EMAIL.match(seller.support_email) else None
    return {
        "name": seller.name,
        "logo_url": safe_url(seller.logo_url, schemes=("https",)),
        "brand_color": color,
        "support_url": safe_url(seller.support_url),
        "support_email": email,
    }


def build_view(lang: str, state: store.PageState) -> dict[str, Any]:
    """What the page shows and the JSON returns: an allow-list, never the whole row."""
    s, events = state.shipment, state.events
    patterns = _sensitive(s)
    eta_start = s.eta_latest if s.status != "delivered" else None
    eta_end = s.eta_latest_end if eta_start and s.eta_latest_end else None
    if eta_start and eta_end and eta_end.astimezone(UTC).date() <= eta_start.astimezone(UTC).date():
        eta_end = None
    delivered_at = s.delivered_at or (s.last_event_at if s.status == "delivered" else None)
    return {
        "lang": lang,
        "tracking_number": s.tracking_number,
        "status": s.status,
        "sub_status": s.sub_status,
        "status_text": i18n.status_text(lang, s.status),
        "sub_status_text": i18n.sub_status_text(lang, s.sub_status),
        "eta": {
            "start": eta_start.astimezone(UTC).date().isoformat() if eta_start else None,
            "end": eta_end.astimezone(UTC).date().isoformat() if eta_end else None,
            "start_text": i18n.format_day(lang, eta_start) if eta_start else None,
            "end_text": i18n.format_day(lang, eta_end) if eta_end else None,
        },
        "delivered_at": _iso(delivered_at) if s.status == "delivered" else None,
        "delivered_on": i18n.format_day(lang, delivered_at) if s.status == "delivered" and delivered_at else None,
        "milestones": _milestones(lang, s, events),
        "carrier": _carrier(s.carrier, s.tracking_number),
        "origin_country": _country(lang, s.origin_country),
        "destination_country": _country(lang, s.dest_country),
        "events": [_event(lang, e, patterns) for e in reversed(events)],
        "seller": _seller(state.seller),
        "replaced_by": _related(state.replaced_by),
        "replaces": _related(state.replaces),
        "received_confirmed_at": _iso(s.received_confirmed_at),
        "received_confirmed_on": i18n.format_day(lang, s.received_confirmed_at) if s.received_confirmed_at else None,
    }


# ---------------------------------------------------------------- rendering


@lru_cache(maxsize=len(i18n.LANGUAGES))
def _environment(lang: str) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def _style(brand: str | None) -> str:
    color, on = brand_colors(brand)
    return f":root{{--brand:{color};--on-brand:{on};--brand-strong:{color};--on-brand-strong:{on}}}\n{_CSS}"


@lru_cache(maxsize=256)
def _style_and_csp(brand: str | None) -> tuple[Markup, str]:
    """The inline style and the Content-Security-Policy that allows it by its hash."""
    style = _style(brand)
    style_hash = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    csp = (
        f"default-src 'none'; style-src 'sha256-{style_hash}'; img-src 'self' https: data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return Markup(style), csp  # noqa: S704


_LANGUAGE_ITEMS = list(i18n.LANGUAGES.items())


def render(template: str, lang: str, self_path: str, *, brand: str | None = None, **context: Any) -> tuple[str, str]:
    """The HTML and its Content-Security-Policy (the inline style is allowed by its hash)."""
    style, csp = _style_and_csp(brand)
    html = (
        _environment(lang)
        .get_template(template)
        .render(
            lang=lang,
            languages=_LANGUAGE_ITEMS,
            self_path=self_path,
            style=style,
            **context,
        )
    )
    return html, csp


def _html_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }


# ---------------------------------------------------------------- cache and conditional requests


_VARY = "Accept-Language, Cookie"


@dataclass(slots=True)
class Entry:
    etag: str
    last_modified: datetime
    body: bytes
    #: what the 304 carries, built once per rendering (a response copies a multidict fast)
    headers: CIMultiDict[str]
    #: what the 200 carries: the same, then its Content-Type
    ok_headers: CIMultiDict[str]
    fresh_until: datetime

    @classmethod
    def create(
        cls, etag: str, last_modified: datetime, body: bytes, csp: str, content_type: str, fresh_until: datetime
    ) -> Entry:
        headers = CIMultiDict(
            {
                "ETag": etag,
                "Last-Modified": http_date(last_modified, usegmt=True),
                "Cache-Control": "private, no-cache",
            }
        )
        if csp:
            headers.update(_html_headers(csp))
        headers["Vary"] = _VARY
        ok_headers = headers.copy()
        ok_headers["Content-Type"] = f"{content_type}; charset=utf-8"
        return cls(etag, last_modified, body, headers, ok_headers, fresh_until)


class PublicPages:
    """Per-process state of the public pages: rate limiters and the rendered-page cache."""

    def __init__(
        self,
        limits: PublicLimits,
        clock: Any,
        ttl: float = DEFAULT_TTL,
        max_entries: int = CACHE_ENTRIES,
        *,
        trust_forwarded_for: bool = False,
    ) -> None:
        self.clock = clock
        self.trust_forwarded_for = trust_forwarded_for
        self.limiters = Limiters.create(limits, clock)
        self.ttl = timedelta(seconds=ttl)
        self.max_entries = max_entries
        self.cache: OrderedDict[tuple[str, str, str], Entry] = OrderedDict()
        self._reader: store.Reader | None = None

    @property
    def reader(self) -> store.Reader:
        if self._reader is None:
            raise RuntimeError("the public pages' reader starts with the app")
        return self._reader

    def set_limits(self, limits: PublicLimits, clock: Any) -> None:
        self.limiters = Limiters.create(limits, clock)

    def get(self, key: tuple[str, str, str]) -> Entry | None:
        entry = self.cache.get(key)
        if entry is not None:
            self.cache.move_to_end(key)
        return entry

    def fresh(self, key: tuple[str, str, str], now: datetime) -> Entry | None:
        """The entry while it needs no re-validation: the usual case, answered without a query."""
        entry = self.cache.get(key)
        if entry is None or now >= entry.fresh_until:
            return None
        self.cache.move_to_end(key)
        return entry

    def client_ip(self, request: web.Request) -> str:
        return client_ip(request, trust_forwarded_for=self.trust_forwarded_for)

    def put(self, key: tuple[str, str, str], entry: Entry) -> None:
        self.cache[key] = entry
        self.cache.move_to_end(key)
        while len(self.cache) > self.max_entries:
            self.cache.popitem(last=False)

    def forget(self, token: str) -> None:
        for key in [k for k in self.cache if k[0] == token]:
            del self.cache[key]


PAGES = web.AppKey("public_pages", PublicPages)


async def reader_ctx(app: web.Application) -> AsyncIterator[None]:
    pages = app[PAGES]
    pages._reader = store.Reader(app[keys.ENGINE])
    yield
    pages._reader.close()
    pages._reader = None


def etag_of(version: store.Version, lang: str, kind: str) -> str:
    """Changes with anything the page shows, with the language and with the code (SOURCE_VERSION)."""
    digest = hashlib.sha256(f"{SOURCE_VERSION}|{kind}|{lang}|{version.fingerprint}".encode())
    return '"' + digest.hexdigest()[:32] + '"'


def not_modified(request: web.Request, etag: str, last_modified: datetime) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or etag in tags
    ims = request.headers.get("If-Modified-Since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            return False
        return last_modified <= since
    return False


# ---------------------------------------------------------------- request helpers


def _pages(request: web.Request) -> PublicPages:
    return request.app[PAGES]


#: browsers send a handful of distinct Accept-Language values; bounded against junk ones
_negotiate = lru_cache(maxsize=1024)(i18n.negotiate)


def _lang(request: web.Request, form_lang: str | None = None) -> str:
    query = form_lang or (request.query.get("lang") if request.query_string else None)
    cookie = request.cookies.get(i18n.COOKIE) if "Cookie" in request.headers else None
    return _negotiate(query, cookie, request.headers.get("Accept-Language"))


def _remember_lang(request: web.Request, response: web.StreamResponse, form_lang: str | None = None) -> None:
    if not form_lang and not request.query_string:
        return
    chosen = i18n.canonical(form_lang or request.query.get("lang"))
    if chosen:
        response.set_cookie(
            i18n.COOKIE, chosen, max_age=365 * 24 * 3600, path="/", samesite="Lax", secure=request.secure
        )


def _vary(response: web.StreamResponse) -> None:
    response.headers["Vary"] = _VARY


def _ip(request: web.Request) -> str:
    return _pages(request).client_ip(request)


def html_page(
    request: web.Request,
    status: int,
    template: str,
    lang: str,
    *,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> web.Response:
    html, csp = render(template, lang, request.path, **context)
    response = web.Response(
        status=status,
        text=html,
        content_type=HTML,
        charset="utf-8",
        headers={**_html_headers(csp), "Cache-Control": "no-store", **(headers or {})},
    )
    _vary(response)
    _remember_lang(request, response)
    return response


def _error_page(
    request: web.Request, status: int, lang: str, heading: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    t = i18n.translations(lang).gettext
    return html_page(request, status, "error.html", lang, heading=t(heading), message=t(message), headers=headers)


def _too_many(request: web.Request, lang: str, wait: int, *, as_json: bool) -> web.Response:
    headers = {"Retry-After": str(wait)}
    if as_json:
        return problem_response(
            429,
            "rate-limited",
            "Too many requests; retry after the given delay.",
            instance=request.path,
            headers=headers,
        )
    return _error_page(request, 429, lang, i18n.TOO_MANY[0], i18n.TOO_MANY[1], headers)


def _not_found(request: web.Request, lang: str, *, as_json: bool) -> web.Response:
    if as_json:
        return problem_response(404, "not-found", "No such tracking link.", instance=request.path)
    return _error_page(request, 404, lang, i18n.NOT_FOUND[0], i18n.NOT_FOUND[1])


# ---------------------------------------------------------------- handlers


async def _current(request: web.Request, pages: PublicPages, key: tuple[str, str, str], now: datetime) -> Entry | None:
    """The current rendering of a page that is not freshly cached: a stale entry is
    re-validated with one small query, the page read and rendered only when it changed or
    is missing."""
    token, lang, kind = key
    entry = pages.get(key)
    if entry is not None:
        if now < entry.fresh_until:
            return entry
        version = await store.version(pages.reader, token)
        if version is None:
            pages.forget(token)
            return None
        if entry.etag == etag_of(version, lang, kind):
            entry.fresh_until = now + pages.ttl
            return entry
    state = await store.page_state(pages.reader, token)
    if state is None:
        return None
    view = build_view(lang, state)
    if kind == "json":
        body, csp = json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode(), ""
        content_type = "application/json"
    else:
        html, csp = render(
            "tracking.html",
            lang,
            f"/t/{token}",
            brand=state.seller.brand_color,
            v=view,
            confirm_path=f"/t/{token}/confirm",
        )
        body, content_type = html.encode(), HTML
    version = state.version
    entry = Entry.create(etag_of(version, lang, kind), version.last_modified, body, csp, content_type, now + pages.ttl)
    pages.put(key, entry)
    return entry


def _conditional(request: web.Request, entry: Entry) -> web.Response:
    if not_modified(request, entry.etag, entry.last_modified):
        response = web.Response(status=304, headers=entry.headers)
    else:
        response = web.Response(status=200, body=entry.body, headers=entry.ok_headers)
    _remember_lang(request, response)
    return response


async def tracking_page(request: web.Request) -> web.Response:
    pages, lang = _pages(request), _lang(request)
    now = pages.clock()
    wait = pages.limiters.pages.hit(pages.client_ip(request), now)
    if wait:
        return _too_many(request, lang, wait, as_json=False)
    key = (request.match_info["token"], lang, "html")
    entry = pages.fresh(key, now) or await _current(request, pages, key, now)
    if entry is None:
        return _not_found(request, lang, as_json=False)
    return _conditional(request, entry)


async def tracking_json(request: web.Request) -> web.Response:
    pages, lang = _pages(request), _lang(request)
    now = pages.clock()
    wait = pages.limiters.pages.hit(pages.client_ip(request), now)
    if wait:
        return _too_many(request, lang, wait, as_json=True)
    key = (request.match_info["token"], lang, "json")
    entry = pages.fresh(key, now) or await _current(request, pages, key, now)
    if entry is None:
        return _not_found(request, lang, as_json=True)
    return _conditional(request, entry)


def _same_origin(request: web.Request) -> bool:
    """A form post from our own page: the browser says so (Sec-Fetch-Site), or its Origin
    (else Referer) is this server's. Anything unverifiable is refused."""
    allowed = {f"{request.scheme}://{request.host}".lower()}
    public = urlsplit(request.app[keys.SETTINGS].server.public_url)
    allowed.add(f"{public.scheme}://{public.netloc}".lower())
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return origin.rstrip("/").lower() in allowed
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        return f"{parts.scheme}://{parts.netloc}".lower() in allowed
    return False


async def _form(request: web.Request) -> Any:
    try:
        return await request.post()
    except (ValueError, AssertionError, KeyError) as err:
        # a malformed body (e.g. multipart without a boundary) is the client's error
        raise Problem(400, "bad-form", "The form body could not be read.") from err


async def confirm_receipt(request: web.Request) -> web.Response:
    form = await _form(request)
    form_lang = str(form.get("lang", "")) or None
    lang = _lang(request, form_lang)
    token = request.match_info["token"]
    wait = _pages(request).limiters.pages.hit(_ip(request))
    if wait:
        return _too_many(request, lang, wait, as_json=False)
    if not _same_origin(request):
        return _error_page(request, 403, lang, i18n.FORBIDDEN[0], i18n.FORBIDDEN[1])
    now = request.app[keys.CLOCK]()
    async with write_transaction(request.app[keys.SESSIONMAKER]) as session:
        if not await store.token_exists(session, token):
            return _not_found(request, lang, as_json=False)
        shipment = await store.confirm_received(session, token, now=now)
        if shipment is not None:
            await enqueue(
                session,
                seller_id=shipment.seller_id,
                event_type="shipment.received_confirmed",
                now=now,
                shipment=shipment,
                data={
                    "id": shipment.id,
                    "tracking_number": shipment.tracking_number,
                    "order_number": shipment.order_number,
                    "received_confirmed_at": now.isoformat(),
                },
            )
            await seller_store.audit(
                session,
                seller_id=shipment.seller_id,
                actor="customer",
                action="shipment.received_confirmed",
                object_type="shipment",
                object_id=shipment.id,
                now=now,
            )
    _pages(request).forget(token)
    response = web.HTTPSeeOther(f"/t/{token}")
    _remember_lang(request, response, form_lang)
    raise response


async def lookup(request: web.Request) -> web.Response:
    if request.method == "POST":
        form = await _form(request)
        fields = {k: str(form.get(k, "")) for k in ("number", "postcode", "email", "lang")}
    else:
        fields = {k: request.query.get(k, "") for k in ("number", "postcode", "email", "lang")}
    lang = _lang(request, fields["lang"] or None)
    number = fields["number"].strip()[:100]
    if not number:
        return html_page(request, 200, "lookup.html", lang, message="")
    t = i18n.translations(lang).gettext
    pages = _pages(request)
    wait = pages.limiters.lookups.hit(_ip(request)) or pages.limiters.numbers.hit(store.normalize_number(number))
    if wait:
        return _too_many(request, lang, wait, as_json=False)
    postcode, email = fields["postcode"].strip()[:32], fields["email"].strip()[:320]
    if not postcode and not email:
        return html_page(request, 200, "lookup.html", lang, message=t(i18n.NEED_FACTOR))
    async with request.app[keys.SESSIONMAKER]() as session:
        token = await store.lookup(session, number, postcode=postcode, email=email)
    if token is None:
        return html_page(request, 404, "lookup.html", lang, message=t(i18n.NO_MATCH))
    response = web.HTTPSeeOther(f"/t/{token}")
    _remember_lang(request, response, fields["lang"] or None)
    raise response


def add_routes(app: web.Application) -> None:
    services = app[keys.SERVICES]
    app[PAGES] = PublicPages(
        services.get("public_limits") or PublicLimits(),
        app[keys.CLOCK],
        ttl=float(services.get("public_page_ttl", DEFAULT_TTL)),
        trust_forwarded_for=app[keys.SETTINGS].server.trust_forwarded_for,
    )
    app.cleanup_ctx.append(reader_ctx)
    app.router.add_get("/t/{token}", tracking_page)
    app.router.add_post("/t/{token}/confirm", confirm_receipt)
    app.router.add_get("/track", lookup)
    app.router.add_post("/track", lookup)
    app.router.add_get("/api/public/track/{token}", tracking_json)
    _document()


# ---------------------------------------------------------------- OpenAPI


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}


_NULL_STR = {"type": ["string", "null"]}
_RELATED = {
    "oneOf": [
        {"type": "null"},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["tracking_number", "url"],
            "properties": {"tracking_number": {"type": "string"}, "url": {"type": "string"}},
        },
    ]
}
_COUNTRY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["code", "name"],
    "properties": {"code": {"type": "string"}, "name": {"type": "string"}},
}
#: additionalProperties false everywhere: a personal field added by mistake fails the tests
SCHEMAS: dict[str, Any] = {
    "PublicTracking": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "lang",
            "tracking_number",
            "status",
            "sub_status",
            "status_text",
            "sub_status_text",
            "eta",
            "delivered_at",
            "delivered_on",
            "milestones",
            "carrier",
            "origin_country",
            "destination_country",
            "events",
            "seller",
            "replaced_by",
            "replaces",
            "received_confirmed_at",
            "received_confirmed_on",
        ],
        "properties": {
            "lang": {"type": "string", "enum": list(i18n.LANGUAGES)},
            "tracking_number": {"type": "string"},
            "status": {"type": "string"},
            "sub_status": {"type": "string"},
            "status_text": {"type": "string"},
            "sub_status_text": {"type": "string"},
            "eta": {
                "type": "object",
                "additionalProperties": False,
                "required": ["start", "end", "start_text", "end_text"],
                "properties": {
                    "start": {"type": ["string", "null"], "format": "date"},
                    "end": {"type": ["string", "null"], "format": "date"},
                    "start_text": _NULL_STR,
                    "end_text": _NULL_STR,
                },
            },
            "delivered_at": {"type": ["string", "null"], "format": "date-time"},
            "delivered_on": _NULL_STR,
            "milestones": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["key", "label", "state", "state_text"],
                    "properties": {
                        "key": {"type": "string", "enum": [k for k, _ in i18n.MILESTONES]},
                        "label": {"type": "string"},
                        "state": {"type": "string", "enum": ["done", "current", "todo"]},
                        "state_text": {"type": "string"},
                    },
                },
            },
            "carrier": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code", "name", "url"],
                "properties": {"code": _NULL_STR, "name": _NULL_STR, "url": _NULL_STR},
            },
            "origin_country": {"oneOf": [{"type": "null"}, _COUNTRY]},
            "destination_country": {"oneOf": [{"type": "null"}, _COUNTRY]},
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [
                        "occurred_at",
                        "local_time",
                        "utc_offset_minutes",
                        "when",
                        "status",
                        "sub_status",
                        "text",
                        "description",
                        "place",
                        "location",
                    ],
                    "properties": {
                        "occurred_at": {"type": "string", "format": "date-time"},
                        "local_time": {"type": "string"},
                        "utc_offset_minutes": {"type": ["integer", "null"]},
                        "when": {"type": "string"},
                        "status": {"type": "string"},
                        "sub_status": {"type": "string"},
                        "text": {"type": "string"},
                        "description": {"type": "string"},
                        "place": {"type": "string"},
                        "location": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["city", "region", "country", "country_name"],
                            "properties": {
                                "city": _NULL_STR,
                                "region": _NULL_STR,
                                "country": _NULL_STR,
                                "country_name": _NULL_STR,
                            },
                        },
                    },
                },
            },
            "seller": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "logo_url", "brand_color", "support_url", "support_email"],
                "properties": {
                    "name": {"type": "string"},
                    "logo_url": _NULL_STR,
                    "brand_color": {"type": "string", "pattern": "^#[0-9a-f]{3,6}$"},
                    "support_url": _NULL_STR,
                    "support_email": _NULL_STR,
                },
            },
            "replaced_by": _RELATED,
            "replaces": _RELATED,
            "received_confirmed_at": {"type": ["string", "null"], "format": "date-time"},
            "received_confirmed_on": _NULL_STR,
        },
    },
}

_LANG_PARAM = openapi.query_param("lang", {"type": "string", "enum": list(i18n.LANGUAGES)})
_CONDITIONAL = [
    {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
    {"name": "If-Modified-Since", "in": "header", "required": False, "schema": {"type": "string"}},
]
_NOT_MODIFIED = {"304": {"description": "Not modified (ETag or Last-Modified matched)"}}
_documented = False


def _document() -> None:
    global _documented
    if _documented:
        return
    _documented = True
    token = openapi.path_param("token")
    openapi.document(
        "get",
        "/t/{token}",
        openapi.operation(
            "Tracking page (HTML) of the shipment behind an unguessable token",
            "public",
            {"200": _html("The page"), **_NOT_MODIFIED, "404": _html("Unknown token"), "429": _html("Rate limited")},
            params=[token, _LANG_PARAM, *_CONDITIONAL],
        ),
    )
    openapi.document(
        "post",
        "/t/{token}/confirm",
        openapi.operation(
            "The customer confirms receipt (same-origin form post); redirects to the page",
            "public",
            {
                "303": {"description": "Recorded (or already recorded); see the page"},
                "403": _html("Not a same-origin form post"),
                "404": _html("Unknown token"),
                "429": _html("Rate limited"),
                **openapi.problems(400),
            },
            params=[token],
        ),
    )
    lookup_params = [openapi.query_param(n, {"type": "string"}) for n in ("number", "postcode", "email")]
    lookup_responses = {
        "200": _html("The lookup form (also when a second factor is missing)"),
        "303": {"description": "Found: redirects to the tracking page"},
        "404": _html("No parcel matches; identical for an unknown number and a wrong postcode or email"),
        "429": _html("Rate limited (per IP and per number)"),
    }
    openapi.document(
        "get",
        "/track",
        openapi.operation(
            "Look up a parcel by tracking or order number plus destination postcode or email",
            "public",
            lookup_responses,
            params=[*lookup_params, _LANG_PARAM],
        ),
    )
    openapi.document(
        "post",
        "/track",
        openapi.operation(
            "The lookup form posted",
            "public",
            lookup_responses,
            body={
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {n: {"type": "string"} for n in ("number", "postcode", "email", "lang")},
                        }
                    }
                },
            },
        ),
    )
    openapi.document(
        "get",
        "/api/public/track/{token}",
        openapi.operation(
            "What the tracking page shows, as JSON (no personal fields)",
            "public",
            {"200": openapi.ok("PublicTracking"), **_NOT_MODIFIED, **openapi.problems(404, 429)},
            params=[token, _LANG_PARAM, *_CONDITIONAL],
        ),
        schemas=SCHEMAS,
    )
