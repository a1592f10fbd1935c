"""How a long-running process runs: its event loop, and the collector tuning applied once
it has started up.

uvloop (libuv, in C) runs the loop where it is installed: in `bench/poll.py` a polling
worker spent 5% less CPU a refresh and refreshed 8% faster than on asyncio's own loop
(alternating runs, 20,000 shipments, SQLite). `[server] event_loop = "asyncio"` turns it off.

CPython's cyclic garbage collector runs a young-generation pass every 700 net container
allocations and, every hundred passes, a full pass over every tracked object, the tens of
thousands that imports and start-up created included. A poll allocates thousands of
short-lived dicts and lists per claim (decoded carrier bodies, event rows, payloads), so
with the defaults the collector took about 9% of a polling worker's CPU, and almost all of
it rescanned objects that live as long as the process (`bench/poll.py`, 30,000 refreshes:
3.1 s of collection with the defaults, 0.4 s with these settings, same peak RSS).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

log = logging.getLogger("tracker.runtime")

T = TypeVar("T")
LoopKind = Literal["uvloop", "asyncio"]


def loop_factory(kind: LoopKind = "uvloop") -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes the event loop: uvloop's, unless `kind` says asyncio or uvloop is not
    installed (it is not built for Windows)."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not installed: running on asyncio's own event loop")
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """ "uvloop" or "asyncio", for the start-up log."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T], *, kind: LoopKind = "uvloop") -> T:
    """`asyncio.run` on the loop `loop_factory(kind)` makes."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)


#: net container allocations between young-generation passes (CPython's default: 700).
#: Young garbage held this long is a few megabytes at most.
YOUNG_THRESHOLD = 50_000


def settle_gc() -> int:
    """Collect once, then move every surviving object out of the collector's sight
    (`gc.freeze`) and collect young objects less often. Returns the number frozen.

    Frozen objects are still freed when their reference count drops; only the cyclic
    collector stops scanning them. Call it after start-up, not in a test process.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    frozen = gc.get_freeze_count()
    log.info("startup objects frozen", extra={"objects": frozen, "young_threshold": YOUNG_THRESHOLD})
    return frozen


async def settle_gc_on_startup(_app: Any) -> None:
    """`settle_gc` as an aiohttp `on_startup` hook, after the resources are built."""
    settle_gc()
