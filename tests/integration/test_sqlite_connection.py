"""What every SQLite connection the service opens is set up with (`tracker.db`)."""

from pathlib import Path

from sqlalchemy import text

from tracker.db import engine_for
from tracker.settings import DatabaseSettings


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
