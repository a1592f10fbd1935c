"""POST /api/carriers/17track/push: 17TRACK webhooks, verified by their signature.

No API key: 17TRACK signs each push with SHA-256 of "<raw body>/<secret>" in the `sign`
header. A verified TRACKING_UPDATED / TRACKING_STOPPED push goes through the same
persistence path as a poll, for every seller's shipment with that number.
"""

from __future__ import annotations

from aiohttp import web

from carriers.base import BadResponse
from carriers.track17 import CODE, parse_push, verify_push_signature
from tracker import keys
from tracker.polling import POLLER
from tracker.web import openapi
from tracker.web.problems import Problem

PATH = "/api/carriers/17track/push"


async def push_17track(request: web.Request) -> web.Response:
    body = await request.read()
    config = request.app[keys.SETTINGS].carriers.get(CODE)
    secret = config.webhook_secret if config is not None else ""
    if not verify_push_signature(body, request.headers.get("sign", ""), secret):
        raise Problem(401, "bad-signature", "The push signature does not verify.")
    try:
        results = parse_push(body)
    except BadResponse as err:
        raise Problem(400, "bad-push", "The push body is not a 17TRACK tracking push.") from err
    readable = [r for r in results if r.error is None and r.found]
    updated = await request.app[POLLER].ingest(CODE, readable)
    return web.json_response({"received": len(results), "updated": updated})


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, push_17track)


openapi.document(
    "post",
    PATH,
    {
        "summary": "Receive a 17TRACK push (TRACKING_UPDATED, TRACKING_STOPPED)",
        "description": (
            "Called by 17TRACK, not by sellers: no API key. The `sign` header must be the hex "
            "SHA-256 of the raw body, a slash and the webhook secret "
            "(`[carriers.17track] webhook_secret`). Updates every seller's shipment with the "
            "pushed tracking number, exactly as a poll would."
        ),
        "tags": ["carriers"],
        "parameters": [{"name": "sign", "in": "header", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
        "responses": {
            "200": openapi.ok("CarrierPushResult"),
            **openapi.problems(400, 401, 413),
        },
    },
    schemas={
        "CarrierPushResult": {
            "type": "object",
            "required": ["received", "updated"],
            "properties": {"received": {"type": "integer"}, "updated": {"type": "integer"}},
        }
    },
)
