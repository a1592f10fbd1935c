"""A valid dossier to start from; each test breaks one thing."""

from __future__ import annotations

import copy
from typing import Any

_HEADER: dict[str, Any] = {
    "invoice_number": "INV-2026-0001",
    "invoice_date": "2026-03-01",
    "order_number": "ORD-00001",
    "waybill_number": "TRK0000000001",
    "exporter": {
        "name": "Shenzhen Acme Export Co., Ltd. 深圳艾克姆出口有限公司",
        "address": "1 Keji Rd, Nanshan, Shenzhen",
        "country": "CN",
        "phone": "+86 755 1234 5678",
        "uscc": "91440300MA5G123456",
        "customs_code": "4403960ABC",
    },
    "consignee": {
        "name": "Jane Customer",
        "address": "1 Market St",
        "city": "San Francisco",
        "postcode": "94103",
        "country": "US",
        "phone": "+1 415 555 0100",
    },
    "incoterm": "DAP",
    "incoterm_place": "San Francisco",
    "supervision_mode": "9610",
    "transport_mode": "5",
    "levy_type": "101",
    "customs_office": "5300",
    "exit_customs": "5300",
    "exit_port": "440301",
    "destination_port": "USA001",
    "package_type": "22",
    "packages": 1,
    "gross_weight_kg": "0.90",
    "net_weight_kg": "0.70",
    "freight": "5.00",
    "insurance": "1.00",
    "content_type": "merchandise",
    "ebp_code": "4403960XYZ",
    "logistics_code": "4403980LOG",
    "domestic_source": "44031",
}

_LINES: list[dict[str, Any]] = [
    {
        "hs_code": "6109100021",
        "description": "男式棉制针织T恤",
        "description_en": "Men's cotton knitted T-shirt",
        "quantity": "2",
        "unit": "007",
        "unit_price": "12.50",
        "total": "25.00",
        "net_weight_kg": "0.40",
        "gross_weight_kg": "0.45",
        "origin_country": "CN",
        "ciq_code": "999",
        "sku": "TS-001",
        "declaration_elements": "0|0|针织|棉100%|男式|无品牌",
    },
    {
        "hs_code": "4202220000",
        "description": "涤纶面料手提包",
        "description_en": "Polyester fabric handbag",
        "quantity": "1",
        "unit": "007",
        "unit_price": "30.00",
        "total": "30.00",
        "net_weight_kg": "0.30",
        "gross_weight_kg": "0.35",
        "origin_country": "CN",
        "ciq_code": "999",
        "sku": "BAG-7",
        "declaration_elements": "0|0|涤纶|手提|无品牌",
    },
]


def header(**changes: Any) -> dict[str, Any]:
    h = copy.deepcopy(_HEADER)
    h.update(changes)
    return h


def lines(n: int | None = None) -> list[dict[str, Any]]:
    if n is None:
        return copy.deepcopy(_LINES)
    out = []
    for i in range(n):
        line = copy.deepcopy(_LINES[i % 2])
        line["sku"] = f"SKU-{i:03d}"
        out.append(line)
    return out


def body(**changes: Any) -> dict[str, Any]:
    """A whole dossier as POST /v1/declarations takes it."""
    return {"currency": "USD", "header": header(**changes), "lines": lines()}
