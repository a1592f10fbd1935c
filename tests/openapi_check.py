"""Checks every response the tests receive against /openapi.json (test-only middleware)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from tracker import keys
from tracker.web.openapi import build_spec


class Conformance:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.checked = 0

    def middleware(self) -> Any:
        @web.middleware
        async def check(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                # the problem middleware sits inside this one; anything escaping is a plain HTTP answer
                self._check(request, exc.status, exc.content_type, exc.body)
                raise
            if isinstance(response, web.Response):
                self._check(request, response.status, response.content_type, response.body)
            return response

        return check

    def _check(self, request: web.Request, status: int, content_type: str, body: Any) -> None:
        resource = request.match_info.route.resource
        if resource is None:
            return
        template = resource.canonical
        spec = build_spec(request.app[keys.SETTINGS].server.public_url)
        path_item = spec["paths"].get(template)
        if path_item is None:
            if template.startswith(("/v1", "/api")):
                self.failures.append(f"{request.method} {template}: route not in the OpenAPI document")
            return
        op = path_item.get(request.method.lower())
        if op is None:
            if status != 405:
                self.failures.append(f"{request.method} {template}: method not documented")
            return
        responses = op["responses"]
        spec_resp = (
            responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        )
        if spec_resp is None:
            self.failures.append(f"{request.method} {template}: status {status} not documented")
            return
        self.checked += 1
        content = spec_resp.get("content")
        if not content:
            return
        media = content.get(content_type)
        if media is None:
            self.failures.append(
                f"{request.method} {template} {status}: content type {content_type} not documented"
            )
            return
        if not content_type.endswith("json") or body is None:
            return
        raw = body if isinstance(body, bytes) else getattr(body, "_value", b"")
        try:
            doc = json.loads(raw)
        except ValueError:
            self.failures.append(f"{request.method} {template} {status}: body is not JSON")
            return
        # the response schema, with the components beside it so "#/components/..." refs resolve
        validator = Draft202012Validator({**media["schema"], "components": spec["components"]})
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        for err in errors[:3]:
            self.failures.append(
                f"{request.method} {template} {status}: {'/'.join(map(str, err.path))}: {err.message}"
            )
