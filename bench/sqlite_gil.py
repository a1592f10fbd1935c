"""Why a polling worker's event loop and its SQLite connection thread take turns.

aiosqlite runs each SQLite connection in a thread of its own. The sqlite3 module lets go of
the GIL around every `sqlite3_step` and takes it back after, so a statement that writes N
rows by `executemany` takes the GIL back N times. While another thread of the process is
busy in Python (a polling worker's event loop, parsing the next carrier answers), each of
those waits until that thread gives the GIL up, up to `sys.getswitchinterval()`.

This script inserts the same event-like rows (16 columns, three indexes, one transaction,
rolled back) in three ways, first with the process otherwise idle and then beside a thread
that only counts in Python:
- `executemany`, as `tracker.store.bulk` does on SQLite;
- multi-row VALUES statements (up to SQLite's 32,766 parameters each): one step each;
- one `INSERT ... SELECT FROM json_each(?)` over the rows as one JSON text: one step.
Each figure is the best of a few rounds; the baseline of each contended figure is the same
way of writing measured idle in the same run. Writes bench/out/sqlite_gil.json.

    .venv/bin/python bench/sqlite_gil.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import figure, write

COLUMNS = [f"c{i}" for i in range(16)]
MAX_PARAMETERS = 32766


def rows(total: int) -> list[tuple[object, ...]]:
    # a dozen events a shipment, a 64-character fingerprint, text columns, an integer
    return [
        (f"shp_{i // 12:08d}", f"{i:064x}", "2026-11-28 00:00:00.000000", *["depot scan text"] * 12, i)
        for i in range(total)
    ]


def writers(db: sqlite3.Connection, data: list[tuple[object, ...]]) -> dict[str, Callable[[], None]]:
    names = ", ".join(COLUMNS)
    row = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    per = MAX_PARAMETERS // len(COLUMNS)

    def executemany() -> None:
        db.executemany(f"INSERT INTO ev ({names}) VALUES {row}", data)

    def values() -> None:
        for start in range(0, len(data), per):
            chunk = data[start : start + per]
            sql = f"INSERT INTO ev ({names}) VALUES {', '.join([row] * len(chunk))}"
            db.execute(sql, [v for r in chunk for v in r])

    def json_each() -> None:
        picks = ", ".join(f"value ->> {i}" for i in range(len(COLUMNS)))
        db.execute(f"INSERT INTO ev ({names}) SELECT {picks} FROM json_each(?)", (json.dumps(data),))

    return {"executemany": executemany, "values": values, "json_each": json_each}


def timed(db: sqlite3.Connection, write_rows: Callable[[], None], *, contended: bool) -> float:
    """Seconds one insert takes in a thread of its own, beside a counting thread or not."""
    stop = threading.Event()

    def count() -> None:
        n = 0
        while not stop.is_set():
            for i in range(1000):
                n += i

    counter = threading.Thread(target=count)
    if contended:
        counter.start()
    took: list[float] = []

    def insert() -> None:
        db.execute("BEGIN")
        start = time.perf_counter()
        write_rows()
        took.append(time.perf_counter() - start)
        db.execute("ROLLBACK")

    inserting = threading.Thread(target=insert)
    inserting.start()
    inserting.join()
    stop.set()
    if contended:
        counter.join()
    return took[0]


def main(quick: bool) -> int:
    total = 3_000 if quick else 24_000
    rounds = 3
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(f"{tmp}/gil.db", check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(f"CREATE TABLE ev (id INTEGER PRIMARY KEY, {', '.join(COLUMNS)})")
        db.execute("CREATE UNIQUE INDEX ev_fp ON ev (c0, c1)")
        db.execute("CREATE INDEX ev_time ON ev (c0, c2)")
        figures = []
        for name, write_rows in writers(db, rows(total)).items():
            idle = min(timed(db, write_rows, contended=False) for _ in range(rounds))
            busy = min(timed(db, write_rows, contended=True) for _ in range(rounds))
            print(f"{name}: {total:,} rows in {idle * 1000:,.0f} ms idle, {busy * 1000:,.0f} ms beside a busy thread")
            figures.append(figure(f"sqlite_insert_{name}_ms_idle", idle * 1000, "ms"))
            figures.append(
                figure(
                    f"sqlite_insert_{name}_ms_beside_busy_thread",
                    busy * 1000,
                    "ms",
                    baseline=f"sqlite_insert_{name}_ms_idle",
                    baseline_value=idle * 1000,
                )
            )
        db.close()
    write("sqlite_gil", figures, rows=total, switch_interval_s=sys.getswitchinterval(), sqlite=sqlite3.sqlite_version)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    raise SystemExit(main(parser.parse_args().quick))
