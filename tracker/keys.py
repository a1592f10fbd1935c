"""Every typed application key, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from tracker.clock import Clock
from tracker.db import SessionMaker
from tracker.settings import Settings
from tracker.store.sellers import Principal
from tracker.web.problems import REQUEST_ID as _REQUEST_ID

if TYPE_CHECKING:
    from tracker.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONMAKER = web.AppKey("sessionmaker", SessionMaker)
HTTP = web.AppKey("http", aiohttp.ClientSession)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
#: extra services wired by the app factory (poller, dispatcher, notifier, scheduler...)
SERVICES: web.AppKey[dict[str, Any]] = web.AppKey("services")

#: per-request storage
REQUEST_ID = _REQUEST_ID
PRINCIPAL = web.RequestKey("principal", Principal)
