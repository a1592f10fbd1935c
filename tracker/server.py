"""Running the service: web + jobs, web only, or jobs only."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from tracker.app import create_app
from tracker.runtime import loop_factory, loop_name, run, settle_gc_on_startup
from tracker.settings import Settings

log = logging.getLogger("tracker.server")


DEMO_NOTICE = (
    "No carrier credentials configured: starting in DEMO MODE (built-in carrier simulator, "
    "demo seller and shipments, time sped up). Configure [carriers.*] in config.toml for real tracking."
)


def serve(settings: Settings, *, run_web: bool, run_jobs: bool) -> int:
    if run_web and not settings.has_carrier_credentials():
        from tracker.demo import run_demo

        log.warning("demo mode: no carrier credentials configured")
        print(DEMO_NOTICE, flush=True)
        return run_demo(settings, run_jobs=run_jobs)
    app = create_app(settings, run_jobs=run_jobs)
    app.on_startup.append(settle_gc_on_startup)
    if run_web:
        loop = loop_factory(settings.server.event_loop)()
        log.info(
            "starting",
            extra={
                "host": settings.server.host,
                "port": settings.server.port,
                "jobs": run_jobs,
                "event_loop": loop_name(loop),
            },
        )
        web.run_app(
            app,
            loop=loop,
            host=settings.server.host,
            port=settings.server.port,
            print=None,
            access_log=None,
            shutdown_timeout=10,
        )
        return 0
    run(_run_headless(app), kind=settings.server.event_loop)
    return 0


async def _run_headless(app: web.Application) -> None:
    """A worker: the same app (resources, jobs) without an HTTP listener."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker started", extra={"event_loop": loop_name(loop)})
    try:
        await stop.wait()
    finally:
        # runs the cleanup contexts: the scheduler stops first, then leases are released
        await runner.cleanup()
        log.info("worker stopped")
