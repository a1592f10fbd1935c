"""/unsubscribe/{token}: the link in every customer email.

GET shows a confirmation page (link scanners and prefetchers follow GETs, so a GET never
unsubscribes); POST performs it. Mail clients that honour RFC 8058 POST
`List-Unsubscribe=One-Click` to the same URL, which is the same POST.
"""

from __future__ import annotations

from aiohttp import web

from tracker import keys
from tracker.models import Seller, Shipment
from tracker.notify import opt_out, token_shipment_id, token_valid
from tracker.notify.mailer import environment
from tracker.notify.messages import page_text, pick_language

_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def _page(lang: str, status: int = 200, **context: str) -> web.Response:
    html = environment().get_template("unsubscribe.html.j2").render(lang=lang, **context)
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8", headers=_HEADERS)


async def _find(request: web.Request) -> tuple[Shipment, Seller] | None:
    token = request.match_info["token"]
    shipment_id = token_shipment_id(token)
    if shipment_id is None:
        return None
    async with request.app[keys.SESSIONMAKER]() as session:
        shipment = await session.get(Shipment, shipment_id)
        if shipment is None or not token_valid(token, shipment):
            return None
        seller = await session.get(Seller, shipment.seller_id)
    return (shipment, seller) if seller is not None else None


def _invalid() -> web.Response:
    return _page("en", 404, heading=page_text("en", "heading"), message=page_text("en", "invalid"))


async def confirm(request: web.Request) -> web.Response:
    found = await _find(request)
    if found is None:
        return _invalid()
    shipment, seller = found
    lang = pick_language(shipment.customer_locale)
    if shipment.notify_opt_out:
        return _page(
            lang, heading=page_text(lang, "heading"), message=page_text(lang, "done", number=shipment.tracking_number)
        )
    return _page(
        lang,
        heading=page_text(lang, "heading"),
        message=page_text(lang, "ask", seller=seller.name, number=shipment.tracking_number),
        confirm=page_text(lang, "confirm"),
        action=request.path,
    )


async def perform(request: web.Request) -> web.Response:
    found = await _find(request)
    if found is None:
        return _invalid()
    shipment, _seller = found
    await opt_out(request.app[keys.SESSIONMAKER], shipment.id, now=request.app[keys.CLOCK]())
    lang = pick_language(shipment.customer_locale)
    return _page(
        lang, heading=page_text(lang, "heading"), message=page_text(lang, "done", number=shipment.tracking_number)
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/unsubscribe/{token}", confirm)
    app.router.add_post("/unsubscribe/{token}", perform)
