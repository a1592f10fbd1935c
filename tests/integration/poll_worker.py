"""A polling worker in its own process, for the crash and scale-out tests (and helpers they share).

    python tests/integration/poll_worker.py --db-url URL [--schema S] --sim-url URL --now ISO

Polls until a cycle claims nothing (every due shipment was polled once at the fixed "now"),
then prints one JSON line with its totals.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tracker import runtime
from tracker.carrier_registry import build_carriers
from tracker.db import create_sessionmaker, engine_for
from tracker.polling import Poller
from tracker.settings import Settings


def worker_settings(db_url: str, schema: str, **polling: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url, "schema_name": schema, "pool_size": 4},
            "polling": {"lease_seconds": 120.0, "claim_limit": 500, "concurrency_per_carrier": 4, **polling},
            "email": {"enabled": False},
        }
    )


async def run(settings: Settings, sim_url: str, now: datetime, *, owner: str | None = None) -> dict[str, int]:
    """Poll at the fixed instant `now` until nothing is due, as the periodic job does
    (`run_backlog`); returns summed reports."""
    engine = engine_for(settings.database)
    totals = {"passes": 0, "claimed": 0, "applied_requests": 0, "new_events": 0}
    try:
        async with aiohttp.ClientSession() as http:
            carriers = build_carriers(settings, http, clock=lambda: now, simulator_url=sim_url)
            poller = Poller(
                create_sessionmaker(engine),
                carriers,
                clock=lambda: now,
                settings=settings.polling,
                owner=owner,
                rand=lambda: 0.5,
            )
            while True:
                report = await poller.run_backlog()
                if report.claimed == 0:
                    break
                totals["passes"] += 1
                totals["claimed"] += report.claimed
                totals["applied_requests"] += report.requests
                totals["new_events"] += report.new_events
    finally:
        await engine.dispose()
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--schema", default="")
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--now", required=True, help="the fixed instant this worker believes it is")
    parser.add_argument("--claim-limit", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    now = datetime.fromisoformat(args.now)
    if now.tzinfo is None:
        raise SystemExit("--now needs an offset")
    settings = worker_settings(
        args.db_url, args.schema, claim_limit=args.claim_limit, concurrency_per_carrier=args.concurrency
    )
    # on the event loop `tracker worker` runs
    totals = runtime.run(run(settings, args.sim_url, now))
    print(json.dumps(totals), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --- helpers shared by the tests -----------------------------------------------------------


def served_steps(journey: Any, carrier: str, now: datetime) -> list[Any]:
    """The scans a carrier's simulated API shows at `now` (Yanwen has no label-created scan)."""
    from carriers.status import Status

    steps = journey.visible(now)
    if carrier == "yanwen":
        steps = [s for s in steps if s.status is not Status.INFO_RECEIVED]
    return list(steps)


def expected_messages(steps: list[Any], has_eta: bool) -> list[str]:
    """The outbox messages one clean first poll of a shipment produces, sorted."""
    out = []
    if steps:
        out.append("shipment.updated")
        if steps[-1].status.value != "pending":
            out.append("shipment.status_changed")
        if steps[-1].status.value == "delivered":
            out.append("shipment.delivered")
        elif has_eta:
            out.append("shipment.eta_changed")
    return sorted(out)
