"""The aiohttp application factory: everything is wired here and injected through AppKeys."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from aiohttp import web

from tracker import alerts, keys, notify, polling
from tracker.clock import Clock, utc_now
from tracker.db import background_checkpoints, create_sessionmaker, engine_for
from tracker.logs import request_log_middleware
from tracker.metrics import Metrics, metrics_middleware
from tracker.scheduler import Job, add_job, scheduler_ctx
from tracker.settings import Settings
from tracker.web import ops
from tracker.web.api import alerts as alerts_api
from tracker.web.api import carrier_push
from tracker.web.api import declarations as declarations_api
from tracker.web.api import shipments as shipments_api
from tracker.web.api import webhooks as webhooks_api
from tracker.web.auth import auth_middleware
from tracker.web.pages import clerk as clerk_pages
from tracker.web.pages import dashboard as dashboard_pages
from tracker.web.pages import tracking as tracking_pages
from tracker.web.pages import unsubscribe as unsubscribe_pages
from tracker.web.problems import problem_middleware
from tracker.webhooks import dispatcher


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    engine = engine_for(settings.database)
    app[keys.ENGINE] = engine
    app[keys.SESSIONMAKER] = create_sessionmaker(engine)
    async with AsyncExitStack() as stack:
        if app[keys.SERVICES].get("run_jobs"):
            # the poller writes without pause: its commits should not also copy the log back
            await stack.enter_async_context(background_checkpoints(engine))
        yield
    await engine.dispose()


async def _http(app: web.Application) -> AsyncIterator[None]:
    session = aiohttp.ClientSession(
        headers={"User-Agent": "cbec-tracker/0.1 (+https://cbec-tracker.dev)"},
        timeout=aiohttp.ClientTimeout(total=30),
    )
    app[keys.HTTP] = session
    yield
    await session.close()


async def _retention_job(app: web.Application) -> None:
    from tracker.retention import purge

    settings = app[keys.SETTINGS]
    await purge(
        app[keys.SESSIONMAKER],
        now=app[keys.CLOCK](),
        months=settings.retention.months,
        batch=settings.retention.purge_batch,
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    run_jobs: bool = False,
    services: dict[str, Any] | None = None,
) -> web.Application:
    """Build the app. `run_jobs` starts this process's periodic jobs (the scheduler)."""
    metrics = Metrics()
    # our request log replaces aiohttp's access log, which prints raw paths (and so the
    # tracking tokens and numbers in them)
    logging.getLogger("aiohttp.access").disabled = True
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[
            request_log_middleware,
            metrics_middleware(metrics),
            problem_middleware,
            auth_middleware,
        ],
    )
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.METRICS] = metrics
    app[keys.SERVICES] = {"run_jobs": run_jobs, **(services or {})}
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(_http)
    ops.add_routes(app)
    shipments_api.add_routes(app)
    app.cleanup_ctx.append(declarations_api.renderer_ctx)
    declarations_api.add_routes(app)
    clerk_pages.add_routes(app)
    webhooks_api.add_routes(app)
    app.cleanup_ctx.append(dispatcher.http_ctx)
    add_job(app, Job("retention", 24 * 3600, _retention_job))
    add_job(app, Job("webhooks", settings.webhooks.tick_seconds, dispatcher.tick))
    tracking_pages.add_routes(app)
    # started last so it stops first, before the resources its jobs use
    app.cleanup_ctx.append(polling.poller_ctx)
    carrier_push.add_routes(app)
    add_job(app, Job("poll", settings.polling.tick_seconds, polling.poll_job))
    alerts_api.add_routes(app)
    add_job(app, Job("alerts", settings.alerts.tick_seconds, alerts.job))
    unsubscribe_pages.add_routes(app)
    add_job(app, Job("notify", notify.NotifyPolicy().tick_seconds, notify.job))
    dashboard_pages.add_routes(app)
    app.cleanup_ctx.append(scheduler_ctx)
    return app
