"""Operations endpoints: /healthz, /readyz, /metrics, /openapi.json."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import text

from tracker import keys
from tracker.metrics import CONTENT_TYPE
from tracker.web.openapi import build_spec


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with request.app[keys.ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as err:  # any database failure means "not ready"
        return web.json_response({"status": "unavailable", "database": type(err).__name__}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[keys.METRICS].render()
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE
    return resp


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_spec(request.app[keys.SETTINGS].server.public_url))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
