"""`tracker demo`: the whole service against the in-process carrier simulator, time sped up.

The simulator and the service share one clock, `start + real elapsed x speed`, so at the
default speed (one simulated hour per real second) a newcomer sees timelines grow and
statuses change within a minute or two. Sandbox numbers script the interesting cases:
lost, held in customs, returned, delivered late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from sqlmodel import SQLModel

from carriers.simulator import SimState
from carriers.simulator import create_app as create_sim_app
from tracker.app import create_app
from tracker.clock import utc_now
from tracker.db import create_sessionmaker, engine_for
from tracker.runtime import run, settle_gc
from tracker.scheduler import JOBS, Job
from tracker.settings import Settings
from tracker.store import sellers as seller_store
from tracker.store import shipments as shipment_store

log = logging.getLogger("tracker.demo")

#: how far into their journeys the demo parcels already are when it starts
HEAD_START = timedelta(days=5)
#: (carrier, number template); {i} is the parcel's index
FORMATS: tuple[tuple[str, str], ...] = (
    ("fedex", "7946{i:08d}"),
    ("ups", "1Z999AA1{i:08d}"),
    ("dhl", "31{i:08d}"),
    ("usps", "9400111{i:015d}"),
    ("yanwen", "UG{i:09d}YP"),
    ("17track", "LP{i:09d}CN"),
    ("sf_express", "SF{i:011d}"),
)
SANDBOX = ("SBXLOST", "SBXCUSTOMS", "SBXRETURNED", "SBXLATE", "SBXDELIVERED", "SBXFAILED")
DESTINATIONS = (
    ("US", "10001", "New York"),
    ("DE", "10115", "Berlin"),
    ("GB", "EC1A 1BB", "London"),
    ("FR", "75001", "Paris"),
    ("ES", "28001", "Madrid"),
    ("BR", "01001-000", "São Paulo"),
    ("JP", "100-0001", "Tokyo"),
    ("AU", "2000", "Sydney"),
    ("CA", "M5H 2N2", "Toronto"),
)
LOCALES = ("en", "de", "en", "fr", "es", "pt", "ja", "en", "en")


class DemoClock:
    """`start + (monotonic elapsed) x speed`: simulated time shared by simulator and service."""

    def __init__(self, start: datetime, speed: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.start = start
        self.speed = speed
        self._monotonic = monotonic
        self._t0 = monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=(self._monotonic() - self._t0) * self.speed)


@dataclass
class Demo:
    app: web.Application
    base_url: str
    simulator_url: str
    api_key: str
    seller_id: str
    tokens: list[str]

    def urls(self) -> list[str]:
        """What to open, one per line: a few tracking pages, the dashboard, the API."""
        pages = [f"{self.base_url}/t/{t}" for t in self.tokens[:5]]
        return [*pages, f"{self.base_url}/dashboard", f"{self.base_url}/v1/shipments", f"{self.base_url}/openapi.json"]


def demo_numbers(count: int) -> list[tuple[str, str]]:
    """(carrier, tracking number) for `count` parcels; every 7th is a sandbox story."""
    out = []
    for i in range(count):
        carrier, template = FORMATS[i % len(FORMATS)]
        number = template.format(i=i + 1)
        if i % 7 == 3:
            number = SANDBOX[(i // 7) % len(SANDBOX)] + number
        out.append((carrier, number))
    return out


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


async def _seed(settings: Settings, count: int, now: datetime) -> tuple[str, str, list[str]]:
    engine = engine_for(settings.database)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
        async with create_sessionmaker(engine)() as session:
            seller = await seller_store.create_seller(
                session, f"Demo Seller {now:%Y-%m-%d %H:%M}", now=now, support_email="support@demo.example"
            )
            key = await seller_store.create_key(session, seller.id, seller_store.DEFAULT_SCOPES, now=now, name="demo")
            tokens = []
            for i, (carrier, number) in enumerate(demo_numbers(count)):
                country, postcode, city = DESTINATIONS[i % len(DESTINATIONS)]
                shipment = await shipment_store.create_shipment(
                    session,
                    seller.id,
                    shipment_store.NewShipment(
                        tracking_number=number,
                        order_number=f"DEMO-{now:%m%d%H%M}-{i + 1:04d}",
                        carrier=carrier,
                        dest_country=country,
                        dest_postcode=postcode,
                        dest_city=city,
                        customer_name=f"Customer {i + 1}",
                        customer_email=f"customer{i + 1}@demo.example",
                        customer_locale=LOCALES[i % len(LOCALES)],
                        origin_country="CN",
                    ),
                    now=now,
                    public_url=settings.server.public_url,
                )
                tokens.append(shipment.public_token)
            await session.commit()
            return seller.id, key.api_key, tokens
    finally:
        await engine.dispose()


@asynccontextmanager
async def running_demo(
    settings: Settings,
    *,
    shipments: int,
    speed: float,
    monotonic: Callable[[], float] = time.monotonic,
    run_jobs: bool = True,
) -> AsyncIterator[Demo]:
    """Start the simulator, seed demo data and serve the app; stop everything on exit."""
    clock = DemoClock(utc_now(), speed, monotonic)
    state = SimState(clock=clock, epoch=clock.start - HEAD_START)
    sim_runner = web.AppRunner(create_sim_app(state))
    await sim_runner.setup()
    sim_port = free_port("127.0.0.1")
    await web.TCPSite(sim_runner, "127.0.0.1", sim_port).start()
    simulator_url = f"http://127.0.0.1:{sim_port}"
    host = settings.server.host
    port = settings.server.port or free_port(host)
    base_url = f"http://{host}:{port}"
    settings = settings.model_copy(
        update={
            "demo": True,
            "server": settings.server.model_copy(update={"port": port, "public_url": base_url}),
            # a tick of real time is `speed` simulated seconds: tick often
            "polling": settings.polling.model_copy(update={"tick_seconds": 1.0}),
        }
    )
    runner: web.AppRunner | None = None
    drivers: list[asyncio.Task[None]] = []
    try:
        seller_id, api_key, tokens = await _seed(settings, shipments, clock())
        # the periodic jobs run on real-time ticks here: the scheduler would place their
        # first run by the sped-up clock, hours in the (real) future
        app = create_app(settings, clock=clock, run_jobs=False, services={"simulator_url": simulator_url})
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        if run_jobs:
            drivers = [asyncio.create_task(_drive(app, job)) for job in app.get(JOBS, [])]
        yield Demo(app, base_url, simulator_url, api_key, seller_id, tokens)
    finally:
        for task in drivers:
            task.cancel()
        await asyncio.gather(*drivers, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        await sim_runner.cleanup()


async def _drive(app: web.Application, job: Job) -> None:
    """Run `job` now and then every `job.seconds` real seconds until cancelled."""
    while True:
        try:
            await job.run(app)
        except Exception:
            log.exception("demo job failed", extra={"job": job.name})
        await asyncio.sleep(job.seconds)


async def _main(settings: Settings, shipments: int, speed: float, seconds: float, run_jobs: bool) -> None:
    async with running_demo(settings, shipments=shipments, speed=speed, run_jobs=run_jobs) as demo:
        settle_gc()
        for url in demo.urls():
            print(url)
        sys.stdout.flush()
        print(
            f"demo: {shipments} shipments, {speed:g} simulated seconds per second; carrier simulator at "
            f"{demo.simulator_url}; API key for the demo seller: {demo.api_key}",
            file=sys.stderr,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds)
        else:
            await stop.wait()


def run_demo(
    settings: Settings, shipments: int = 300, speed: float = 3600.0, seconds: float = 0, *, run_jobs: bool = True
) -> int:
    """Run the demo until Ctrl-C (or for `seconds` real seconds). Prints the URLs to open."""
    log.info("demo starting", extra={"shipments": shipments, "speed": speed})
    run(_main(settings, shipments, speed, seconds, run_jobs), kind=settings.server.event_loop)
    return 0
