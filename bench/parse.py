"""Events normalized per second by each adapter's `parse`, on the public sample bodies.

In the same run, the DHL sample `shipments_openapi_example_express.json` is also parsed by
karrio's DHL Universal tracking parser (packages `karrio`, `karrio.dhl_universal`) as the
baseline for our DHL figure. Both sides start from the raw body (JSON decoding included)
and are timed in alternating windows, several rounds each; figures are the medians, so a
burst of load on a shared machine hits both sides alike. The adapters keep small caches
keyed by place names and event texts (never by timestamps or bodies); parsing one body
over and over keeps them warm, as polling the same depots does. Writes bench/out/parse.json.

    .venv/bin/python bench/parse.py [--quick]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from carriers import ADAPTERS, BadResponse, get_adapter

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("TRACKER_SHARED_DIR", ROOT.parent / "shared")) / "carrier-samples"
OUT = ROOT / "bench" / "out" / "parse.json"
DHL_SAMPLE = "shipments_openapi_example_express.json"


def measure(fn: Callable[[], int], seconds: float) -> tuple[float, int]:
    """Run `fn` (returning events parsed) repeatedly for about `seconds`: events/s and runs."""
    fn()  # warm caches and imports outside the timed loop
    events = runs = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        events += fn()
        runs += 1
        now = time.perf_counter()
        if now >= deadline:
            return events / (now - start), runs


def median_rate(fn: Callable[[], int], seconds: float, rounds: int) -> tuple[float, int]:
    """The median events/s over `rounds` windows of `seconds`, and the total runs."""
    rates, runs = [], 0
    for _ in range(rounds):
        rate, n = measure(fn, seconds)
        rates.append(rate)
        runs += n
    return statistics.median(rates), runs


def adapter_parser(code: str) -> Callable[[], int] | None:
    """A closure parsing every sample of `code` once, or None if nothing parses."""
    try:
        importlib.import_module(ADAPTERS[code].partition(":")[0])
    except ImportError:
        print(f"{code:<11} skipped: adapter module missing")
        return None
    adapter = get_adapter(code)
    bodies = []
    for path in sorted((SAMPLES / code).glob("*.json")):
        body = path.read_bytes()
        try:
            if sum(len(r.events) for r in adapter.parse(body)):
                bodies.append(body)
        except BadResponse:
            continue
    if not bodies:
        print(f"{code:<11} skipped: {why_no_events(adapter, code)}")
        return None

    def run() -> int:
        return sum(len(r.events) for body in bodies for r in adapter.parse(body))

    return run


def why_no_events(adapter: Any, code: str) -> str:
    """Why no sample of `code` yields events through `parse`: pushes it reads another way, or none."""
    read_push: Callable[[bytes], list[Any]] | None = getattr(adapter, "parse_push", None)
    if read_push is None:
        return "no sample yields events"
    pushed = 0
    for path in sorted((SAMPLES / code).glob("*.json")):
        try:
            pushed += sum(len(r.events) for r in read_push(path.read_bytes()))
        except BadResponse:
            continue
    if not pushed:
        return "no sample yields events"
    return f"its samples are webhook pushes ({pushed} event(s) through parse_push), not replies for parse"


def karrio_parser(body: bytes) -> tuple[Callable[[], int] | None, str]:
    """karrio's DHL Universal parser on `body`, or None and the reason it is unavailable."""
    try:
        from karrio.core.utils import DP, Deserializable
        from karrio.mappers.dhl_universal.settings import Settings
        from karrio.providers.dhl_universal.tracking import parse_tracking_response
    except ImportError as err:
        return None, f"karrio not importable: {err}"
    # karrio logs through loguru and stdlib logging; silence both so parsing is what is timed
    logging.disable(logging.CRITICAL)
    try:
        from loguru import logger

        logger.remove()
    except ImportError:
        pass
    settings = Settings(consumer_key="bench", consumer_secret="bench")
    text = body.decode()

    def run() -> int:
        response = Deserializable([text], lambda res: [DP.to_dict(r) for r in res])
        details, _messages = parse_tracking_response(response, settings)
        return sum(len(d.events or []) for d in details)

    return run, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter timing windows (< 1 minute)")
    args = parser.parse_args(argv)
    # the same measurement either way; --quick only shortens the windows
    window, rounds = (0.3, 5) if args.quick else (1.0, 7)
    figures: list[dict[str, Any]] = []

    for code in ADAPTERS:
        run = adapter_parser(code)
        if run is None:
            continue
        rate, runs = median_rate(run, window, rounds)
        print(f"{code:<11} {rate:>12,.0f} events/s  (median of {rounds}; {runs} passes over its samples)")
        figures.append({"metric": f"parse_events_per_s.{code}", "value": round(rate, 1), "unit": "events/s"})

    dhl_body = (SAMPLES / "dhl" / DHL_SAMPLE).read_bytes()
    try:
        importlib.import_module(ADAPTERS["dhl"].partition(":")[0])
        ours: Callable[[], int] | None = None
        dhl = get_adapter("dhl")

        def ours_run() -> int:
            return sum(len(r.events) for r in dhl.parse(dhl_body))

        ours = ours_run
    except ImportError:
        ours = None
    theirs, why = karrio_parser(dhl_body)
    if ours is None:
        print("dhl vs karrio: skipped, our DHL adapter is missing")
    elif theirs is None:
        print(f"dhl vs karrio: baseline unavailable ({why})")
    else:
        our_rates, their_rates = [], []
        for _ in range(rounds):
            our_rates.append(measure(ours, window)[0])
            their_rates.append(measure(theirs, window)[0])
        our_rate, their_rate = statistics.median(our_rates), statistics.median(their_rates)
        ratio = our_rate / their_rate
        paired = sorted(o / t for o, t in zip(our_rates, their_rates, strict=True))
        print(
            f"dhl sample   ours {our_rate:,.0f} events/s, karrio dhl_universal {their_rate:,.0f} events/s,"
            f" ratio {ratio:.2f}x (medians of {rounds} alternating rounds;"
            f" per-round ratios {paired[0]:.2f}x..{paired[-1]:.2f}x)"
        )
        figures.append(
            {
                "metric": "parse_events_per_s.dhl_express_sample",
                "value": round(our_rate, 1),
                "unit": "events/s",
                "baseline": "karrio.dhl_universal parse_tracking_response",
                "baseline_value": round(their_rate, 1),
                "ratio": round(ratio, 3),
            }
        )

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"figures": figures}, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
