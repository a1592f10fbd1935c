"""`tracker demo`: simulator + service on one sped-up clock; printed URLs answer; statuses move."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path

import aiohttp
from sqlmodel import func, select

from tracker import keys
from tracker.demo import demo_numbers, running_demo
from tracker.models import Shipment, TrackingEvent
from tracker.polling import POLLER
from tracker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


class Monotonic:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_demo_numbers_cover_carriers_and_sandbox_stories() -> None:
    numbers = demo_numbers(300)
    assert {c for c, _ in numbers} == {"fedex", "ups", "dhl", "usps", "yanwen", "17track", "sf_express"}
    stories = {
        marker
        for marker in ("SBXLOST", "SBXCUSTOMS", "SBXRETURNED", "SBXLATE")
        for _, n in numbers
        if n.startswith(marker)
    }
    assert stories == {"SBXLOST", "SBXCUSTOMS", "SBXRETURNED", "SBXLATE"}
    assert len({n for _, n in numbers}) == 300


async def _status_counts(app: object) -> tuple[dict[str, int], int]:
    async with app[keys.SESSIONMAKER]() as session:  # type: ignore[index]
        rows = await session.exec(select(Shipment.status, func.count()).group_by(Shipment.status))
        counts = {status: n for status, n in rows}
        events = (await session.exec(select(func.count()).select_from(TrackingEvent))).one()
    return counts, int(events)


async def test_demo_urls_answer_and_time_moves_statuses(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {"database": {"url": f"sqlite:///{tmp_path / 'demo.db'}"}, "server": {"port": 0}, "email": {"enabled": False}}
    )
    mono = Monotonic()
    async with running_demo(settings, shipments=70, speed=3600.0, monotonic=mono, run_jobs=False) as demo:
        urls = demo.urls()
        assert len(urls) == 8
        assert all(u.startswith(demo.base_url) for u in urls)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {demo.api_key}"}) as http:
            for url in urls:
                async with http.get(url) as resp:
                    # pages of features still being built may 404; never anything else
                    assert resp.status in (200, 404), (url, resp.status)
            for url in (f"{demo.base_url}/v1/shipments", f"{demo.base_url}/openapi.json", urls[0]):
                async with http.get(url) as resp:
                    assert resp.status == 200, url

        poller = demo.app[POLLER]
        first = await poller.run_once()
        assert first.claimed == 70
        assert first.requests > 0
        before, events_before = await _status_counts(demo.app)
        mono.t += 72.0  # 72 real seconds at 3,600x: three simulated days
        await poller.run_once()
        after, events_after = await _status_counts(demo.app)
    assert events_after > events_before > 0
    assert after != before
    assert after.get("delivered", 0) >= before.get("delivered", 0)
    assert sum(after.values()) == 70


async def test_cli_demo_prints_urls_one_per_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n[email]\nenabled = false\n[logging]\nlevel = "INFO"\n'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tracker.cli",
        "demo",
        "--config",
        str(config),
        "--port",
        "0",
        "--shipments",
        "14",
        "--seconds",
        "2",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode == 0, err.decode()[-2000:]
    lines = out.decode().splitlines()
    assert len(lines) == 8
    assert all(line.startswith("http://127.0.0.1:") for line in lines)
    assert sum("/t/" in line for line in lines) == 5
    # the jobs ran on their own: the demo polled the simulator and stored timelines
    with sqlite3.connect(tmp_path / "cli.db") as db:
        assert db.execute("SELECT count(*) FROM tracking_events").fetchone()[0] > 0
        assert db.execute("SELECT count(*) FROM poll_schedule WHERE poll_count > 0").fetchone()[0] == 14
    assert lines[-3].endswith("/dashboard")
    assert lines[-1].endswith("/openapi.json")
    # settled like `serve` and `worker`, once the demo is up
    records = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    settled = [r for r in records if r["msg"] == "startup objects frozen"]
    assert len(settled) == 1 and settled[0]["objects"] > 20_000
