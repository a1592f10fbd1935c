"""300 SDR decides CN22 or CN23: the SDR computed from ECB reference rates and the IMF basket.

The IMF values the SDR at London noon rates; ECB rates give an approximation good enough to
choose a form (not to assess duty)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from tracker.customs import codes

CN22_LIMIT_SDR = Decimal(300)


class RateUnavailable(LookupError):
    """No rate for the currency, or the bundled basket has expired."""


@dataclass(frozen=True, slots=True)
class Rates:
    """Units of each currency per 1 EUR, with where they came from."""

    per_eur: dict[str, Decimal]
    as_of: str
    source: str
    basket: dict[str, Decimal]
    basket_valid_until: date

    @classmethod
    def bundled(cls, overrides: dict[str, str] | None = None, as_of: str | None = None) -> Rates:
        ecb = codes.load("ecb_rates")
        per_eur = {k: Decimal(v) for k, v in ecb["rates"].items()}
        per_eur["EUR"] = Decimal(1)
        source = "ECB reference rates (bundled)"
        if overrides:
            per_eur.update({k.upper(): Decimal(v) for k, v in overrides.items()})
            source = "ECB reference rates with configured overrides"
        basket = codes.load("sdr_basket")
        return cls(
            per_eur,
            as_of or str(ecb["effective_date"]),
            source,
            {k: Decimal(v) for k, v in basket["amounts"].items()},
            date.fromisoformat(basket["valid_until"]),
        )

    def sdr_in_eur(self, on: date) -> Decimal:
        if on > self.basket_valid_until:
            raise RateUnavailable(f"the SDR basket bundled here expired on {self.basket_valid_until}")
        return sum((amount / self.per_eur[cur] for cur, amount in self.basket.items()), Decimal(0))

    def to_sdr(self, amount: Decimal, currency: str, on: date) -> Decimal:
        rate = self.per_eur.get(currency.upper())
        if rate is None:
            raise RateUnavailable(f"no exchange rate for {currency}")
        return (amount / rate / self.sdr_in_eur(on)).quantize(Decimal("0.01"), ROUND_HALF_UP)

    def limit_in(self, currency: str, on: date) -> Decimal:
        rate = self.per_eur.get(currency.upper())
        if rate is None:
            raise RateUnavailable(f"no exchange rate for {currency}")
        return (CN22_LIMIT_SDR * self.sdr_in_eur(on) * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)


def postal_form(value_sdr: Decimal) -> str:
    """UPU: CN22 up to 300 SDR, CN23 above."""
    return "cn22" if value_sdr <= CN22_LIMIT_SDR else "cn23"
