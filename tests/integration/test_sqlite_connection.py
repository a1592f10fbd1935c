"""What every SQLite connection the service opens is set up with (`tracker.db`)."""

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tracker import keys
from tracker.app import create_app, database_ctx
from tracker.db import FALLBACK_CHECKPOINT_PAGES, WalCheckpointer, background_checkpoints, engine_for
from tracker.settings import DatabaseSettings, Settings


async def test_connections_get_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = engine_for(DatabaseSettings(url=f"sqlite:///{tmp_path / 't.db'}"))
    try:
        async with engine.connect() as conn:
            pragmas = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
    finally:
        await engine.dispose()
    # synchronous 1 is NORMAL: in WAL mode a commit survives a crash of the process
    assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 30000}


async def _write_rows(engine: AsyncEngine, count: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)"))
        for _ in range(count):
            await conn.execute(text("INSERT INTO t (body) VALUES (:b)"), {"b": "x" * 3000})


async def test_background_checkpoints_copy_the_log_back_from_their_own_connection(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    engine = engine_for(DatabaseSettings(url=f"sqlite:///{path}"))
    try:
        async with background_checkpoints(engine, interval=3600) as checkpointer:
            assert checkpointer is not None
            async with engine.connect() as conn:
                # committing connections leave the copying to the thread, up to a fallback
                threshold = (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
            assert threshold == FALLBACK_CHECKPOINT_PAGES
            await _write_rows(engine, 1500)
            logged, copied = checkpointer.checkpoint()
            # past SQLite's default of 1,000 pages, and nobody but the checkpointer copied them
            assert logged > 1000
            assert copied == logged
            await _write_rows(engine, 10)
        # leaving the context copies back what the log still held
        assert checkpointer.failures == 0
        async with engine.connect() as conn:
            busy, logged, copied = (await conn.execute(text("PRAGMA wal_checkpoint(PASSIVE)"))).one()
        assert (busy, copied) == (0, logged)
    finally:
        await engine.dispose()
    # a connection opened after the context ends checkpoints at SQLite's default again
    engine = engine_for(DatabaseSettings(url=f"sqlite:///{path}"))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == 1000
    finally:
        await engine.dispose()


async def test_a_failed_background_checkpoint_is_counted_and_the_next_one_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.db"
    engine = engine_for(DatabaseSettings(url=f"sqlite:///{path}"))
    try:
        await _write_rows(engine, 5)
    finally:
        await engine.dispose()
    checkpointer = WalCheckpointer(str(path), interval=3600)

    def disk_error() -> tuple[int, int]:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(checkpointer, "checkpoint", disk_error)
        assert checkpointer.run_once() is False
    assert checkpointer.failures == 1
    assert checkpointer.run_once() is True
    checkpointer.stop()
    assert checkpointer.failures == 1


async def test_no_background_checkpoints_off_sqlite_files(tmp_path: Path) -> None:
    engine = engine_for(DatabaseSettings(url="sqlite:///:memory:"))
    try:
        async with background_checkpoints(engine) as checkpointer:
            assert checkpointer is None
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("run_jobs", "threshold"), [(True, FALLBACK_CHECKPOINT_PAGES), (False, 1000)])
async def test_processes_that_run_jobs_checkpoint_in_the_background(
    tmp_path: Path, run_jobs: bool, threshold: int
) -> None:
    settings = Settings.model_validate({"database": {"url": f"sqlite:///{tmp_path / 't.db'}"}})
    app = create_app(settings, run_jobs=run_jobs)
    context = database_ctx(app)
    await anext(context)
    try:
        async with app[keys.ENGINE].connect() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one() == threshold
    finally:
        with pytest.raises(StopAsyncIteration):
            await anext(context)
