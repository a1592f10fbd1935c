"""The JSON log lines: the access log's direct path gives the very line a record would,
lines gathered per turn of the event loop keep their order and are never left behind."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from tracker import logs

FIELDS = {
    "request_id": "4151234567890abc",
    "method": "GET",
    "route": "/t/{token}",
    "status": 200,
    "duration_ms": 0.12,
    "seller_id": None,
    "key_prefix": None,
}
TS = re.compile(r'"ts":"[^"]+"')


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Our handler as the access log's only one: the log stops propagating (pytest's own
    handlers sit on the root) and `alone()` sets aside those pytest adds to such loggers."""
    out = io.StringIO()
    handler = logs.JsonLinesHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    log = logs.access_log
    saved = (log.propagate, log.level)
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        yield out
    finally:
        log.removeHandler(handler)
        log.propagate, log.level = saved
        handler.close()


@contextmanager
def alone() -> Iterator[logs.JsonLinesHandler]:
    log = logs.access_log
    ours = [h for h in log.handlers if isinstance(h, logs.JsonLinesHandler)]
    saved = list(log.handlers)
    log.handlers[:] = ours
    try:
        yield ours[0]
    finally:
        log.handlers[:] = saved


def test_timestamp_is_datetime_isoformat_to_the_millisecond() -> None:
    r = random.Random(7)
    moments = [r.uniform(0, 4e9) for _ in range(20_000)]
    # the rounding edges: half a microsecond either side, the carry into the next second
    moments += [1.7e9 + k / 1e6 + d for k in range(0, 1_000_000, 9973) for d in (0, 4.9e-7, 5e-7, 5.1e-7)]
    moments += [1799999999.9999995, 1799999999.9999996, 1e9 + 0.0005, 0.0, -1.5, -4e-7]
    for moment in moments:
        assert logs.timestamp(moment) == datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def test_direct_line_is_the_line_the_record_gives(stream: io.StringIO) -> None:
    async def log() -> None:
        logs.log_access(FIELDS)

    with alone():
        assert logs._sole_json_handler(logs.access_log) is not None
        asyncio.run(log())
    direct = stream.getvalue().splitlines()
    formatted = logs.JsonFormatter().format(logs._access_record(FIELDS))
    assert len(direct) == 1
    assert TS.sub("", direct[0]) == TS.sub("", formatted)
    assert json.loads(direct[0])["request_id"] == "4151234567890abc"


def test_lines_are_written_once_per_loop_turn_in_order(stream: io.StringIO) -> None:
    other = logging.getLogger("tracker.access.test")

    async def run() -> None:
        logs.log_access({**FIELDS, "request_id": "a" * 16})
        logs.log_access({**FIELDS, "request_id": "b" * 16})
        assert stream.getvalue() == ""
        await asyncio.sleep(0)
        assert [json.loads(x)["request_id"] for x in stream.getvalue().splitlines()] == ["a" * 16, "b" * 16]
        logs.log_access({**FIELDS, "request_id": "c" * 16})
        # any other record writes what is pending first
        other.warning("after c")

    with alone():
        asyncio.run(run())
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert [x.get("request_id", x["msg"]) for x in lines] == ["a" * 16, "b" * 16, "c" * 16, "after c"]


def test_nothing_is_left_behind_when_the_loop_stops(stream: io.StringIO) -> None:
    loop = asyncio.new_event_loop()

    def log_and_stop() -> None:
        logs.log_access(FIELDS)
        loop.stop()  # the loop ends before the turn that would write the line

    with alone() as handler:
        try:
            loop.call_soon(log_and_stop)
            loop.run_forever()
        finally:
            loop.close()
        assert stream.getvalue() == ""
        handler.flush()  # what logging.shutdown() does for every handler at exit
        assert len(stream.getvalue().splitlines()) == 1
        logs.log_access(FIELDS)  # no loop running: written at once
        assert len(stream.getvalue().splitlines()) == 2


def test_close_writes_pending_lines() -> None:
    out = io.StringIO()
    handler = logs.JsonLinesHandler(out)

    async def queue() -> None:
        handler.add_line("{}", asyncio.get_running_loop())
        handler.close()

    asyncio.run(queue())
    assert out.getvalue() == "{}\n"


def test_other_listeners_still_get_records(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=logs.access_log.name)

    async def log() -> None:
        logs.log_access(FIELDS)

    asyncio.run(log())
    records = [r for r in caplog.records if r.name == logs.access_log.name]
    assert len(records) == 1
    assert records[0].getMessage() == "request"
    assert {k: getattr(records[0], k) for k in FIELDS} == FIELDS


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.addFilter(lambda r: True),
        lambda h: h.setFormatter(logging.Formatter()),
        lambda h: logs.access_log.addHandler(logging.NullHandler()),
        lambda h: logs.access_log.addFilter(lambda r: True),
        lambda h: setattr(logs.access_log, "propagate", True),
    ],
)
def test_records_are_made_when_anything_else_could_see_them(
    stream: io.StringIO, change: Callable[[logs.JsonLinesHandler], object]
) -> None:
    with alone() as handler:
        assert logs._sole_json_handler(logs.access_log) is handler
        change(handler)
        assert logs._sole_json_handler(logs.access_log) is None
        logs.access_log.filters.clear()
        logs.access_log.propagate = False


def test_a_handler_above_info_is_skipped(stream: io.StringIO) -> None:
    with alone() as handler:
        logs.access_log.addHandler(logging.NullHandler(logging.WARNING))
        assert logs._sole_json_handler(logs.access_log) is handler


def test_values_orjson_refuses_still_make_json() -> None:
    record = logging.makeLogRecord(
        {"msg": "m", "levelname": "INFO", "name": "t", "big": 2**70, "mapping": {1: "a"}, "when": datetime(2026, 1, 2)}
    )
    out = json.loads(logs.JsonFormatter().format(record))
    assert out["big"] == 2**70
    assert out["mapping"] == {"1": "a"}
    assert out["when"] == "2026-01-02 00:00:00"
