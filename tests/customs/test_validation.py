"""Every rule of the validation checklist: a valid dossier, then one defect at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from tests.customs import header, lines
from tracker.customs import codes
from tracker.customs.sdr import Rates, postal_form
from tracker.customs.validation import OrderRef, Result, WaybillRef, china_weight, validate

ON = date(2026, 3, 2)
RATES = Rates.bundled()
H = dict[str, Any]
L = list[dict[str, Any]]


def run(h: H | None = None, ls: L | None = None, currency: str = "USD", **refs: Any) -> Result:
    return validate(
        h if h is not None else header(), ls if ls is not None else lines(), currency, on=ON, rates=RATES, **refs
    )


def test_the_sample_dossier_is_valid() -> None:
    result = run()
    assert result.errors == [], [i.as_dict() for i in result.errors]
    assert result.ok
    assert result.goods_value == Decimal("55.00")
    assert result.invoice_total == Decimal("61.00")


def _line(i: int, **changes: Any) -> Callable[[H, L], None]:
    def mutate(h: H, ls: L) -> None:
        ls[i].update(changes)

    return mutate


def _head(**changes: Any) -> Callable[[H, L], None]:
    def mutate(h: H, ls: L) -> None:
        h.update(changes)

    return mutate


def _party(party: str, **changes: Any) -> Callable[[H, L], None]:
    def mutate(h: H, ls: L) -> None:
        h[party].update(changes)

    return mutate


def _many(n: int) -> Callable[[H, L], None]:
    def mutate(h: H, ls: L) -> None:
        ls[:] = lines(n)
        net = sum(Decimal(x["net_weight_kg"]) for x in ls)
        h.update(net_weight_kg=str(net), gross_weight_kg=str(net * 2))

    return mutate


CASES: list[tuple[str, Callable[[H, L], None], str, str]] = [
    ("hs not digits", _line(0, hs_code="6109.10.AB"), "hs.format", "lines[0].hs_code"),
    ("hs 8 digits on China forms", _line(0, hs_code="61091000"), "hs.length", "lines[0].hs_code"),
    ("hs under 6 digits", _line(0, hs_code="6109"), "hs.length", "lines[0].hs_code"),
    ("hs6 not in HS 2022", _line(0, hs_code="9999990000"), "hs.exists", "lines[0].hs_code"),
    ("no such heading", _line(1, hs_code="8500000000"), "hs.exists", "lines[1].hs_code"),
    ("ciq not 3 digits", _line(0, ciq_code="12"), "ciq.format", "lines[0].ciq_code"),
    ("qty x price", _line(1, total="31.00"), "line.total", "lines[1].total"),
    ("zero quantity", _line(0, quantity="0", total="0"), "quantity.positive", "lines[0].quantity"),
    ("goods value", _head(goods_value="50.00"), "totals.goods", "header.goods_value"),
    ("invoice total", _head(invoice_total="55.00"), "totals.invoice", "header.invoice_total"),
    ("currency ISO 4217", lambda h, ls: None, "currency.code", "currency"),
    ("JPY has no decimals", lambda h, ls: None, "currency.minor", "lines[0].total"),
    ("origin alpha-2", _line(0, origin_country="CHN"), "country.code", "lines[0].origin_country"),
    ("consignee alpha-2", _party("consignee", country="XX"), "country.code", "header.consignee.country"),
    (
        "no old customs country code",
        _party("consignee", country="FJ"),
        "country.customs_old",
        "header.consignee.country",
    ),
    ("line net above gross", _line(0, net_weight_kg="0.50"), "weight.net_gross", "lines[0].net_weight_kg"),
    ("header net above gross", _head(net_weight_kg="0.95"), "weight.net_gross", "header.net_weight_kg"),
    ("net sum", _head(net_weight_kg="0.60"), "weight.sum", "header.net_weight_kg"),
    ("weight rounds to zero", _line(0, net_weight_kg="0.004"), "weight.positive", "lines[0].net_weight_kg"),
    ("incoterm 2020", _head(incoterm="DDU"), "incoterm.2020", "header.incoterm"),
    ("FOB carries no freight", _head(incoterm="FOB"), "terms.freight", "header.freight"),
    ("CIF needs insurance", _head(incoterm="CIF", insurance=None), "terms.freight", "header.freight"),
    ("generic description", _line(0, description_en="Gift"), "description.generic", "lines[0].description_en"),
    ("generic Chinese description", _line(1, description="样品"), "description.generic", "lines[1].description"),
    ("all-generic words", _line(0, description_en="various parts"), "description.generic", "lines[0].description_en"),
    ("50 lines at most", _many(51), "lines.max", "lines"),
    ("unit code", _line(0, unit="BARREL"), "unit.code", "lines[0].unit"),
    ("supervision mode", _head(supervision_mode="9999"), "code.unknown", "header.supervision_mode"),
    ("9610 list needs 9610", _head(supervision_mode="0110"), "code.mode", "header.supervision_mode"),
    ("transport mode", _head(transport_mode="8"), "code.unknown", "header.transport_mode"),
    ("package type", _head(package_type="77"), "code.unknown", "header.package_type"),
    ("levy type", _head(levy_type="123"), "code.unknown", "header.levy_type"),
    ("customs office format", _head(customs_office="53"), "code.format", "header.customs_office"),
    ("exit port format", _head(exit_port="4403"), "code.format", "header.exit_port"),
    ("destination port format", _head(destination_port="US001"), "code.format", "header.destination_port"),
    ("uscc", _party("exporter", uscc="1234"), "uscc.format", "header.exporter.uscc"),
    ("customs code", _party("exporter", customs_code="12"), "customs_code.format", "header.exporter.customs_code"),
    ("required field", _head(invoice_number=None), "required", "header.invoice_number"),
    ("other needs an explanation", _head(content_type="other"), "required", "header.content_explanation"),
    ("packages range", _head(packages=0), "packages.range", "header.packages"),
    ("inspection ledger", _head(inspection={"required": True}), "inspection.ledger", "header.inspection.ledger_number"),
    (
        "packing count",
        _head(packing=[{"gross_weight_kg": "0.5", "contents": []}] * 2),
        "packing.count",
        "header.packages",
    ),
    (
        "packing quantities",
        _head(
            packing=[
                {
                    "gross_weight_kg": "0.90",
                    "contents": [{"line_no": 1, "quantity": "1"}, {"line_no": 2, "quantity": "1"}],
                }
            ]
        ),
        "packing.quantity",
        "lines[0].quantity",
    ),
    (
        "packing gross",
        _head(
            packing=[
                {
                    "gross_weight_kg": "2.00",
                    "contents": [{"line_no": 1, "quantity": "2"}, {"line_no": 2, "quantity": "1"}],
                }
            ]
        ),
        "packing.gross",
        "header.gross_weight_kg",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "rule", "path"), CASES, ids=[c[0] for c in CASES])
def test_each_rule(name: str, mutate: Callable[[H, L], None], rule: str, path: str) -> None:
    h, ls = header(), lines()
    mutate(h, ls)
    currency = {"currency ISO 4217": "XYZ", "JPY has no decimals": "JPY"}.get(name, "USD")
    if name == "JPY has no decimals":
        ls[0].update(unit_price="12.5", total="25.50")
    result = run(h, ls, currency)
    found = [(i.rule, i.path) for i in result.errors]
    assert (rule, path) in found, found
    issue = next(i for i in result.errors if (i.rule, i.path) == (rule, path))
    assert issue.en
    assert issue.zh
    assert issue.zh != issue.en
    assert not result.ok or issue.documents


def test_only_the_chosen_documents_are_checked() -> None:
    h = header(documents=["cn22", "commercial_invoice"])
    ls = lines()
    ls[0]["hs_code"] = "610910"  # 6 digits are enough for postal forms and invoices
    result = run(h, ls)
    assert result.ok, [i.as_dict() for i in result.errors]
    assert run(header(), ls).ok is False


def test_order_and_waybill_consistency() -> None:
    order = OrderRef("ORD-00001", [{"quantity": 2, "unit_price": "12.50"}, {"quantity": 1, "unit_price": "30.00"}])
    assert run(order=order, waybill=WaybillRef("TRK0000000001")).ok
    rules = {(i.rule, i.path) for i in run(order=OrderRef("ORD-9", order.items)).errors}
    assert ("match.order", "header.order_number") in rules
    changed = OrderRef("ORD-00001", [{"quantity": 3, "unit_price": "12.50"}, {"quantity": 1, "unit_price": "31.00"}])
    rules = {(i.rule, i.path) for i in run(order=changed).errors}
    assert {
        ("match.quantity", "lines[0].quantity"),
        ("match.price", "lines[1].unit_price"),
        ("match.value", "header.goods_value"),
    } <= rules
    rules = {(i.rule, i.path) for i in run(order=OrderRef("ORD-00001", order.items[:1])).errors}
    assert ("match.lines", "lines") in rules
    rules = {(i.rule, i.path) for i in run(waybill=WaybillRef("OTHER123", packages=3)).errors}
    assert {("match.waybill", "header.waybill_number"), ("match.packages", "header.packages")} <= rules


def test_cn22_or_cn23_by_300_sdr() -> None:
    limit_usd = RATES.limit_in("USD", ON)
    assert Decimal(380) < limit_usd < Decimal(430)  # 300 SDR is about USD 406 at late-2026 rates
    cheap = run()
    assert cheap.postal_form == "cn22"
    assert cheap.ready("cn22")
    assert not cheap.ready("cn23")
    ls = lines()
    ls[1].update(unit_price="400.00", total="400.00")
    dear = run(header(), ls)
    assert dear.value_sdr is not None
    assert dear.value_sdr > 300
    assert dear.postal_form == "cn23"
    assert dear.ready("cn23")
    assert not dear.ready("cn22")
    assert postal_form(Decimal(300)) == "cn22"
    assert postal_form(Decimal("300.01")) == "cn23"


def test_configured_rates_change_the_choice() -> None:
    # a very weak dollar makes the same USD value worth far fewer SDR
    weak = Rates.bundled({"USD": "100"})
    ls = lines()
    ls[1].update(unit_price="400.00", total="400.00")
    assert validate(header(), ls, "USD", on=ON, rates=weak).postal_form == "cn22"


def test_sdr_basket_expiry_is_enforced() -> None:
    result = validate(header(), lines(), "USD", on=date(2027, 8, 1), rates=RATES)
    assert ("sdr.rate", "currency") in {(i.rule, i.path) for i in result.errors}


def test_china_weights_round_to_two_decimals() -> None:
    assert china_weight(Decimal("0.456")) == Decimal("0.46")
    assert china_weight(Decimal("0.004")) == Decimal("0.00")
    assert china_weight(Decimal("12.345")) == Decimal("12.35")


def test_code_tables_carry_source_and_date() -> None:
    tables = codes.tables()
    names = {t["table"] for t in tables}
    assert {
        "countries",
        "currencies",
        "units",
        "package_types",
        "supervision_modes",
        "transport_modes",
        "transaction_terms",
        "levy_types",
        "customs_offices",
        "ports",
        "hs2022",
    } <= names
    assert all(t["source"] and t["effective_date"] for t in tables)
    assert len(codes.hs2022()) == 5612
    assert "999999" not in codes.hs2022()
    us = codes.country("US")
    assert us is not None
    assert us.alpha3 == "USA"
    assert us.customs_old == "502"
    assert codes.country("JP").customs_old == "116"  # type: ignore[union-attr]
    cny = codes.currency("CNY")
    assert cny is not None
    assert cny.customs_old == "142"
    assert codes.currency("JPY").minor_units == 0
    assert codes.unit("pcs") == codes.unit("007")
    assert codes.transaction_term("FCA")["code"] == "3"  # type: ignore[index]
