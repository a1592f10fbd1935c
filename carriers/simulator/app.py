"""The simulator application: every carrier's documented endpoints under `/<code>/`."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable

from aiohttp import web

from carriers.simulator.faults import add_admin_routes, fault_middleware
from carriers.simulator.state import SimState

log = logging.getLogger("carriers.simulator")

#: carrier code -> module under carriers.simulator that serves it
MODULES: dict[str, str] = {
    "17track": "track17",
    "dhl": "dhl",
    "ups": "ups",
    "fedex": "fedex",
    "usps": "usps",
    "sf_express": "sf_express",
    "yanwen": "yanwen",
}

SIM_STATE = web.AppKey("sim_state", SimState)
#: carrier codes whose endpoints were mounted, in mount order
MOUNTED = web.AppKey("sim_mounted", list[str])


def create_app(state: SimState | None = None, codes: Iterable[str] | None = None) -> web.Application:
    """Build the simulator for `codes` (all known carriers by default).

    A carrier whose simulator module is missing is skipped with a warning, so the app runs
    with whatever carriers exist.
    """
    state = state if state is not None else SimState()
    wanted = list(codes) if codes is not None else list(MODULES)
    unknown = [c for c in wanted if c not in MODULES]
    if unknown:
        raise ValueError(f"unknown simulator carriers: {', '.join(unknown)}")
    mounted = [code for code in wanted if _mount_ready(code)]
    app = web.Application(middlewares=[fault_middleware(state, mounted)])
    app[SIM_STATE] = state
    app[MOUNTED] = mounted
    for code in mounted:
        module = importlib.import_module(f"carriers.simulator.{MODULES[code]}")
        module.add_routes(app, state, prefix=f"/{code}")
    add_admin_routes(app, state)
    return app


def _mount_ready(code: str) -> bool:
    name = f"carriers.simulator.{MODULES[code]}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        log.warning("simulator module %s missing: carrier %s skipped", name, code, extra={"carrier": code})
        return False
    if not callable(getattr(module, "add_routes", None)):
        log.warning("simulator module %s has no add_routes: carrier %s skipped", name, code)
        return False
    return True
