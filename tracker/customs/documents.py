"""The template context of each document, built from one dossier and its validation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tracker.customs import codes
from tracker.customs.barcodes import code128, qr
from tracker.customs.validation import CHINA_FORMS, Result, china_weight, dec, money, normalise_hs

TITLES: dict[str, tuple[str, str]] = {
    "commercial_invoice": ("COMMERCIAL INVOICE", "商业发票"),
    "packing_list": ("PACKING LIST", "装箱单"),
    "cn22": ("CUSTOMS DECLARATION CN 22", "海关申报单 CN 22"),
    "cn23": ("CUSTOMS DECLARATION CN 23", "海关申报单 CN 23"),
    "cn_export_declaration": (
        "Export Goods Declaration of the People's Republic of China",
        "中华人民共和国海关出口货物报关单",
    ),
    "cbec_export_list": ("Cross-border E-commerce Retail Export List (9610)", "跨境电子商务零售出口申报清单"),
    "inspection_declaration": ("Outbound Goods Inspection and Quarantine Declaration Data", "出境货物检验检疫申报数据"),
}
CONTENT_LABELS = {
    "gift": "Gift",
    "documents": "Documents",
    "sample": "Commercial sample",
    "merchandise": "Sale of goods",
    "return_merchandise": "Returned goods",
    "other": "Other",
}


@dataclass(frozen=True, slots=True)
class Dossier:
    id: str
    status: str
    header: dict[str, Any]
    lines: list[dict[str, Any]]
    currency: str
    entry_number: str | None
    tracking_url: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "currency": self.currency,
            "entry_number": self.entry_number,
            "header": self.header,
            "lines": self.lines,
        }


def _fmt(value: Decimal | None, places: int = 2) -> str:
    if value is None:
        return ""
    return f"{value:,.{places}f}"


def _code_name(entry: dict[str, str] | None) -> dict[str, str]:
    return entry or {"code": "", "zh": "", "en": ""}


def _country(alpha2: Any) -> dict[str, str]:
    found = codes.country(str(alpha2 or ""))
    if found is None:
        return {"alpha2": str(alpha2 or ""), "alpha3": "", "old": "", "name": ""}
    return {"alpha2": found.alpha2, "alpha3": found.alpha3, "old": found.customs_old or "", "name": found.name}


def _lines(kind: str, dossier: Dossier) -> list[dict[str, Any]]:
    out = []
    running = Decimal(0)
    china = kind in CHINA_FORMS
    cur = codes.currency(dossier.currency)
    places = cur.minor_units if cur is not None else 2
    for i, line in enumerate(dossier.lines):
        qty = dec(line.get("quantity")) or Decimal(0)
        price = dec(line.get("unit_price")) or Decimal(0)
        total = dec(line.get("total")) or money(qty * price)
        running += total
        net, gross = dec(line.get("net_weight_kg")), dec(line.get("gross_weight_kg"))
        hs = normalise_hs(str(line.get("hs_code") or ""))
        unit = _code_name(codes.unit(str(line.get("unit") or "")))
        extra = line.get("extra") or {}
        out.append(
            {
                "no": i + 1,
                "hs": hs if china else hs[:6],
                "hs_full": hs,
                "ciq_code": extra.get("ciq_code") or line.get("ciq_code") or "",
                "description": line.get("description") or "",
                "description_en": line.get("description_en") or "",
                "elements": extra.get("declaration_elements") or line.get("declaration_elements") or "",
                "sku": extra.get("sku") or line.get("sku") or "",
                "quantity": qty.normalize() if qty == qty.to_integral() else qty,
                "unit": unit,
                "unit_raw": line.get("unit") or "",
                "unit_price": _fmt(price, 4 if china else max(places, 2)),
                "total": _fmt(total, places),
                "running_total": _fmt(running, places),
                "net": _fmt(china_weight(net) if net is not None else None, 2 if china else 3),
                "gross": _fmt(china_weight(gross) if gross is not None else None, 2 if china else 3),
                "origin": _country(line.get("origin_country")),
            }
        )
    return out


def context(kind: str, dossier: Dossier, result: Result, *, generated_at: datetime) -> dict[str, Any]:
    h = dossier.header
    cur = codes.currency(dossier.currency)
    places = cur.minor_units if cur is not None else 2
    lines = _lines(kind, dossier)
    title_en, title_zh = TITLES[kind]
    net, gross = dec(h.get("net_weight_kg")), dec(h.get("gross_weight_kg"))
    china = kind in CHINA_FORMS
    term = codes.transaction_term(str(h.get("incoterm") or ""))
    waybill = str(h.get("waybill_number") or "")
    barcodes = {}
    for name, value in (
        ("waybill", waybill),
        ("invoice", str(h.get("invoice_number") or "")),
        ("entry", dossier.entry_number or ""),
        ("dossier", dossier.id),
    ):
        if value and value.isascii():
            barcodes[name] = code128(value)
    return {
        "kind": kind,
        "title_en": title_en,
        "title_zh": title_zh,
        "dossier": dossier,
        "h": h,
        "exporter": h.get("exporter") or {},
        "consignee": h.get("consignee") or {},
        "consignee_country": _country((h.get("consignee") or {}).get("country")),
        "exporter_country": _country((h.get("exporter") or {}).get("country")),
        "lines": lines,
        "currency": dossier.currency,
        "currency_old": (cur.customs_old if cur else None) or "",
        "goods_value": _fmt(result.goods_value, places),
        "invoice_total": _fmt(result.invoice_total, places),
        "freight": _fmt(dec(h.get("freight")), places),
        "insurance": _fmt(dec(h.get("insurance")), places),
        "other_charges": _fmt(dec(h.get("other_charges")), places),
        "discount": _fmt(dec(h.get("discount")), places),
        "net_total": _fmt(china_weight(net) if net is not None else None, 2 if china else 3),
        "gross_total": _fmt(china_weight(gross) if gross is not None else None, 2 if china else 3),
        "value_sdr": _fmt(result.value_sdr),
        "content_label": CONTENT_LABELS.get(str(h.get("content_type") or ""), ""),
        "supervision": _code_name(codes.supervision_mode(str(h.get("supervision_mode") or ""))),
        "transport": _code_name(codes.transport_mode(str(h.get("transport_mode") or ""))),
        "levy": _code_name(codes.levy_type(str(h.get("levy_type") or ""))),
        "package": _code_name(codes.package_type(str(h.get("package_type") or ""))),
        "customs_office": _code_name(codes.customs_office(str(h.get("customs_office") or ""))),
        "exit_customs": _code_name(codes.customs_office(str(h.get("exit_customs") or ""))),
        "term": _code_name(term),
        "packing": h.get("packing") or [],
        "inspection": h.get("inspection") or {},
        "barcodes": barcodes,
        "qr": qr(dossier.tracking_url) if dossier.tracking_url else None,
        "tracking_url": dossier.tracking_url or "",
        "generated_at": generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        "generated_date": generated_at.strftime("%Y%m%d"),
    }
