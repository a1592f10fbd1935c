"""Structured logs: one JSON object per line, one line per request, secrets redacted.

Every request writes a line, so that path is kept short. The formatter works out once per
shape of record which attributes are extra fields and how each is cleaned, reuses the date
and time to the second across lines, and encodes with orjson. When the service's own
handler is the only one an access record would reach, the access line is made straight
from its fields, the very line the record would give, and lines are written once per turn
of the event loop; otherwise a record goes through logging as usual, so any other handler
or filter (a test's log capture, say) sees every record as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import sys
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from aiohttp import web

from tracker import keys
from tracker.web.problems import Handler

_STD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
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


#: how an extra field's value is cleaned
_SECRET, _TRUSTED, _SCANNED = 0, 1, 2


def _treatment(key: str) -> int:
    if key.lower() in _SECRET_KEYS:
        return _SECRET
    return _TRUSTED if key in _TRUSTED_KEYS else _SCANNED


def _cleaned(treatment: int, value: Any) -> Any:
    if treatment == _SECRET:
        return "***"
    if treatment == _SCANNED and isinstance(value, str):
        return redact(value)
    return value


@lru_cache(maxsize=512)
def _extras(names: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """The extra fields among a record's attributes, in order, each with its treatment.
    A call site makes records of one shape, so there are few shapes, each seen often."""
    return tuple((name, _treatment(name)) for name in names if name not in _STD_ATTRS and not name.startswith("_"))


#: the date and time to the second, which a burst of lines shares: (second, "YYYY-MM-DDTHH:MM:SS")
_second: tuple[float, str] = (math.nan, "")
_MILLIS = tuple(f".{ms:03d}+00:00" for ms in range(1000))


def timestamp(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, rounding
    to the microsecond as datetime does (half to even, a carry moving to the next second)."""
    global _second
    fraction, whole = math.modf(created)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        micros -= 1_000_000
        whole += 1.0
    elif micros < 0:
        micros += 1_000_000
        whole -= 1.0
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, datetime.fromtimestamp(whole, UTC).replace(tzinfo=None).isoformat())
    return cached[1] + _MILLIS[micros // 1000]


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
#: for what orjson refuses: integers beyond 64 bits, keys that are not strings, lone surrogates
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))


def _encode(out: dict[str, Any]) -> str:
    try:
        return orjson.dumps(out, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return _ENCODER.encode(out)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        fields = vars(record)
        for key, treatment in _extras(tuple(fields)):
            out[key] = _cleaned(treatment, fields[key])
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return _encode(out)


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The service's own handler: JSON lines on a stream (stderr).

    Access lines made on the event loop are gathered and written together once per turn of
    the loop: one write for all the requests answered in that turn instead of one each. Any
    other record, flush() and close() write them first, so lines keep their order and none
    is left behind (logging flushes every handler at exit)."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def add_line(self, line: str, loop: asyncio.AbstractEventLoop) -> None:
        """Queue a formatted line; `loop` is the running loop of the calling thread."""
        with self.lock:  # type: ignore[union-attr]
            pending = self._pending
            pending.append(line)
            if len(pending) == 1:
                loop.call_soon(self.flush)

    def _write_pending(self) -> None:
        # the caller holds the lock
        if not self._pending:
            return
        lines, self._pending = self._pending, []
        try:
            self.stream.write(self.terminator.join(lines) + self.terminator)
        except Exception:
            self.handleError(logging.makeLogRecord({"name": access_log.name, "msg": f"{len(lines)} access lines"}))

    def emit(self, record: logging.LogRecord) -> None:
        # Handler.handle holds the lock
        self._write_pending()
        super().emit(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()
            super().flush()

    def close(self) -> None:
        self.flush()
        super().close()


def setup_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_tracker", False):
            root.removeHandler(h)
    handler = JsonLinesHandler(sys.stderr)
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
    principal = request.get(keys.PRINCIPAL)
    log_access(
        {
            "request_id": request_id,
            "method": request.method,
            # the route template, never the raw path: paths carry tokens and numbers
            "route": resource.canonical if resource is not None else "unmatched",
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "seller_id": getattr(principal, "seller_id", None),
            "key_prefix": getattr(principal, "key_prefix", None),
        }
    )


_ACCESS_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "seller_id", "key_prefix")
#: the access fields the formatter would clean (the others are trusted, see _TRUSTED_KEYS)
_ACCESS_CLEANED = tuple((key, treatment) for key, treatment in _extras(_ACCESS_FIELDS) if treatment != _TRUSTED)


def log_access(fields: dict[str, Any]) -> None:
    """The access line of a request at INFO (the caller has checked access_log is enabled
    for it), `fields` holding _ACCESS_FIELDS. When our JSON handler is the only one to
    receive it and this runs on an event loop, the line is queued on the handler straight
    away, the same line the record would have given, without making a record nobody else
    would see."""
    handler = _sole_json_handler(access_log)
    loop = _running_loop()
    if handler is None or loop is None:
        # as Logger.info does it, less the search of the stack for the caller: this is the caller
        access_log.handle(_access_record(fields))
        return
    out: dict[str, Any] = {"ts": timestamp(time.time()), "level": "info", "logger": access_log.name, "msg": "request"}
    out.update(fields)
    for key, treatment in _ACCESS_CLEANED:
        out[key] = _cleaned(treatment, out[key])
    handler.add_line(_encode(out), loop)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _access_record(fields: dict[str, Any]) -> logging.LogRecord:
    return access_log.makeRecord(
        access_log.name, logging.INFO, __file__, _LINE, "request", (), None, "log_access", fields
    )


_LINE = log_access.__code__.co_firstlineno


def _sole_json_handler(logger: logging.Logger) -> JsonLinesHandler | None:
    """The handler an INFO record of `logger` would reach when it is the only one, is a
    JsonLinesHandler with the JsonFormatter, and no filter stands in the way; else None.
    Walks the hierarchy as Logger.callHandlers does."""
    if logger.disabled or logger.filters:
        return None
    found: JsonLinesHandler | None = None
    node: logging.Logger | None = logger
    while node is not None:
        for handler in node.handlers:
            if handler.level > logging.INFO:
                continue
            if (
                found is not None
                or type(handler) is not JsonLinesHandler
                or handler.filters
                or type(handler.formatter) is not JsonFormatter
            ):
                return None
            found = handler
        node = node.parent if node.propagate else None
    return found
