"""What every SQLite connection the service opens is set up with (`tracker.db`)."""

from pathlib import Path

from sqlalchemy import text

from tracker.db import SQLITE_CACHE_MB, engine_for
from tracker.settings import DatabaseSettings


async def _pragmas(path: Path, **settings: object) -> dict[str, object]:
    engine = engine_for(DatabaseSettings(url=f"sqlite:///{path}", **settings))
    try:
        async with engine.connect() as conn:
            return {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()
                for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "cache_size")
            }
    finally:
        await engine.dispose()


async def test_connections_get_wal_foreign_keys_and_the_default_cache(tmp_path: Path) -> None:
    pragmas = await _pragmas(tmp_path / "t.db")
    # a negative cache_size is a size in KiB rather than a page count
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 30000,
        "cache_size": -SQLITE_CACHE_MB * 1024,
    }
    assert DatabaseSettings().sqlite_cache_mb == SQLITE_CACHE_MB


async def test_the_page_cache_follows_the_setting(tmp_path: Path) -> None:
    pragmas = await _pragmas(tmp_path / "t.db", sqlite_cache_mb=3)
    assert pragmas["cache_size"] == -3 * 1024
