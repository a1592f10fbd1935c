"""Shipment refreshes per second, end to end: claim -> HTTP -> parse -> merge -> commit.

The carrier simulator runs on loopback without added latency, one process per carrier
(FedEx 30 numbers a call, 17TRACK 40, Yanwen 40), so the poller, not one simulator
process, is what is measured. Figures:

- SQLite, one worker process; then the same shipments once more, which finds nothing new:
  the common case of a running service, where most polls return what is already stored;
- PostgreSQL (--database-url, else $TRACKER_BENCH_PG_URL, else the local test server, in a
  fresh schema), one and two worker processes, each also for the same shipments once more;
- the ceiling, in the same run: the simulators' answer rate to a bare aiohttp client loop
  (no parsing, no database), in numbers per second.

Each worker reports its own start and end (after imports); a run's rate is the shipments
divided by the span from the first start to the last end. Each run also says where the
machine's CPU went (busy cores in all; workers, simulators, PostgreSQL server), read from /proc:
on a small machine the database and the simulators share the cores with the workers, and
a second worker can only add what the first one left idle. The machine's CPU a refresh
(busy cores over the rate: workers, server and simulators together) says whether a second
worker made each refresh cheaper or dearer. A worker's CPU is split into its
event-loop thread and its other threads (on SQLite, the connection's aiosqlite thread); they
take turns under Python's GIL, so together they stay under one core. Writes
bench/out/poll.json.

With --phases, each run also prints where the workers' write transactions spent their time,
step by step (`bench/poll_phases.py`).

    .venv/bin/python bench/poll.py [--quick] [--overlap] [--phases] [--database-url URL] [--simulator-nice N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import DEFAULT_PG, figure, peak_rss_mib, pg_available, pg_schema, write  # noqa: E402
from bench.poll_phases import Phases, print_phases  # noqa: E402

CARRIERS = ("fedex", "17track", "yanwen")
PREFIX = {"fedex": "FX", "17track": "LP", "yanwen": "YW"}
BATCH = {"fedex": 30, "17track": 40, "yanwen": 40}
#: The simulators stand in for carriers' servers, which run on other machines. At the
#: worker's own priority, on 2 cores, they took the CPU from a SQLite worker's event loop
#: for about 8% of its run (its schedstat wait: 1.3 s of 16 s at 30,000 shipments); ten
#: nice steps below, half that, and the worker refreshed 2 to 8% faster (alternating runs
#: at 10,000 and 30,000 shipments).
SIMULATOR_NICE = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def numbers(total: int) -> list[tuple[str, str]]:
    return [(f"{PREFIX[CARRIERS[i % 3]]}9{i:07d}4242", CARRIERS[i % 3]) for i in range(total)]


async def wait_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url + "/_sim/stats") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)  # a process starting up, not work under test
    raise RuntimeError(f"simulator at {url} did not start")


def start_simulators(nice: int = 0) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    """One simulator process per carrier, `nice` steps below normal priority."""
    urls, procs = {}, []
    for code in CARRIERS:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "carriers.simulator", "--port", str(port), "--carriers", code],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if nice:
            os.setpriority(os.PRIO_PROCESS, proc.pid, nice)
        procs.append(proc)
        urls[code] = f"http://127.0.0.1:{port}"
    return urls, procs


# --- the ceiling: a bare client loop ----------------------------------------------------


async def ceiling(urls: dict[str, str], seconds: float) -> float:
    """Numbers answered per second with raw requests (8 in flight per carrier), no parsing."""
    served = 0
    async with aiohttp.ClientSession() as http:
        async with http.post(
            urls["fedex"] + "/fedex/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "sim-client", "client_secret": "sim-secret"},
        ) as r:
            token = (await r.json())["access_token"]
        nums = {c: [n for n, cc in numbers(3 * 40 * 3) if cc == c][: BATCH[c]] for c in CARRIERS}
        headers17 = {"17token": "sim-key"}
        async with http.post(
            urls["17track"] + "/17track/track/v2.2/register",
            headers=headers17,
            json=[{"number": n} for n in nums["17track"]],
        ) as r:
            await r.read()
        deadline = time.perf_counter() + seconds

        async def loop(code: str) -> None:
            nonlocal served
            while time.perf_counter() < deadline:
                if code == "fedex":
                    req = http.post(
                        urls[code] + "/fedex/track/v1/trackingnumbers",
                        headers={"Authorization": f"Bearer {token}"},
                        json={"trackingInfo": [{"trackingNumberInfo": {"trackingNumber": n}} for n in nums[code]]},
                    )
                elif code == "17track":
                    req = http.post(
                        urls[code] + "/17track/track/v2.2/gettrackinfo",
                        headers=headers17,
                        json=[{"number": n} for n in nums[code]],
                    )
                else:
                    req = http.get(
                        urls[code] + "/yanwen/api/tracking",
                        headers={"Authorization": "sim-key"},
                        params={"nums": ",".join(nums[code])},
                    )
                async with req as resp:
                    await resp.read()
                served += BATCH[code]

        start = time.perf_counter()
        await asyncio.gather(*(loop(c) for c in CARRIERS for _ in range(8)))
        return served / (time.perf_counter() - start)


# --- a worker process -------------------------------------------------------------------


class ThreadOverlap:
    """How often the event-loop thread and the process's other threads ran at once.

    A sampler thread reads every thread's CPU clock (`pthread_getcpuclockid`) every `every`
    seconds; in each window a thread counts as running when it ran more than half of it.
    The CPU clock includes the slice a thread is running in; /proc's schedstat does not (it
    moves at scheduler ticks, 4 ms apart at 250 Hz), so a thread running without a break
    would seem idle in every other 2 ms window. Off by default (--overlap): the sampler
    wakes 500 times a second and takes the GIL, which slows the worker a little; its own
    CPU is left out of the worker's figures.
    """

    def __init__(self, every: float = 0.002) -> None:
        self.every = every
        self.windows: dict[str, float] = {"loop_alone": 0.0, "others_alone": 0.0, "both": 0.0, "neither": 0.0}
        self._stop = threading.Event()
        self._loop = threading.get_ident()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        #: CPU seconds the sampler itself used, left out of the worker's figures
        self.own_cpu = 0.0

    @staticmethod
    def _run_times() -> dict[int, int]:
        out = {}
        for thread in threading.enumerate():
            if thread.ident is None:
                continue
            try:
                out[thread.ident] = time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))
            except (OSError, ProcessLookupError):
                continue  # the thread ended meanwhile
        return out

    def _sample(self) -> None:
        me = threading.get_ident()
        before, at = self._run_times(), time.perf_counter_ns()
        while not self._stop.wait(self.every):
            now, when = self._run_times(), time.perf_counter_ns()
            span = max(1, when - at)
            loop = (now.get(self._loop, 0) - before.get(self._loop, 0)) / span > 0.5
            others = sum(v - before.get(t, v) for t, v in now.items() if t not in (self._loop, me)) / span > 0.5
            key = "both" if loop and others else "loop_alone" if loop else "others_alone" if others else "neither"
            self.windows[key] += span / 1e9
            before, at = now, when
        self.own_cpu = time.thread_time()

    def __enter__(self) -> ThreadOverlap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def shares(self) -> dict[str, float]:
        total = sum(self.windows.values()) or 1.0
        return {k: v / total for k, v in self.windows.items()}


def _run_queue_seconds() -> float:
    """Seconds the calling thread has spent runnable but waiting for a CPU (Linux
    schedstat; 0 where it is not available)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


#: rows a worker can be told not to write (`bench/pg_scaling_bound.py`): the functions of
#: `tracker.store.tracking` that write them
SKIPPABLE = {
    "events": ("insert_events",),
    "outbox": ("insert_outbox", "insert_notifications"),
}


def skip_writes(kinds: list[str]) -> None:
    """Make this worker process leave out some of a poll's writes, to measure what they cost.

    Only for measuring: a worker that skips them loses data the service needs."""
    from tracker.store import tracking

    async def nothing(*args: object, **kwargs: object) -> None:
        return None

    for kind in kinds:
        for name in SKIPPABLE[kind]:
            setattr(tracking, name, nothing)


async def worker_main(args: argparse.Namespace) -> None:
    from tracker.carrier_registry import build_carriers
    from tracker.db import background_checkpoints, create_sessionmaker, engine_for
    from tracker.polling import Poller
    from tracker.runtime import settle_gc
    from tracker.settings import Settings

    urls = json.loads(args.urls)
    settings = Settings.model_validate(
        {
            "database": {"url": args.db_url, "schema_name": args.schema, "pool_size": 8},
            "polling": {"claim_limit": 2000, "concurrency_per_carrier": 4, "lease_seconds": 600},
            "email": {"enabled": False},
        }
    )
    engine = engine_for(settings.database)
    now = datetime.now(UTC)
    claimed = 0
    # as the app does in a process that runs jobs (`tracker.app`)
    async with background_checkpoints(engine), aiohttp.ClientSession() as http:
        runtimes = {}
        for code in CARRIERS:
            runtimes.update(
                {
                    k: v
                    for k, v in build_carriers(settings, http, clock=lambda: now, simulator_url=urls[code]).items()
                    if k == code
                }
            )
        skip_writes(args.skip_writes or [])
        poller = Poller(create_sessionmaker(engine), runtimes, clock=lambda: now, settings=settings.polling)
        settle_gc()  # as `tracker worker` does once started
        phases = Phases() if args.phases else None
        if phases is not None:
            phases.install()
        overlap = ThreadOverlap() if args.overlap else contextlib.nullcontext()
        with overlap:
            start, cpu_start, loop_start = time.time(), time.process_time(), time.thread_time()
            waited_start = _run_queue_seconds()
            while True:
                report = await poller.run_backlog()
                if report.claimed == 0:
                    break
                claimed += report.claimed
            end, cpu, loop_cpu = time.time(), time.process_time() - cpu_start, time.thread_time() - loop_start
            loop_waited = _run_queue_seconds() - waited_start
    await engine.dispose()
    rss = peak_rss_mib()
    report: dict[str, Any] = {
        "start": start,
        "end": end,
        "claimed": claimed,
        "rss_mib": rss,
        "cpu": cpu,
        "loop_cpu": loop_cpu,
        "loop_waited": loop_waited,
    }
    if phases is not None:
        report["phases"] = phases.totals
    if isinstance(overlap, ThreadOverlap):
        report["overlap"] = overlap.shares()
        report["cpu"] -= overlap.own_cpu
    print(json.dumps(report), flush=True)


# --- where the CPU went ------------------------------------------------------------------


def _jiffies(pid: int, *, children: bool = False) -> int:
    """utime + stime of a process, in clock ticks (0 when it is gone); with `children`, also
    that of its children that have exited."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    own = int(fields[11]) + int(fields[12])
    return own + int(fields[13]) + int(fields[14]) if children else own


def _postgres_jiffies() -> int:
    # a connection's backend exits with the worker that opened it, and its time moves to
    # the postmaster's exited-children total, so counting that too keeps the sum whole
    return sum(_jiffies(p, children=True) for p in _postgres_pids())


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("postgres"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _machine() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuShare:
    """CPU used by the simulators, the PostgreSQL server and the whole machine over a span."""

    def __init__(self, simulators: list[subprocess.Popen[bytes]]) -> None:
        self.available = Path("/proc/stat").exists()
        self.simulators = [p.pid for p in simulators]

    def __enter__(self) -> CpuShare:
        if self.available:
            self.start = time.time()
            self.machine = _machine()
            self.sims = sum(_jiffies(p) for p in self.simulators)
            self.pg = _postgres_jiffies()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.available:
            return
        tick = os.sysconf("SC_CLK_TCK")
        span = time.time() - self.start
        busy, total = _machine()
        cpus = os.cpu_count() or 1
        self.busy_cores = cpus * (busy - self.machine[0]) / max(1, total - self.machine[1])
        self.sim_cores = (sum(_jiffies(p) for p in self.simulators) - self.sims) / tick / span
        self.pg_cores = (_postgres_jiffies() - self.pg) / tick / span


# --- one measured configuration ---------------------------------------------------------


async def prepare(db_url: str, schema: str, total: int) -> None:
    from sqlmodel import SQLModel

    from tracker.db import create_sessionmaker, engine_for
    from tracker.settings import DatabaseSettings
    from tracker.store import sellers, tracking

    engine = engine_for(DatabaseSettings(url=db_url, schema_name=schema))
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all)
    now = datetime.now(UTC)
    async with create_sessionmaker(engine)() as session:
        seller = await sellers.create_seller(session, "Bench", now=now)
        await tracking.insert_bulk_shipments(
            session, seller.id, [(n, c, [c], "US") for n, c in numbers(total)], now=now
        )
        await session.commit()
    await engine.dispose()


async def make_due_again(db_url: str, schema: str) -> int:
    """Every shipment still polled becomes due now; returns how many."""
    from sqlalchemy import update

    from tracker.db import engine_for
    from tracker.settings import DatabaseSettings
    from tracker.store.tracking import SCHEDULE

    engine = engine_for(DatabaseSettings(url=db_url, schema_name=schema))
    async with engine.begin() as conn:
        due = await conn.execute(
            update(SCHEDULE).where(SCHEDULE.c.next_poll_at.is_not(None)).values(next_poll_at=datetime.now(UTC))
        )
    await engine.dispose()
    return due.rowcount


async def stored_events(db_url: str, schema: str) -> int:
    """Events stored: a pass that finds nothing new must leave the count as it is."""
    from sqlalchemy import func, select

    from tracker.db import engine_for
    from tracker.settings import DatabaseSettings
    from tracker.store.tracking import EVENTS

    engine = engine_for(DatabaseSettings(url=db_url, schema_name=schema))
    async with engine.connect() as conn:
        events = (await conn.execute(select(func.count()).select_from(EVENTS))).scalar_one()
    await engine.dispose()
    return int(events)


def run_workers(
    db_url: str,
    schema: str,
    urls: dict[str, str],
    workers: int,
    total: int,
    share: CpuShare,
    *,
    overlap: bool,
    phases: bool = False,
    skip: tuple[str, ...] = (),
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--db-url",
        db_url,
        "--schema",
        schema,
        "--urls",
        json.dumps(urls),
        *(["--overlap"] if overlap else []),
        *(["--phases"] if phases else []),
        *(arg for kind in skip for arg in ("--skip-writes", kind)),
    ]
    with share:
        procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE) for _ in range(workers)]
        reports = []
        for p in procs:
            out, _ = p.communicate()
            if p.returncode != 0:
                raise RuntimeError("worker failed")
            reports.append(json.loads(out.decode().strip().splitlines()[-1]))
    claimed = sum(r["claimed"] for r in reports)
    if claimed != total:
        raise RuntimeError(f"workers refreshed {claimed} of {total} shipments")
    span = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    shares = {}
    if share.available:
        # the machine is read over the workers' whole lives (imports included)
        lives = share.busy_cores, sum(r["cpu"] for r in reports) / span, share.sim_cores, share.pg_cores
        shares = dict(zip(("busy_cores", "worker_cores", "simulator_cores", "postgres_cores"), lives, strict=True))
        # the workers' event-loop threads; the rest of a worker's CPU is its other threads
        # (aiosqlite runs each SQLite connection in a thread of its own)
        shares["loop_thread_cores"] = sum(r["loop_cpu"] for r in reports) / span
        # runnable but not running: the loop threads' wait for a CPU taken by something else
        shares["loop_waiting_cores"] = sum(r["loop_waited"] for r in reports) / span
        shares["machine_cpu_ms"] = 1000 * share.busy_cores * span / total
    if all("overlap" in r for r in reports):
        for key in ("loop_alone", "others_alone", "both", "neither"):
            shares[f"threads_{key}"] = sum(r["overlap"][key] for r in reports) / len(reports)
    if all("phases" in r for r in reports):
        shares["phases"] = {
            name: [sum(r["phases"][name][i] for r in reports) for i in range(4)] for name in reports[0]["phases"]
        }
    return {
        **shares,
        "rate": total / span,
        "rss_mib": max(r["rss_mib"] for r in reports),
        "seconds": span,
        # CPU time of the workers per refresh: steadier than the rate on a shared machine
        "cpu_ms": 1000 * sum(r["cpu"] for r in reports) / total,
    }


async def poll_again(
    db_url: str, schema: str, urls: dict[str, str], workers: int, sims: list[Any], args: argparse.Namespace, what: str
) -> tuple[int, dict[str, Any]]:
    """Every shipment still polled made due now and polled once more: (how many, the run).

    The simulators serve the same scans, so such a pass finds nothing new (checked)."""
    stored = await stored_events(db_url, schema)
    due = await make_due_again(db_url, schema)
    run = run_workers(db_url, schema, urls, workers, due, CpuShare(sims), overlap=args.overlap, phases=args.phases)
    if await stored_events(db_url, schema) != stored:
        raise RuntimeError(f"the {what} pass stored new events; it measures something else")
    return due, run


def print_share(run: dict[str, Any]) -> None:
    if "busy_cores" in run:
        print(
            f"  machine busy {run['busy_cores']:.2f} of {os.cpu_count()} cores: workers {run['worker_cores']:.2f}"
            f" (event-loop threads {run['loop_thread_cores']:.2f}, other threads"
            f" {max(0.0, run['worker_cores'] - run['loop_thread_cores']):.2f}),"
            f" simulators {run['simulator_cores']:.2f}, PostgreSQL {run['postgres_cores']:.2f};"
            f" {run['machine_cpu_ms']:.2f} ms of machine CPU a refresh;"
            f" event-loop threads waited for a CPU {run['loop_waiting_cores']:.2f} cores' worth"
        )
    if "threads_both" in run:
        print(
            f"  worker threads, share of 2 ms windows: event loop alone {run['threads_loop_alone']:.0%},"
            f" other threads alone {run['threads_others_alone']:.0%}, both {run['threads_both']:.1%},"
            f" neither {run['threads_neither']:.0%}"
        )
    if "phases" in run:
        print_phases(run["phases"], round(run["rate"] * run["seconds"]), run["seconds"])


#: the scale-out the tracking engine aims at: two PostgreSQL workers against one
SCALING_TARGET = 1.6


def print_scaling(label: str, one: dict[str, float], two: dict[str, float]) -> None:
    """Two workers' rate over one's, as its two factors: the machine cores they kept busy,
    and how much machine CPU each refresh took (rate = busy cores / CPU a refresh)."""
    if "busy_cores" not in one or "busy_cores" not in two:
        return
    cores = two["busy_cores"] / one["busy_cores"]
    cheaper = one["machine_cpu_ms"] / two["machine_cpu_ms"]
    print(
        f"postgresql, {label}: two workers {two['rate'] / one['rate']:.2f}x one = {cores:.2f}x the busy cores"
        f" ({one['busy_cores']:.2f} -> {two['busy_cores']:.2f} of {os.cpu_count()})"
        f" x {cheaper:.2f}x for the CPU a refresh ({one['machine_cpu_ms']:.2f} -> {two['machine_cpu_ms']:.2f} ms)"
    )
    # two workers at SCALING_TARGET times one worker's rate, on all of this machine's cores
    needed = 1000 * (os.cpu_count() or 1) / (SCALING_TARGET * one["rate"])
    print(
        f"  {SCALING_TARGET}x one worker on {os.cpu_count()} cores takes at most {needed:.2f} ms of machine CPU a"
        f" refresh with two workers, against {two['machine_cpu_ms']:.2f} ms measured"
    )


def share_figures(name: str, run: dict[str, float]) -> list[dict[str, Any]]:
    keys = (
        "busy_cores",
        "worker_cores",
        "loop_thread_cores",
        "loop_waiting_cores",
        "simulator_cores",
        "postgres_cores",
    )
    out = [figure(f"poll_{name}_{key}", run[key], "cores") for key in keys if key in run]
    if "machine_cpu_ms" in run:
        out.append(figure(f"poll_{name}_machine_cpu_per_refresh", run["machine_cpu_ms"], "ms"))
    windows = ("threads_loop_alone", "threads_others_alone", "threads_both", "threads_neither")
    return out + [figure(f"poll_{name}_{key}", run[key], "share") for key in windows if key in run]


async def main(args: argparse.Namespace) -> int:
    total = 10_000 if args.quick else 100_000
    urls, sims = start_simulators(args.simulator_nice)
    figures: list[dict[str, Any]] = []
    try:
        for url in urls.values():
            await wait_up(url)
        top = await ceiling(urls, 3.0 if args.quick else 6.0)
        print(f"ceiling (bare client loop): {top:,.0f} numbers/s")
        with tempfile.TemporaryDirectory() as tmp:
            db = f"sqlite:///{tmp}/bench.db"
            await prepare(db, "", total)
            sqlite = run_workers(db, "", urls, 1, total, CpuShare(sims), overlap=args.overlap, phases=args.phases)
            stored = await stored_events(db, "")
            # the same shipments again: a refresh that finds nothing new. Most parcels are
            # delivered by the simulators' clock, so this is mostly their confirming poll
            due, routine = await poll_again(db, "", urls, 1, sims, args, "routine")
            # and the parcels still in transit once more: the steady state of a running
            # service, where a poll finds what it stored and changes only the schedule
            steady_due, steady = await poll_again(db, "", urls, 1, sims, args, "steady")
        print(f"sqlite 1 worker: {sqlite['rate']:,.0f}/s ({sqlite['cpu_ms']:.2f} ms worker CPU a refresh)")
        print_share(sqlite)
        print(
            f"sqlite 1 worker, {due:,} routine refreshes (nothing new, {stored / total:.1f} stored events a shipment):"
            f" {routine['rate']:,.0f}/s ({routine['cpu_ms']:.2f} ms worker CPU a refresh)"
        )
        print_share(routine)
        print(
            f"sqlite 1 worker, {steady_due:,} steady refreshes (in transit, nothing new): {steady['rate']:,.0f}/s"
            f" ({steady['cpu_ms']:.2f} ms worker CPU a refresh)"
        )
        print_share(steady)
        figures.append(
            figure(
                "poll_refreshes_per_s_sqlite_1_worker",
                sqlite["rate"],
                "refreshes/s",
                baseline="simulator_ceiling_bare_client",
                baseline_value=top,
            )
        )
        figures.append(
            figure(
                "poll_routine_refreshes_per_s_sqlite_1_worker",
                routine["rate"],
                "refreshes/s",
                baseline="poll_refreshes_per_s_sqlite_1_worker",
                baseline_value=sqlite["rate"],
            )
        )
        figures.append(figure("poll_worker_cpu_per_routine_refresh_sqlite", routine["cpu_ms"], "ms"))
        figures.append(
            figure(
                "poll_steady_refreshes_per_s_sqlite_1_worker",
                steady["rate"],
                "refreshes/s",
                baseline="poll_refreshes_per_s_sqlite_1_worker",
                baseline_value=sqlite["rate"],
            )
        )
        figures.append(figure("poll_worker_cpu_per_steady_refresh_sqlite", steady["cpu_ms"], "ms"))
        figures.append(figure("poll_peak_rss_sqlite_worker", sqlite["rss_mib"], "MiB"))
        figures.append(figure("poll_worker_cpu_per_refresh_sqlite", sqlite["cpu_ms"], "ms"))
        figures.extend(share_figures("sqlite_1_worker", sqlite))
        pg_url = args.database_url or DEFAULT_PG
        if await pg_available(pg_url):
            results, routines, steadies = {}, {}, {}
            for workers in (1, 2):
                async with pg_schema(pg_url) as schema:
                    await prepare(pg_url, schema, total)
                    results[workers] = run_workers(
                        pg_url, schema, urls, workers, total, CpuShare(sims), overlap=args.overlap, phases=args.phases
                    )
                    # then the routine and steady passes, as on SQLite
                    due, routines[workers] = await poll_again(pg_url, schema, urls, workers, sims, args, "routine")
                    steady_due, steadies[workers] = await poll_again(
                        pg_url, schema, urls, workers, sims, args, "steady"
                    )
                print(
                    f"postgresql {workers} worker(s): {results[workers]['rate']:,.0f}/s"
                    f" ({results[workers]['cpu_ms']:.2f} ms worker CPU a refresh)"
                )
                print_share(results[workers])
                print(
                    f"postgresql {workers} worker(s), {due:,} routine refreshes: {routines[workers]['rate']:,.0f}/s"
                    f" ({routines[workers]['cpu_ms']:.2f} ms worker CPU a refresh)"
                )
                print_share(routines[workers])
                print(
                    f"postgresql {workers} worker(s), {steady_due:,} steady refreshes:"
                    f" {steadies[workers]['rate']:,.0f}/s ({steadies[workers]['cpu_ms']:.2f} ms worker CPU a refresh)"
                )
                print_share(steadies[workers])
            for label, runs in (("first polls", results), ("routine", routines), ("steady", steadies)):
                print_scaling(label, runs[1], runs[2])
            figures.append(
                figure(
                    "poll_refreshes_per_s_pg_1_worker",
                    results[1]["rate"],
                    "refreshes/s",
                    baseline="simulator_ceiling_bare_client",
                    baseline_value=top,
                )
            )
            figures.append(
                figure(
                    "poll_refreshes_per_s_pg_2_workers",
                    results[2]["rate"],
                    "refreshes/s",
                    baseline="pg_1_worker",
                    baseline_value=results[1]["rate"],
                )
            )
            figures.append(figure("poll_peak_rss_pg_worker", max(r["rss_mib"] for r in results.values()), "MiB"))
            figures.append(figure("poll_worker_cpu_per_refresh_pg_1_worker", results[1]["cpu_ms"], "ms"))
            for workers in (1, 2):
                figures.append(
                    figure(
                        f"poll_steady_refreshes_per_s_pg_{workers}_worker{'s' if workers > 1 else ''}",
                        steadies[workers]["rate"],
                        "refreshes/s",
                        baseline="pg_1_worker_steady" if workers > 1 else None,
                        baseline_value=steadies[1]["rate"] if workers > 1 else None,
                    )
                )
            figures.append(figure("poll_worker_cpu_per_steady_refresh_pg_1_worker", steadies[1]["cpu_ms"], "ms"))
            figures.extend(share_figures("pg_1_worker_steady", steadies[1]))
            figures.extend(share_figures("pg_1_worker", results[1]))
            figures.extend(share_figures("pg_2_workers", results[2]))
        else:
            print(f"PostgreSQL at {pg_url} not reachable: PG figures skipped")
        figures.append(figure("simulator_ceiling_bare_client", top, "numbers/s"))
    finally:
        for p in sims:
            p.terminate()
            p.wait()
    write("poll", figures, shipments=total, cpus=os.cpu_count(), simulator_nice=args.simulator_nice)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--database-url")
    parser.add_argument(
        "--overlap", action="store_true", help="sample how often a worker's threads run at once (perturbs a little)"
    )
    parser.add_argument(
        "--simulator-nice",
        type=int,
        default=SIMULATOR_NICE,
        help=f"run the simulators this many nice steps below normal priority ({SIMULATOR_NICE}; 0: equal)",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="time the steps of the workers' write transactions (bench/poll_phases.py; perturbs a little)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    parser.add_argument("--schema", default="", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    parser.add_argument("--skip-writes", action="append", choices=sorted(SKIPPABLE), help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.worker:
        from tracker.runtime import run

        run(worker_main(parsed))  # on the event loop `tracker worker` runs
        raise SystemExit(0)
    raise SystemExit(asyncio.run(main(parsed)))
