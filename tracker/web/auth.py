"""Bearer API keys for /v1: authenticate once per request, then check scopes per route."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlalchemy import update
from sqlmodel import col

from tracker import keys
from tracker.db import writing
from tracker.models import ApiKey
from tracker.store import sellers as seller_store
from tracker.store.sellers import Principal
from tracker.web.problems import Handler, Problem

ACT_AS_HEADER = "Tracker-Seller"
_LAST_USED_GRANULARITY = timedelta(minutes=5)


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "unauthorized", detail, headers={"WWW-Authenticate": 'Bearer realm="cbec-tracker"'})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/"):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    sm = request.app[keys.SESSIONMAKER]
    now = request.app[keys.CLOCK]()
    async with sm() as session:
        row = await seller_store.authenticate(session, token.strip())
        if row is None:
            raise _unauthorized("The API key is unknown or revoked.")
        seller_id = row.seller_id
        act_as = request.headers.get(ACT_AS_HEADER)
        if act_as and act_as != row.seller_id:
            if not await seller_store.can_act_for(session, row.seller_id, act_as):
                # the same answer as for a merchant that does not exist
                raise Problem(404, "not-found", "No such seller under this key.")
            seller_id = act_as
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_GRANULARITY:
        # its own short write, so authentication never holds a write lock
        async with writing(sm) as session:
            await session.exec(update(ApiKey).where(col(ApiKey.id) == row.id).values(last_used_at=now))
            await session.commit()
    request[keys.PRINCIPAL] = Principal(
        key_id=row.id,
        key_prefix=row.prefix,
        key_seller_id=row.seller_id,
        seller_id=seller_id,
        scopes=frozenset(s for s in row.scopes.split(",") if s),
    )
    return await handler(request)


def require(request: web.Request, scope: str) -> Principal:
    principal: Principal | None = request.get(keys.PRINCIPAL)
    if principal is None:
        raise _unauthorized("Authentication required.")
    if not principal.has(scope):
        raise Problem(403, "insufficient-scope", f"This API key lacks the scope {scope}.", required_scope=scope)
    return principal
