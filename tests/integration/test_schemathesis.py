"""Schemathesis against /openapi.json on a live server: no server error, no undocumented
status, content type or body shape."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import FakeClock, make_account
from tracker.app import create_app
from tracker.settings import Settings

ST = Path(sys.executable).parent / "st"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.skipif(not ST.exists() and shutil.which("st") is None, reason="schemathesis is not installed")
async def test_schemathesis_finds_nothing(settings: Settings, clock: FakeClock, tmp_path: Path, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the HTTP layer is fuzzed once; the database tests cover PostgreSQL")
    port = free_port()
    app = create_app(settings.model_copy(update={"server": settings.server.model_copy(
        update={"public_url": f"http://127.0.0.1:{port}"})}), clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        account = await make_account(app, "Fuzz Co", clock)
        # one worker: schemathesis' workers are threads, and CPython 3.11's AST constructor
        # keeps one recursion counter per interpreter, so Hypothesis parsing lambdas in two
        # threads at once can fail with "AST constructor recursion depth mismatch"
        # (python/cpython#106905), a crash of the tool, not a finding about our API
        proc = await asyncio.create_subprocess_exec(
            str(ST) if ST.exists() else "st", "run", f"http://127.0.0.1:{port}/openapi.json",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_schema_conformance",
            "--header", f"Authorization: Bearer {account.api_key}",
            "--max-examples", "8", "--workers", "1", "--seed", "1", "--no-color",
            "--max-time", "75",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=400)
    finally:
        await runner.cleanup()
    text = out.decode(errors="replace")
    (tmp_path / "schemathesis.txt").write_text(text)
    assert proc.returncode == 0, text[-6000:]
