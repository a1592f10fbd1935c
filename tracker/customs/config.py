"""The `[customs]` table of config.toml (wired into Settings by the integrator as `customs`)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CustomsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: worker processes rendering PDFs
    pdf_workers: int = Field(default=2, ge=1, le=32)
    #: bytes of rendered PDFs kept in memory, keyed by content hash
    pdf_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    #: units of currency per 1 EUR, overriding the bundled ECB reference rates (e.g. {"USD": "1.08"})
    rates: dict[str, str] = Field(default_factory=dict)
    #: the date those rates are for (shown on the CN22/CN23 choice)
    rates_date: str | None = None

    @field_validator("rates")
    @classmethod
    def _positive(cls, v: dict[str, str]) -> dict[str, str]:
        for code, rate in v.items():
            try:
                ok = Decimal(rate) > 0
            except InvalidOperation:
                ok = False
            if not ok or len(code) != 3:
                raise ValueError(f"rate for {code!r} must be a positive decimal per 1 EUR")
        return {k.upper(): r for k, r in v.items()}
