"""config.toml is complete and valid; env overrides; retention below 12 months refused."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from tracker.settings import CarrierConfig, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


def test_config_toml_documents_every_setting() -> None:
    data = tomllib.loads((ROOT / "config.toml").read_text())
    text = (ROOT / "config.toml").read_text()
    for section, model in Settings.model_fields.items():
        if section in ("carriers", "demo", "config_path"):
            continue
        sub: Any = model.annotation
        assert section in data, f"[{section}] missing from config.toml"
        assert set(data[section]) == _fields(sub), section
    for code, table in data["carriers"].items():
        assert set(table) <= _fields(CarrierConfig), code
    # every setting line is preceded by a comment (carrier tables share one block comment)
    lines = text.splitlines()
    section = ""
    for i, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip("[]")
        if "=" in line and not line.lstrip().startswith("#") and not section.startswith("carriers."):
            above = [prior for prior in lines[max(0, i - 6) : i] if prior.strip()]
            assert any(p.lstrip().startswith("#") for p in above), f"uncommented setting: {line}"


def test_load_and_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nport = 9000\n[carriers.dhl]\napi_key = "from-file"\n')
    s = load_settings(
        cfg,
        env={
            "TRACKER_PORT": "9100",
            "TRACKER_DATABASE_URL": "postgresql://u@h/db",
            "TRACKER_WEBHOOKS_ALLOW_LOOPBACK": "1",
            "TRACKER_CARRIER_DHL_API_KEY": "from-env",
            "TRACKER_SMTP_HOST": "mail.test",
            "TRACKER_SMTP_PORT": "2525",
        },
    )
    assert s.server.port == 9100
    assert s.database.url == "postgresql://u@h/db"
    assert s.webhooks.allow_loopback is True
    assert s.carriers["dhl"].api_key == "from-env"
    assert (s.email.host, s.email.port) == ("mail.test", 2525)
    via_env = load_settings(None, env={"TRACKER_CONFIG": str(cfg)})
    assert via_env.server.port == 9000


@pytest.mark.parametrize("months", [0, 6, 11])
def test_retention_below_twelve_months_is_refused(tmp_path: Path, months: int) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[retention]\nmonths = {months}\n")
    with pytest.raises(ValidationError, match="12 months"):
        load_settings(cfg, env={})
    with pytest.raises(ValidationError):
        load_settings(None, env={"TRACKER_RETENTION_MONTHS": str(months)})


def test_unknown_settings_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nprot = 1\n")
    with pytest.raises(ValidationError, match="prot"):
        load_settings(cfg, env={})


def test_event_loop_is_uvloop_or_asyncio(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    assert load_settings(None, env={}).server.event_loop == "uvloop"
    cfg.write_text('[server]\nevent_loop = "asyncio"\n')
    assert load_settings(cfg, env={}).server.event_loop == "asyncio"
    cfg.write_text('[server]\nevent_loop = "trio"\n')
    with pytest.raises(ValidationError, match="event_loop"):
        load_settings(cfg, env={})
