"""JSON responses of the simulated APIs.

Encoded with orjson: the simulator shares the machine with the poller it is measured
against (bench/poll.py), so every microsecond it spends is taken from the figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def json_response(
    data: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type=content_type, charset="utf-8"
    )
