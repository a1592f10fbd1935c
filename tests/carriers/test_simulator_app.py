"""The simulator app: lazy carrier mounting, fault injection and the /_sim admin API."""

from __future__ import annotations

import json
import logging
import sys
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from carriers.simulator import Faults, SimState, create_app
from carriers.simulator import app as sim_app
from carriers.simulator.__main__ import build_parser
from carriers.simulator.faults import apply_faults, decide

FIXED = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


def _fixed_clock() -> datetime:
    return FIXED


async def _pong(request: web.Request) -> web.Response:
    return web.json_response({"items": [{"number": str(i), "status": "ok"} for i in range(20)]})


def _probe_app(state: SimState) -> web.Application:
    """The simulator with no carriers plus one plain route, to watch the middleware alone."""
    app = create_app(state, codes=[])
    app.router.add_get("/probe/ping", _pong)
    return app


async def _statuses(client: Any, n: int) -> list[int]:
    out = []
    for _ in range(n):
        resp = await client.get("/probe/ping")
        await resp.read()
        out.append(resp.status)
    return out


async def test_faults_repeat_for_the_same_seed(aiohttp_client: Any) -> None:
    faults = Faults(rate_429=0.2, rate_5xx=0.2, rate_malformed=0.1)
    runs = []
    for seed in (5, 5, 6):
        client = await aiohttp_client(_probe_app(SimState(seed=seed, faults=Faults(**faults.__dict__))))
        runs.append(await _statuses(client, 60))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert {429, 500, 503} <= set(runs[0])


async def test_fault_shares_follow_the_knobs(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_probe_app(SimState(seed=1, faults=Faults(rate_429=0.25, rate_5xx=0.1))))
    statuses = await _statuses(client, 400)
    share_429 = statuses.count(429) / 400
    share_5xx = (statuses.count(500) + statuses.count(503)) / 400
    # binomial bounds, about five standard deviations wide
    assert 0.14 < share_429 < 0.36
    assert 0.03 < share_5xx < 0.17


async def test_429_with_and_without_retry_after(aiohttp_client: Any) -> None:
    state = SimState(faults=Faults(rate_429=1.0, retry_after="7"))
    client = await aiohttp_client(_probe_app(state))
    resp = await client.get("/probe/ping")
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "7"
    state.faults = Faults(rate_429=1.0, retry_after=None)
    resp = await client.get("/probe/ping")
    assert resp.status == 429
    assert "Retry-After" not in resp.headers


async def test_malformed_bodies_are_cut_short(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_probe_app(SimState(faults=Faults(rate_malformed=1.0))))
    resp = await client.get("/probe/ping")
    assert resp.status == 200
    text = await resp.text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    whole = (await _pong(None)).body  # type: ignore[arg-type]
    assert isinstance(whole, bytes)
    assert 0 < len(text.encode()) < len(whole)


async def test_no_faults_by_default(aiohttp_client: Any) -> None:
    client = await aiohttp_client(_probe_app(SimState()))
    assert set(await _statuses(client, 30)) == {200}


def test_decide_respects_budget_edges() -> None:
    assert {decide(Faults(), 0, n) for n in range(200)} == {"ok"}
    assert {decide(Faults(rate_5xx=1.0), 0, n) for n in range(200)} == {"500", "503"}
    assert {decide(Faults(rate_malformed=1.0), 3, n) for n in range(50)} == {"malformed"}


# --- admin API ------------------------------------------------------------------------------


async def test_get_and_put_faults(aiohttp_client: Any) -> None:
    state = SimState()
    client = await aiohttp_client(_probe_app(state))
    resp = await client.get("/_sim/faults")
    assert (await resp.json())["rate_429"] == 0.0
    resp = await client.put("/_sim/faults", json={"rate_429": 1.0, "retry_after": None})
    assert resp.status == 200
    assert (await resp.json())["rate_429"] == 1.0
    assert state.faults.rate_429 == 1.0
    assert (await client.get("/probe/ping")).status == 429
    # the admin API itself is never faulted
    assert (await client.get("/_sim/faults")).status == 200


@pytest.mark.parametrize(
    "body", [{"rate_429": 2}, {"nope": 1}, {"latency_ms": "fast"}, {"token_ttl": True}, [1, 2]]
)
async def test_put_faults_rejects_bad_values(aiohttp_client: Any, body: Any) -> None:
    state = SimState()
    client = await aiohttp_client(_probe_app(state))
    resp = await client.put("/_sim/faults", json=body)
    assert resp.status == 400
    assert state.faults == Faults()


def test_apply_faults_keeps_unchanged_fields() -> None:
    changed = apply_faults(Faults(latency_ms=5), {"rate_5xx": 0.5})
    assert (changed.latency_ms, changed.rate_5xx, changed.token_ttl) == (5, 0.5, 3600)


async def test_clock_offset_and_absolute(aiohttp_client: Any) -> None:
    state = SimState(clock=_fixed_clock)
    client = await aiohttp_client(_probe_app(state))
    resp = await client.post("/_sim/clock", json={"offset_seconds": 3600})
    assert resp.status == 200
    assert state.clock() == FIXED + timedelta(hours=1)
    target = datetime(2026, 3, 1, tzinfo=UTC)
    resp = await client.post("/_sim/clock", json={"at": target.isoformat()})
    assert (await resp.json())["now"] == target.isoformat()
    assert state.clock() == target
    assert (await client.post("/_sim/clock", json={"at": "2026-03-01T00:00:00"})).status == 400
    assert (await client.post("/_sim/clock", json={"offset_seconds": "x"})).status == 400


def _fake_carrier_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)

    def add_routes(app: web.Application, state: SimState, prefix: str) -> None:
        async def lookup(request: web.Request) -> web.Response:
            number = request.match_info["number"]
            state.lookups[("17track", number)] += 1
            return web.json_response({"number": number})

        app.router.add_get(prefix + "/track/{number}", lookup)

    module.add_routes = add_routes  # type: ignore[attr-defined]
    return module


async def test_mounts_carrier_modules_and_counts(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "carriers.simulator.track17"
    monkeypatch.setitem(sys.modules, name, _fake_carrier_module(name))
    state = SimState()
    app = create_app(state, codes=["17track"])
    assert app[sim_app.MOUNTED] == ["17track"]
    assert app[sim_app.SIM_STATE] is state
    client = await aiohttp_client(app)
    for number in ("A1", "A1", "B2"):
        assert (await client.get(f"/17track/track/{number}")).status == 200
    stats = await (await client.get("/_sim/stats")).json()
    assert stats["requests"] == {"17track": 3}
    assert stats["lookups"] == 3
    assert stats["lookups_by_carrier"] == {"17track": 3}


def test_missing_modules_are_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sim_app.MODULES, "dhl", "no_such_simulator_module")
    with caplog.at_level(logging.WARNING, logger="carriers.simulator"):
        app = create_app(SimState(), codes=["dhl"])
    assert app[sim_app.MOUNTED] == []
    assert "no_such_simulator_module" in caplog.text


def test_unknown_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="acme"):
        create_app(SimState(), codes=["acme"])


def test_every_known_carrier_has_a_module_name() -> None:
    app = create_app(SimState())
    assert set(app[sim_app.MOUNTED]) <= set(sim_app.MODULES)


def test_cli_arguments() -> None:
    args = build_parser().parse_args(
        ["--port", "9001", "--seed", "4", "--latency-ms", "25", "--retry-after", ""]
    )
    assert (args.port, args.host, args.seed, args.latency_ms, args.retry_after) == (
        9001,
        "127.0.0.1",
        4,
        25.0,
        "",
    )
