"""config.toml + TRACKER_* environment overrides -> typed, validated settings.

Nothing reads the environment or the file at import time: `load_settings` is called by the
CLI, and tests build `Settings` directly.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tracker.customs.config import CustomsSettings

#: the standard the product follows keeps orders at least 12 months
MIN_RETENTION_MONTHS = 12


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    trust_forwarded_for: bool = False
    #: "uvloop" (where installed, else asyncio's loop) or "asyncio"
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")


class DatabaseSettings(_Section):
    url: str = "sqlite:///tracker.db"
    #: PostgreSQL schema to use (search_path); empty means the server default
    schema_name: str = Field(default="", pattern=r"^[a-z_][a-z0-9_]*$|^$")
    echo: bool = False
    pool_size: int = Field(default=10, ge=1)


class RetentionSettings(_Section):
    months: int = 36
    purge_batch: int = Field(default=1000, ge=1)

    @field_validator("months")
    @classmethod
    def _at_least_twelve(cls, v: int) -> int:
        if v < MIN_RETENTION_MONTHS:
            raise ValueError(
                f"retention.months = {v} is below the {MIN_RETENTION_MONTHS} months the "
                "cross-border e-commerce standard requires for order records"
            )
        return v


class LoggingSettings(_Section):
    level: str = "INFO"
    json_lines: bool = True


class PollingSettings(_Section):
    tick_seconds: float = Field(default=10.0, gt=0)
    lease_seconds: float = Field(default=120.0, gt=0)
    claim_limit: int = Field(default=500, ge=1)
    concurrency_per_carrier: int = Field(default=4, ge=1)
    jitter: float = Field(default=0.1, ge=0, le=0.5)
    #: longest in-cycle wait for a carrier's rate limit; longer waits reschedule the batch
    max_token_wait_seconds: float = Field(default=5.0, ge=0)
    #: consecutive failed calls that open a carrier's circuit breaker, and how long it stays open
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=60.0, ge=0)
    #: delivered shipments a lane needs before its transit times give an ETA
    eta_min_samples: int = Field(default=20, ge=1)


class WebhookSettings(_Section):
    allow_loopback: bool = False
    timeout_seconds: float = Field(default=15.0, gt=0)
    concurrency_per_endpoint: int = Field(default=4, ge=1)
    disable_after_days: float = Field(default=5.0, gt=0)
    rotation_overlap_hours: float = Field(default=24.0, ge=0)
    tick_seconds: float = Field(default=1.0, gt=0)


class EmailSettings(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 25
    use_tls: bool = False
    start_tls: bool = False
    username: str = ""
    password: str = ""
    from_address: str = "tracking@localhost"
    timeout_seconds: float = 10.0


class AlertOverride(_Section):
    """Thresholds that replace the defaults for one carrier or one lane; unset keeps the default."""

    pending_too_long_hours: float | None = Field(default=None, gt=0)
    stalled_days: float | None = Field(default=None, gt=0)
    late_grace_hours: float | None = Field(default=None, ge=0)
    lost_days: float | None = Field(default=None, gt=0)
    customs_days: float | None = Field(default=None, gt=0)


class AlertSettings(_Section):
    enabled: bool = True
    tick_seconds: float = Field(default=900.0, gt=0)
    #: shipments handled per rule per transaction, so one scan never holds a huge transaction
    batch_size: int = Field(default=2000, ge=1)
    pending_too_long_hours: float = Field(default=48.0, gt=0)
    stalled_days_express: float = Field(default=5.0, gt=0)
    stalled_days_postal: float = Field(default=10.0, gt=0)
    express_carriers: list[str] = Field(default_factory=lambda: ["dhl", "ups", "fedex", "sf_express"])
    late_grace_hours: float = Field(default=24.0, ge=0)
    lost_days: float = Field(default=20.0, gt=0)
    customs_days: float = Field(default=4.0, gt=0)
    #: per carrier code, e.g. [alerts.carriers.usps]
    carriers: dict[str, AlertOverride] = Field(default_factory=dict)
    #: per lane "ORIGIN-DEST" (ISO alpha-2), e.g. [alerts.lanes.CN-BR]; a lane beats a carrier
    lanes: dict[str, AlertOverride] = Field(default_factory=dict)

    @field_validator("lanes")
    @classmethod
    def _lane_keys(cls, v: dict[str, AlertOverride]) -> dict[str, AlertOverride]:
        for key in v:
            origin, sep, dest = key.partition("-")
            if not sep or len(origin) != 2 or len(dest) != 2 or not (origin + dest).isalpha():
                raise ValueError(f"lane {key!r} must look like CN-US (origin-destination country codes)")
        return {k.upper(): o for k, o in v.items()}


class CarrierConfig(_Section):
    model_config = ConfigDict(extra="allow", frozen=True)

    enabled: bool = True
    base_url: str = ""
    api_key: str = ""
    client_id: str = ""
    client_secret: str = ""
    account: str = ""
    webhook_secret: str = ""
    timeout: float = 20.0
    #: requests per second and burst; 0 keeps the adapter's documented default
    rate_per_second: float = 0.0
    burst: int = 0
    #: polling intervals for this carrier (PollPolicy fields); 0 keeps the default
    poll_pending_first_hours: float = Field(default=0.0, ge=0)
    poll_pending_hours: float = Field(default=0.0, ge=0)
    poll_in_transit_hours: float = Field(default=0.0, ge=0)
    poll_exception_hours: float = Field(default=0.0, ge=0)
    poll_customs_hours: float = Field(default=0.0, ge=0)
    poll_last_mile_hours: float = Field(default=0.0, ge=0)
    poll_confirm_terminal_hours: float = Field(default=0.0, ge=0)
    expire_after_days: float = Field(default=0.0, ge=0)


class Settings(_Section):
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    retention: RetentionSettings = RetentionSettings()
    logging: LoggingSettings = LoggingSettings()
    polling: PollingSettings = PollingSettings()
    webhooks: WebhookSettings = WebhookSettings()
    email: EmailSettings = EmailSettings()
    alerts: AlertSettings = AlertSettings()
    customs: CustomsSettings = CustomsSettings()
    carriers: dict[str, CarrierConfig] = Field(default_factory=dict)
    #: start the in-process carrier simulator and point carriers without credentials at it
    demo: bool = False
    config_path: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Settings:
        return self

    def has_carrier_credentials(self) -> bool:
        return any(c.enabled and (c.api_key or c.client_id) and c.base_url for c in self.carriers.values())


_ENV_MAP: dict[str, tuple[str, str]] = {
    "TRACKER_DATABASE_URL": ("database", "url"),
    "TRACKER_PORT": ("server", "port"),
    "TRACKER_HOST": ("server", "host"),
    "TRACKER_PUBLIC_URL": ("server", "public_url"),
    "TRACKER_SMTP_HOST": ("email", "host"),
    "TRACKER_SMTP_PORT": ("email", "port"),
    "TRACKER_SMTP_USERNAME": ("email", "username"),
    "TRACKER_SMTP_PASSWORD": ("email", "password"),
    "TRACKER_WEBHOOKS_ALLOW_LOOPBACK": ("webhooks", "allow_loopback"),
    "TRACKER_RETENTION_MONTHS": ("retention", "months"),
    "TRACKER_LOG_LEVEL": ("logging", "level"),
}


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read `path` (or $TRACKER_CONFIG, or ./config.toml when present) and apply env overrides."""
    env = os.environ if env is None else env
    chosen = path or env.get("TRACKER_CONFIG")
    data: dict[str, Any] = {}
    if chosen is None and Path("config.toml").is_file():
        chosen = "config.toml"
    if chosen is not None:
        with open(chosen, "rb") as fh:
            data = tomllib.load(fh)
        data["config_path"] = str(Path(chosen).resolve())
    for var, (section, key) in _ENV_MAP.items():
        if var in env:
            raw: Any = env[var]
            if key == "allow_loopback":
                raw = _env_bool(raw)
            data.setdefault(section, {})[key] = raw
    for code, table in (data.get("carriers") or {}).items():
        # secrets may come from the environment: TRACKER_CARRIER_DHL_API_KEY and so on
        prefix = f"TRACKER_CARRIER_{code.upper().replace('-', '_')}_"
        for field_name in ("api_key", "client_id", "client_secret", "account", "webhook_secret", "base_url"):
            if prefix + field_name.upper() in env:
                table[field_name] = env[prefix + field_name.upper()]
    return Settings.model_validate(data)
