"""Request bodies -> validated models, or a 400/413/415/422 problem naming the field path."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from tracker.web.problems import Problem

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P")


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "$"


def validation_problem(err: ValidationError, *, prefix: str = "") -> Problem:
    errors = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        path = _path(loc)
        if prefix:
            path = prefix + ("" if path.startswith("[") else ".") + path if path != "$" else prefix
        message = e["msg"]
        if e["type"] == "extra_forbidden":
            message = "unknown field"
        errors.append({"path": path, "message": message, "type": e["type"]})
    first = errors[0]["path"] if errors else "$"
    return Problem(422, "validation-error", f"The request body is not valid (first problem at {first}).", errors=errors)


async def read_json(request: web.Request) -> Any:
    ctype = request.content_type
    if ctype not in ("application/json", "application/merge-patch+json") and not ctype.endswith("+json"):
        raise Problem(415, "unsupported-media-type", "Send the body as application/json.")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as err:
        raise Problem(
            413,
            "body-too-large",
            "The request body is larger than this server accepts.",
            max_bytes=err.max_size if hasattr(err, "max_size") else None,
        ) from err
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        pos = getattr(err, "pos", None)
        raise Problem(400, "malformed-json", f"The body is not valid JSON: {err}", position=pos) from err


async def parse_body(request: web.Request, model: type[M]) -> M:
    data = await read_json(request)
    return validate(model, data)


def validate(model: type[M], data: Any, *, prefix: str = "") -> M:
    if not isinstance(data, dict):
        raise Problem(
            422,
            "validation-error",
            "The body must be a JSON object.",
            errors=[{"path": prefix or "$", "message": "expected an object", "type": "object_type"}],
        )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise validation_problem(err, prefix=prefix) from err


def parse_query(request: web.Request, model: type[M]) -> M:
    """Query parameters -> a validated model, or a 400 naming each bad parameter."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as err:
        problem = validation_problem(err)
        problem.status, problem.slug = 400, "bad-query"
        raise problem from err


class PageQuery(Protocol):
    limit: int
    cursor: str | None

    def model_dump(self, *, exclude: set[str]) -> dict[str, Any]: ...


async def fetch_page(fetch: Callable[..., Awaitable[P]], session: Any, seller_id: str, filters: PageQuery) -> P:
    """Call a store's cursor-paginated list function with the filters of a query model."""
    try:
        return await fetch(
            session,
            seller_id,
            **filters.model_dump(exclude={"limit", "cursor"}),
            limit=filters.limit,
            cursor=filters.cursor,
        )
    except ValueError as err:
        raise Problem(
            400,
            "bad-query",
            "The cursor is not valid.",
            errors=[{"path": "cursor", "message": "invalid cursor", "type": "cursor"}],
        ) from err
