"""Helpers shared by the benchmark scripts: figures, JSON output, temporary databases."""

from __future__ import annotations

import json
import os
import resource
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "bench" / "out"
DEFAULT_PG = os.environ.get("TRACKER_BENCH_PG_URL") or os.environ.get(
    "TRACKER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def figure(
    metric: str, value: float, unit: str, *, baseline: str | None = None, baseline_value: float | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"metric": metric, "value": round(value, 3), "unit": unit}
    if baseline is not None and baseline_value:
        out.update(baseline=baseline, baseline_value=round(baseline_value, 3), ratio=round(value / baseline_value, 3))
    return out


def write(name: str, figures: list[dict[str, Any]], **meta: Any) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps({"figures": figures, **meta}, indent=2) + "\n")
    for f in figures:
        line = f"{f['metric']:<48} {f['value']:>12,.3f} {f['unit']}"
        if "ratio" in f:
            line += f"   (baseline {f['baseline']}: {f['baseline_value']:,.3f}; ratio {f['ratio']:.2f})"
        print(line)
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started its program.

    Linux's `ru_maxrss` is no good for a child the benchmark starts: a forked child inherits
    its parent's peak, and exec keeps it, so a worker started after the benchmark seeded
    100,000 shipments reported the parent's 299 MiB. `VmHWM` is the high-water mark of
    the memory the process has now, which exec replaced."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@asynccontextmanager
async def pg_schema(url: str = DEFAULT_PG) -> AsyncIterator[str]:
    """A fresh PostgreSQL schema for one benchmark, dropped afterwards."""
    import asyncpg

    schema = "bench_" + secrets.token_hex(4)
    conn = await asyncpg.connect(pg_dsn(url))
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


def pg_dsn(url: str = DEFAULT_PG) -> str:
    """`url` as asyncpg's own `connect` takes it (no SQLAlchemy driver name)."""
    from tracker.db import async_url

    return async_url(url).replace("postgresql+asyncpg", "postgresql")


def backend_cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (a PostgreSQL backend: `pg_backend_pid()`), in
    seconds, counted in clock ticks (10 ms)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def reachable_pg(url: str | None) -> str | None:
    """The PostgreSQL URL a script measures on (`url`, else `DEFAULT_PG`); None, said on
    stdout, when no server answers there."""
    url = url or DEFAULT_PG
    if await pg_available(url):
        return url
    print(f"PostgreSQL at {url} not reachable: nothing measured")
    return None


async def pg_available(url: str = DEFAULT_PG) -> bool:
    try:
        import asyncpg

        conn = await asyncpg.connect(pg_dsn(url), timeout=3)
        await conn.close()
        return True
    except Exception:
        return False
