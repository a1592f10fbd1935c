"""The only APScheduler import: this process's periodic jobs.

APScheduler only triggers; the database decides who does what (leases), so any number of
processes can run the same jobs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tracker import keys

log = logging.getLogger("tracker.scheduler")

JobFn = Callable[[web.Application], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    seconds: float
    run: JobFn


SCHEDULER = web.AppKey("scheduler", AsyncIOScheduler)
JOBS: web.AppKey[list[Job]] = web.AppKey("jobs")


def add_job(app: web.Application, job: Job) -> None:
    app.setdefault(JOBS, []).append(job)  # type: ignore[misc]


async def _guarded(app: web.Application, job: Job) -> None:
    try:
        await job.run(app)
    except Exception:
        # a failing job must not kill the scheduler; it runs again next tick
        log.exception("job failed", extra={"job": job.name})


async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """Started last, stopped first (appended to cleanup_ctx after every resource)."""
    if not app[keys.SERVICES].get("run_jobs"):
        yield
        return
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in app.get(JOBS, []):
        scheduler.add_job(
            _guarded,
            "interval",
            seconds=job.seconds,
            args=(app, job),
            id=job.name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, int(job.seconds)),
            jitter=min(job.seconds * 0.1, 5.0),
            # APScheduler ticks in real time whatever clock the app's logic uses (tests and
            # the demo run simulated time), so the first run is due now on the wall clock
            next_run_time=datetime.now(UTC),
        )
    scheduler.start()
    app[SCHEDULER] = scheduler
    log.info("jobs started", extra={"jobs": [j.name for j in app.get(JOBS, [])]})
    yield
    scheduler.shutdown(wait=False)
