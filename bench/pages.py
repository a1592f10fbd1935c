"""Throughput and latency of the public tracking page /t/{token}, against a hello-world
aiohttp handler measured in the same run (the baseline).

A SQLite database holds 100,000 shipments (--quick: 10,000) with three events each. The
service and the baseline each run alone in their own process; the load generator is wrk
when installed (else an aiohttp client), on loopback. Two page scenarios:

- hot:  requests spread over 1,000 tokens, the usual case (a customer re-opening a page,
        links from one mailing): served from the rendered-page cache.
- cold: every request picks one of all the shipments at random, the cache re-validated
        on each request (ttl 0), so each request queries the database and most render.

    .venv/bin/python bench/pages.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import figure, write

HOT_TOKENS = 1000
LUA = """
local tokens = {}
init = function(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
request = function()
  return wrk.format("GET", "/t/" .. tokens[math.random(#tokens)], {["Accept-Language"] = "en"})
end
"""


# ---------------------------------------------------------------- database


def build_database(path: Path, count: int) -> list[str]:
    """`count` shipments with three events each, written with the synchronous driver."""
    from sqlalchemy import create_engine, insert
    from sqlmodel import SQLModel

    import tracker.models  # noqa: F401
    from tracker.models import Order, Seller, Shipment, TrackingEvent

    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    tokens: list[str] = []
    places = [("Shenzhen", "CN", 480), ("Leipzig", "DE", 60), ("Berlin", "DE", 60)]
    with engine.begin() as conn:
        conn.execute(
            insert(Seller),
            [
                Seller(
                    id="sel_bench",
                    name="Bench Shop",
                    brand_color="#c2185b",
                    support_email="care@bench.example",
                    created_at=now,
                ).model_dump()
            ],
        )
        for start in range(0, count, 5000):
            orders, shipments, events = [], [], []
            for i in range(start, min(count, start + 5000)):
                token = secrets.token_urlsafe(18)
                tokens.append(token)
                orders.append(
                    {
                        "id": f"ord_{i}",
                        "seller_id": "sel_bench",
                        "order_number": f"B-{i}",
                        "customer_key": "x",
                        "items": [],
                        "created_at": now,
                    }
                )
                shipments.append(
                    {
                        "id": f"shp_{i}",
                        "seller_id": "sel_bench",
                        "order_id": f"ord_{i}",
                        "order_number": f"B-{i}",
                        "tracking_number": f"JD{i:018d}",
                        "carrier": "dhl",
                        "status": "in_transit",
                        "sub_status": "customs_processing",
                        "public_token": token,
                        "customer_email": f"c{i}@example.com",
                        "origin_country": "CN",
                        "dest_country": "DE",
                        "dest_postcode": "10115",
                        "created_at": now,
                        "updated_at": now,
                        "eta_latest": now + timedelta(days=8),
                        "eta_latest_end": now + timedelta(days=11),
                        "last_event_at": now + timedelta(days=2),
                    }
                )
                for j, (city, country, offset) in enumerate(places):
                    at = now + timedelta(hours=17 * j)
                    events.append(
                        {
                            "shipment_id": f"shp_{i}",
                            "fingerprint": f"{i}-{j}",
                            "occurred_at": at,
                            "time_basis": "offset_given",
                            "local_time": (at + timedelta(minutes=offset)).replace(tzinfo=None).isoformat(),
                            "utc_offset_minutes": offset,
                            "status": "in_transit",
                            "sub_status": ["departed", "arrived", "customs_processing"][j],
                            "raw_code": "X",
                            "description": "Processed at facility",
                            "city": city,
                            "country": country,
                            "provider": "dhl",
                            "recorded_at": at,
                        }
                    )
            conn.execute(insert(Order.__table__), orders)
            conn.execute(insert(Shipment.__table__), shipments)
            conn.execute(insert(TrackingEvent.__table__), events)
    engine.dispose()
    return tokens


# ---------------------------------------------------------------- servers (child processes)


def serve(kind: str, port: int, db: str, ttl: float) -> None:
    from aiohttp import web

    if kind == "hello":

        async def hello(_: web.Request) -> web.Response:
            return web.Response(text="Hello, world")

        app = web.Application()
        app.router.add_get("/t/{token}", hello)
        # a bare app, run with aiohttp's defaults (its access logger included)
        web.run_app(app, host="127.0.0.1", port=port, print=None)
    else:
        from tracker.app import create_app
        from tracker.logs import setup_logging
        from tracker.settings import Settings
        from tracker.web.ratelimit_http import PublicLimits

        settings = Settings.model_validate(
            {"database": {"url": f"sqlite:///{db}"}, "server": {"public_url": f"http://127.0.0.1:{port}"}}
        )
        # the load comes from one address: limits that a benchmark never meets
        limits = PublicLimits(page_per_minute=1e9, page_burst=10**9)
        app = create_app(settings, services={"public_limits": limits, "public_page_ttl": ttl})
        # as `tracker serve` runs: one JSON access-log line per request (to /dev/null here)
        setup_logging("INFO")
        web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(kind: str, db: Path, ttl: float) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port), "--db", str(db), "--ttl", str(ttl)],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


# ---------------------------------------------------------------- load generators


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(port: int, tokens_file: Path, seconds: int, connections: int) -> dict[str, float]:
    script = tokens_file.with_suffix(".lua")
    script.write_text(LUA)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
            "--",
            str(tokens_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)(?:\.000)?%\s+(\S+)", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50": _ms(latency["50"]),
        "p99": _ms(latency["99"]),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


async def _aiohttp_load(port: int, tokens: list[str], seconds: int, connections: int) -> dict[str, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.get(f"/t/{random.choice(tokens)}", headers={"Accept-Language": "en"}) as r:
                    await r.read()
                    errors += r.status != 200
                latencies.append((time.perf_counter() - start) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
        "errors": float(errors),
    }


async def _visit_each(port: int, tokens: list[str]) -> None:
    import aiohttp

    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
        for token in tokens:
            async with session.get(f"/t/{token}", headers={"Accept-Language": "en"}) as r:
                await r.read()


def load(port: int, tokens: list[str], workdir: Path, seconds: int, connections: int) -> dict[str, float]:
    if shutil.which("wrk"):
        path = workdir / f"tokens-{len(tokens)}.txt"
        path.write_text("\n".join(tokens) + "\n")
        return run_wrk(port, path, seconds, connections)
    return asyncio.run(_aiohttp_load(port, tokens, seconds, connections))


def measure(
    kind: str, db: Path, tokens: list[str], workdir: Path, seconds: int, connections: int, ttl: float = 10.0
) -> dict[str, float]:
    proc, port = start_server(kind, db, ttl)
    try:
        # warm-up: imports, pools; the hot set is rendered once, as a day of traffic would have done
        asyncio.run(_visit_each(port, tokens[:HOT_TOKENS]))
        return load(port, tokens, workdir, seconds, connections)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", choices=["hello", "tracker"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--db", default="")
    parser.add_argument("--ttl", type=float, default=10.0)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db, args.ttl)
        return
    count = 10_000 if args.quick else 100_000
    seconds = 5 if args.quick else 10
    connections = 32
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        workdir = Path(tmp)
        db = workdir / "pages.db"
        began = time.perf_counter()
        tokens = build_database(db, count)
        print(f"seeded {count:,} shipments in {time.perf_counter() - began:.1f} s")
        hot = random.Random(7).sample(tokens, HOT_TOKENS)
        hello = measure("hello", db, hot, workdir, seconds, connections)
        page_hot = measure("tracker", db, hot, workdir, seconds, connections)
        page_cold = measure("tracker", db, tokens, workdir, seconds, connections, ttl=0.0)
    generator = "wrk" if shutil.which("wrk") else "aiohttp client"
    for name, r in (("hello", hello), ("hot", page_hot), ("cold", page_cold)):
        print(
            f"{name:<6} {r['rps']:>9,.0f} req/s  p50 {r['p50']:.2f} ms  p99 {r['p99']:.2f} ms  "
            f"non-2xx {r['errors']:.0f}"
        )
    figures: list[dict[str, Any]] = [
        figure(
            "pages_hot_requests_per_second",
            page_hot["rps"],
            "req/s",
            baseline="aiohttp hello world",
            baseline_value=hello["rps"],
        ),
        figure(
            "pages_hot_p50_latency", page_hot["p50"], "ms", baseline="aiohttp hello world", baseline_value=hello["p50"]
        ),
        figure(
            "pages_hot_p99_latency", page_hot["p99"], "ms", baseline="aiohttp hello world", baseline_value=hello["p99"]
        ),
        figure(
            "pages_cold_requests_per_second",
            page_cold["rps"],
            "req/s",
            baseline="aiohttp hello world",
            baseline_value=hello["rps"],
        ),
        figure(
            "pages_cold_p50_latency",
            page_cold["p50"],
            "ms",
            baseline="aiohttp hello world",
            baseline_value=hello["p50"],
        ),
        figure(
            "pages_cold_p99_latency",
            page_cold["p99"],
            "ms",
            baseline="aiohttp hello world",
            baseline_value=hello["p99"],
        ),
    ]
    write(
        "pages",
        figures,
        shipments=count,
        seconds=seconds,
        connections=connections,
        generator=generator,
        hot_tokens=HOT_TOKENS,
        non_2xx={"hello": hello["errors"], "hot": page_hot["errors"], "cold": page_cold["errors"]},
        cpus=os.cpu_count(),
        database="sqlite",
    )


if __name__ == "__main__":
    main()
