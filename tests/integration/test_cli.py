"""The `tracker` command as an operator uses it, in real subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tracker.settings import DatabaseSettings


def _config(tmp_path: Path, db: DatabaseSettings, port: int = 0, extra: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[server]\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
        f'[database]\nurl = "{db.url}"\nschema_name = "{db.schema_name}"\n'
        '[logging]\nlevel = "WARNING"\n' + extra
    )
    return cfg


def tracker(*args: str, cfg: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRACKER_CONFIG": str(cfg)}
    proc = subprocess.run([sys.executable, "-m", "tracker.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_migrate_seller_and_keys(tmp_path: Path, db_settings: DatabaseSettings) -> None:
    cfg = _config(tmp_path, db_settings)
    assert "latest schema" in tracker("migrate", cfg=cfg).stdout
    seller = json.loads(tracker("seller", "create", "Shenzhen Gadgets", "--json", cfg=cfg).stdout)
    assert seller["id"].startswith("sel_") and seller["api_key"].startswith("trk_")
    key = json.loads(tracker("key", "create", "--seller", seller["id"], "--scopes",
                             "shipments:read,declarations:review", "--json", cfg=cfg).stdout)
    assert key["scopes"] == ["shipments:read", "declarations:review"]
    assert key["api_key"] != seller["api_key"]
    bad = tracker("key", "create", "--seller", seller["id"], "--scopes", "everything", "--json", cfg=cfg, check=False)
    assert bad.returncode == 2 and "unknown scopes" in bad.stderr
    missing = tracker("key", "create", "--seller", "sel_nope", "--json", cfg=cfg, check=False)
    assert missing.returncode == 2
    revoked = json.loads(tracker("key", "revoke", key["key_prefix"], "--json", cfg=cfg).stdout)
    assert revoked["revoked_at"]
    platform = json.loads(tracker("seller", "create", "Market", "--kind", "platform", "--json", cfg=cfg).stdout)
    merchant = json.loads(tracker("seller", "create", "Shop", "--parent", platform["id"], "--json", cfg=cfg).stdout)
    assert merchant["kind"] == "trading_company"
    orphan = tracker("seller", "create", "Shop2", "--parent", seller["id"], "--json", cfg=cfg, check=False)
    assert orphan.returncode == 2 and "platform" in orphan.stderr


def test_retention_below_twelve_months_refused_at_start(tmp_path: Path, db_settings: DatabaseSettings) -> None:
    cfg = _config(tmp_path, db_settings, extra="[retention]\nmonths = 6\n")
    proc = tracker("serve", cfg=cfg, check=False)
    assert proc.returncode != 0
    assert "12 months" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_serve_answers_and_stops_cleanly(tmp_path: Path, db_settings: DatabaseSettings) -> None:
    port = free_port()
    cfg = _config(tmp_path, db_settings, port=port)
    tracker("migrate", cfg=cfg)
    seller = json.loads(tracker("seller", "create", "Live Co", "--json", cfg=cfg).stdout)
    env = {**os.environ, "TRACKER_CONFIG": str(cfg)}
    proc = subprocess.Popen([sys.executable, "-m", "tracker.cli", "serve", "--no-jobs"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    assert json.loads(resp.read())["database"] == "ok"
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        body = json.dumps({"tracking_number": "LX123456785CN", "order_number": "A-1",
                           "destination": {"country": "DE"}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/shipments", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {seller['api_key']}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 201
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert seller["api_key"] not in err


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_worker_runs_on_the_configured_loop_and_settles_the_collector(
    tmp_path: Path, db_settings: DatabaseSettings, loop: str
) -> None:
    cfg = _config(tmp_path, db_settings)
    text = cfg.read_text().replace('level = "WARNING"', 'level = "INFO"')
    cfg.write_text(text.replace("[server]\n", f'[server]\nevent_loop = "{loop}"\n'))
    tracker("migrate", cfg=cfg)
    env = {**os.environ, "TRACKER_CONFIG": str(cfg)}
    proc = subprocess.Popen([sys.executable, "-m", "tracker.cli", "worker"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            records.append(json.loads(line))
            if records[-1]["msg"] == "worker started":
                break
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    messages = [r["msg"] for r in records]
    assert "worker started" in messages, messages
    settled = records[messages.index("startup objects frozen")]
    assert settled["objects"] > 20_000
    assert messages.index("startup objects frozen") < messages.index("worker started")
    assert records[messages.index("worker started")]["event_loop"] == loop
    assert proc.returncode == 0
