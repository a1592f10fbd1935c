"""A dispatcher in a child process, so a test can SIGKILL it mid-delivery.

python tests/integration/webhook_worker.py DB_URL SCHEMA NOW_ISO OWNER [once|drain]

`once` runs one pass (`run_once`), `drain` the periodic job's continuous dispatcher.
"""

from __future__ import annotations

import sys
from datetime import datetime

from tracker import runtime
from tracker.db import create_engine, create_sessionmaker
from tracker.settings import WebhookSettings
from tracker.webhooks.dispatcher import drain, run_once
from tracker.webhooks.sender import make_session


async def main(url: str, schema: str, now_iso: str, owner: str, mode: str = "once") -> int:
    engine = create_engine(url, schema=schema)
    http = make_session(allow_loopback=True)
    now = datetime.fromisoformat(now_iso)
    settings = WebhookSettings(allow_loopback=True)
    try:
        if mode == "drain":
            return await drain(engine, http, clock=lambda: now, settings=settings, owner=owner, rand=lambda: 0.5)
        return await run_once(
            create_sessionmaker(engine), http, now=now, settings=settings, owner=owner, rand=lambda: 0.5
        )
    finally:
        await http.close()
        await engine.dispose()


if __name__ == "__main__":
    # on the event loop `tracker worker` runs
    sent = runtime.run(main(*sys.argv[1:6]))
    sys.stdout.write(f"{sent}\n")
