"""Where a polling worker's write transactions spend their time (`bench/poll.py --phases`).

The worker's writes are one transaction per run of results (`Poller._apply`), and on SQLite
one at a time: while one holds the write lock, the next claim and the next results wait.
This wraps the steps of that transaction, in the benchmark's worker process only, and adds
up for each: calls, wall time, the event-loop thread's CPU and the other threads' CPU (on
SQLite, the connection's aiosqlite thread) over the step; and the same for the write
transactions as a whole, from BEGIN to the end of the commit. A step's loop CPU counts
whatever the loop ran meanwhile, the other cycle's parsing included; its wall time is how
long the transaction waited for it.

`_apply_one` is timed without the other threads' CPU, which it does not use and which costs
a read of every thread's clock. The wrapping costs a few microseconds a step, so the rate
of a run with --phases is not the benchmark's figure.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import wraps
from typing import Any

#: (owner, attribute, step name), in the order a transaction runs them
STEPS = (
    ("tracker.store.tracking", "lock_leased", "read shipments"),
    ("tracker.store.tracking", "timelines", "read timelines"),
    ("tracker.polling", "Poller._apply_one", "apply results"),
    ("tracker.store.tracking", "update_polled", "write shipments"),
    ("tracker.store.tracking", "insert_events", "insert events"),
    ("tracker.store.tracking", "insert_outbox", "insert outbox"),
)
#: every write transaction of the poller (claims and reschedules too), from BEGIN to the
#: end of the commit; on SQLite one at a time, so their share of the run is how busy the
#: write lock was
WHOLE = ("tracker.polling", "write_transaction", "write transactions")
NAMES = (*(name for _, _, name in STEPS), WHOLE[2])


def _other_threads_cpu() -> float:
    main = threading.main_thread()
    total = 0.0
    for thread in threading.enumerate():
        if thread is not main and thread.ident is not None:
            try:
                total += time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
            except (OSError, ProcessLookupError):
                continue  # a thread that ended between the listing and the read
    return total


class Phases:
    """Totals per step: [calls, wall s, loop CPU s, other threads' CPU s]."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {name: [0, 0.0, 0.0, 0.0] for name in NAMES}

    def install(self) -> None:
        for module_name, attribute, name in STEPS:
            owner: Any = importlib.import_module(module_name)
            *path, last = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            setattr(owner, last, self._timed(getattr(owner, last), name, others=name != "apply results"))
        module_name, attribute, name = WHOLE
        module = importlib.import_module(module_name)
        setattr(module, attribute, self._timed_context(getattr(module, attribute), name))

    def _timed_context(
        self, factory: Callable[..., AbstractAsyncContextManager[Any]], name: str
    ) -> Callable[..., AbstractAsyncContextManager[Any]]:
        totals = self.totals[name]

        @asynccontextmanager
        async def timed(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            start = _reading(others=True)
            try:
                async with factory(*args, **kwargs) as value:
                    yield value
            finally:
                _add(totals, start, others=True)

        return timed

    def _timed(self, step: Callable[..., Awaitable[Any]], name: str, *, others: bool) -> Callable[..., Awaitable[Any]]:
        totals = self.totals[name]

        @wraps(step)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = _reading(others=others)
            try:
                return await step(*args, **kwargs)
            finally:
                _add(totals, start, others=others)

        return timed


def _reading(*, others: bool) -> tuple[float, float, float]:
    """(wall, loop CPU, other threads' CPU) now; the last 0 unless `others`."""
    return time.perf_counter(), time.thread_time(), _other_threads_cpu() if others else 0.0


def _add(totals: list[float], start: tuple[float, float, float], *, others: bool) -> None:
    end = _reading(others=others)
    totals[0] += 1
    for i in range(3):
        totals[i + 1] += end[i] - start[i]


def print_phases(phases: dict[str, list[float]], refreshes: int, seconds: float) -> None:
    """A table of the steps, per refresh, and the share of the run the transactions took."""
    print("  write transactions, per refresh (ms): wall / event-loop CPU / other threads' CPU")
    for name in NAMES:
        calls, wall, loop, other = phases[name]
        others = f"{1000 * other / refreshes:.3f}" if name != "apply results" else "-"
        print(
            f"    {name:<18} {int(calls):>7,} calls  {1000 * wall / refreshes:.3f} / {1000 * loop / refreshes:.3f}"
            f" / {others}"
        )
    whole = phases[WHOLE[2]][1]
    print(
        f"    write transactions took {whole:.1f} s in a {seconds:.1f} s run ({whole / seconds:.0%};"
        " on PostgreSQL several may run at once)"
    )
