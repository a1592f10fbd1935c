"""RFC 9457 problem details: every error the service answers is one of these."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

REQUEST_ID = web.RequestKey("request_id", str)

log = logging.getLogger("tracker.web")

PROBLEM_TYPE_BASE = "https://cbec-tracker.dev/problems/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Problem(Exception):
    """Raise anywhere below a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str = "",
        *,
        title: str | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or slug)
        self.status = status
        self.slug = slug
        self.title = title or _TITLES.get(status, "Error")
        self.detail = detail
        self.errors = list(errors or [])
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int,
    slug: str,
    detail: str = "",
    *,
    title: str | None = None,
    instance: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    body.update(extra)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/problem+json",
        headers=headers,
    )


def _wants_html(request: web.Request) -> bool:
    return not request.path.startswith(("/v1", "/api", "/openapi", "/metrics", "/healthz", "/readyz"))


_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "body-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
}


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as p:
        return problem_response(
            p.status,
            p.slug,
            p.detail,
            title=p.title,
            instance=request.path,
            errors=p.errors,
            headers=p.headers,
            **p.extra,
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.content_type == "application/problem+json" or (
            exc.status < 500 and _wants_html(request) and exc.content_type == "text/html"
        ):
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        detail = ""
        if exc.status == 413:
            detail = "The request body is larger than this server accepts."
        elif exc.status == 405:
            detail = f"{request.method} is not allowed here."
        elif exc.status == 404:
            detail = "No such resource."
        return problem_response(
            exc.status, _SLUGS.get(exc.status, "error"), detail, instance=request.path, headers=headers
        )
    except Exception:
        # Never leak a stack trace; the request id ties the log line to the answer.
        log.exception("unhandled error", extra={"path": request.path, "request_id": request.get(REQUEST_ID)})
        return problem_response(
            500,
            "internal-error",
            "Something went wrong on our side; the request id is in the logs.",
            instance=request.path,
            request_id=request.get(REQUEST_ID),
        )
