"""Code tables shipped as data files; each carries its source and effective date."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
INCOTERMS_2020: frozenset[str] = frozenset(
    {"EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF"}
)


@dataclass(frozen=True, slots=True)
class Country:
    alpha2: str
    alpha3: str
    numeric: str
    name: str
    customs_old: str | None


@dataclass(frozen=True, slots=True)
class Currency:
    alpha3: str
    numeric: str
    name: str
    minor_units: int
    customs_old: str | None


@cache
def load(name: str) -> dict[str, Any]:
    with (DATA / f"{name}.json").open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    if "source" not in data or "effective_date" not in data:
        raise ValueError(f"code table {name} has no source or effective date")
    return data


def tables() -> list[dict[str, str]]:
    """Every table with its source and effective date (shown in docs and the clerk page)."""
    out = []
    for path in sorted(DATA.glob("*.json")):
        data = load(path.stem)
        out.append({"table": path.stem, "source": str(data["source"]), "effective_date": str(data["effective_date"])})
    return out


@cache
def hs2022() -> frozenset[str]:
    return frozenset(load("hs2022")["codes"])


def hs_description(code6: str) -> str | None:
    value = load("hs2022")["codes"].get(code6)
    return str(value) if value is not None else None


@cache
def countries() -> dict[str, Country]:
    return {
        e["alpha2"]: Country(e["alpha2"], e["alpha3"], e["numeric"], e["name"], e["customs_old"])
        for e in load("countries")["entries"]
    }


def country(alpha2: str) -> Country | None:
    return countries().get(alpha2.upper())


@cache
def currencies() -> dict[str, Currency]:
    return {
        e["alpha3"]: Currency(e["alpha3"], e["numeric"], e["name"], int(e["minor_units"]), e["customs_old"])
        for e in load("currencies")["entries"]
    }


def currency(alpha3: str) -> Currency | None:
    return currencies().get(alpha3.upper())


def _entries(table: str, key: str = "entries") -> dict[str, dict[str, str]]:
    return {e["code"]: e for e in load(table)[key]}


def unit(code_or_alias: str) -> dict[str, str] | None:
    """A China 3-digit unit code, or a common alias (PCS, KG...) resolved to one."""
    table = load("units")
    raw = code_or_alias.strip().upper()
    code = table["aliases"].get(raw, raw)
    return _entries("units").get(code)


def package_type(code: str) -> dict[str, str] | None:
    return _entries("package_types").get(code)


def supervision_mode(code: str) -> dict[str, str] | None:
    return _entries("supervision_modes").get(code)


def transport_mode(code: str) -> dict[str, str] | None:
    return _entries("transport_modes").get(code)


def levy_type(code: str) -> dict[str, str] | None:
    return _entries("levy_types").get(code)


def duty_mode(code: str) -> dict[str, str] | None:
    return _entries("levy_types", "duty_modes").get(code)


def customs_office(code: str) -> dict[str, str] | None:
    return _entries("customs_offices").get(code)


def domestic_port(code: str) -> dict[str, str] | None:
    return _entries("ports", "domestic").get(code)


def destination_port(code: str) -> dict[str, str] | None:
    return _entries("ports", "destination").get(code)


def transaction_term(incoterm: str) -> dict[str, str] | None:
    """The China 成交方式 for an Incoterms 2020 rule."""
    code = load("transaction_terms")["incoterms_2020"].get(incoterm.upper())
    return _entries("transaction_terms").get(code) if code else None


def generic_words() -> frozenset[str]:
    return frozenset(w.casefold() for w in load("generic_descriptions")["words"])
