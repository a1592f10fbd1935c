"""Instructions a polling worker spends on a refresh: counted by valgrind, not timed.

The machines this runs on change speed by a quarter from one hour to the next, so a rate or
a CPU time measured today cannot be held against one measured yesterday. An instruction
count can: `valgrind --tool=callgrind` counts what the worker process executes (all of
its threads, the SQLite connection's included), whatever else the machine is doing.

The worker is `bench/poll.py`'s SQLite worker, polling first-time shipments against the
simulators on loopback. It runs twice under callgrind: once with N shipments due, and once
with none, which counts starting up and stopping (imports, connections, the empty claim).
The difference over N is the instructions of one refresh: claim, HTTP, parse, merge,
commit. The simulators are not counted. Under valgrind the worker runs some fifty times
slower, so N is small (1,000; 300 with --quick). Writes bench/out/poll_instructions.json.

    .venv/bin/python bench/poll_instructions.py [--quick] [--shipments N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import figure, write  # noqa: E402
from bench.poll import SIMULATOR_NICE, prepare, start_simulators, wait_up  # noqa: E402


def callgrind_total(path: Path) -> int:
    """The instruction total of a callgrind output file."""
    for line in path.read_text().splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def counted_worker(db_url: str, urls: dict[str, str], out: Path) -> tuple[int, int]:
    """Runs the worker under callgrind; returns (instructions, shipments it refreshed)."""
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(ROOT / "bench" / "poll.py"),
        "--worker",
        "--db-url",
        db_url,
        "--urls",
        json.dumps(urls),
    ]
    # a fixed hash seed: set and dict layouts, and so the work done, repeat from run to run
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker under valgrind failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return callgrind_total(out), int(report["claimed"])


async def main(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing counted")
        return 1
    total = args.shipments or (300 if args.quick else 1000)
    urls, sims = start_simulators(SIMULATOR_NICE)
    try:
        for url in urls.values():
            await wait_up(url)
        with tempfile.TemporaryDirectory() as tmp:
            counts = {}
            for label, shipments in (("idle", 0), ("polling", total)):
                db = f"sqlite:///{tmp}/{label}.db"
                await prepare(db, "", shipments)
                counts[label] = counted_worker(db, urls, Path(tmp) / f"{label}.callgrind")
    finally:
        for p in sims:
            p.terminate()
            p.wait()
    idle, _ = counts["idle"]
    polling, refreshed = counts["polling"]
    if refreshed != total:
        raise RuntimeError(f"the worker refreshed {refreshed} of {total} shipments")
    per_refresh = (polling - idle) / total
    print(f"worker start and stop: {idle / 1e6:,.0f} M instructions")
    print(f"{total:,} first refreshes on SQLite: {per_refresh / 1e6:.2f} M instructions a refresh")
    write(
        "poll_instructions",
        [
            figure("poll_instructions_per_refresh_sqlite", per_refresh, "instructions"),
            figure("poll_worker_start_stop_instructions", idle, "instructions"),
        ],
        shipments=total,
    )
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shipments", type=int, default=0, help="shipments polled under valgrind")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
