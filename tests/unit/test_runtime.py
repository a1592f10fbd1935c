"""Process tuning, checked in a fresh interpreter: freezing objects in the test process
itself would keep every later test's garbage cycles alive."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from tracker.runtime import YOUNG_THRESHOLD

SCRIPT = """
import gc, json
import tracker.app  # what a started process has imported
from tracker.runtime import settle_gc

before = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}
frozen = settle_gc()
after = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}

# a cycle made afterwards is still collected: only what existed is frozen
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a
del a, b
collected = gc.collect()
print(json.dumps({"before": before, "returned": frozen, "after": after, "collected": collected}))
"""


def test_settle_gc_freezes_startup_objects_and_collects_young_ones_less_often() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(out.stdout)
    assert report["before"]["frozen"] == 0
    assert report["before"]["threshold"][0] == 700
    # the imports of the web app alone leave tens of thousands of tracked objects
    assert report["returned"] == report["after"]["frozen"] > 20_000
    assert report["after"]["threshold"] == [YOUNG_THRESHOLD, *report["before"]["threshold"][1:]]
    assert report["collected"] >= 2


def test_the_loop_is_uvloop_unless_asyncio_is_asked_for() -> None:
    import uvloop

    from tracker.runtime import loop_factory, loop_name, run

    assert loop_factory() is uvloop.new_event_loop
    assert loop_factory("asyncio") is asyncio.new_event_loop

    async def running() -> str:
        return loop_name(asyncio.get_running_loop())

    assert run(running()) == "uvloop"
    assert run(running(), kind="asyncio") == "asyncio"
