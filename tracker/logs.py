"""Structured logs: one JSON object per line, one line per request, secrets redacted."""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tracker import keys
from tracker.web.problems import Handler

_STD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: API keys, webhook secrets, bearer tokens, email addresses and phone-like numbers
_REDACT = [
    (re.compile(r"trk_[0-9a-f]{8}_[A-Za-z0-9_\-]+"), "trk_***"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_***"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"']+"), r"\1***"),
    (re.compile(r"[^@\s\"'<>]+@[^@\s\"'<>]+\.[A-Za-z]{2,}"), "***@***"),
    (re.compile(r"\+?\d[\d \-()]{8,}\d"), "***phone***"),
]
_PHONE = _REDACT[-1][0]
_SECRET_KEYS = {
    "api_key",
    "secret",
    "password",
    "authorization",
    "email",
    "phone",
    "customer_email",
    "customer_phone",
    "customer_name",
    "address",
    "token",
}


def _may_hold_secret(text: str) -> bool:
    """False only when no _REDACT pattern can match: most texts (routes, ids) need no
    substitution, and these substring tests are much cheaper than the patterns."""
    return (
        "@" in text or "trk_" in text or "whsec_" in text or "bearer" in text.lower() or _PHONE.search(text) is not None
    )


def redact(text: str) -> str:
    if not _may_hold_secret(text):
        return text
    for pattern, repl in _REDACT:
        text = pattern.sub(repl, text)
    return text


#: fields we generate ourselves and that hold no personal data; a hex request id can look
#: like a phone number to the patterns above
_TRUSTED_KEYS = {"request_id", "route", "method", "key_prefix", "seller_id", "logger"}


def _clean(key: str, value: Any) -> Any:
    if key.lower() in _SECRET_KEYS:
        return "***"
    if isinstance(value, str) and key not in _TRUSTED_KEYS:
        return redact(value)
    return value


#: one encoder for every line: json.dumps builds a new one per call when given options
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = _clean(key, value)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return _ENCODER.encode(out)


def setup_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_tracker", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._tracker = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


access_log = logging.getLogger("tracker.access")
_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.]{8,64}")


def _new_request_id() -> str:
    # unique enough to find a log line, and not a secret: no system call per request
    return f"{random.getrandbits(64):016x}"


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else _new_request_id()
    request[keys.REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-Id"] = request_id
        raise
    finally:
        # the record is only built when someone listens
        if access_log.isEnabledFor(logging.INFO):
            _log_request(request, request_id, status, started)


def _log_request(request: web.Request, request_id: str, status: int, started: float) -> None:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    principal = request.get(keys.PRINCIPAL)
    access_log.info(
        "request",
        extra={
            "request_id": request_id,
            "method": request.method,
            # the route template, never the raw path: paths carry tokens and numbers
            "route": route,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "seller_id": getattr(principal, "seller_id", None),
            "key_prefix": getattr(principal, "key_prefix", None),
        },
    )
