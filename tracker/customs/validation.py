"""Validation of a dossier before any document is rendered (reference §9).

Every finding names the field path and says what is wrong in English and Chinese. A finding
lists the documents it blocks; an empty list means every document."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tracker.customs import KINDS, codes
from tracker.customs.sdr import Rates, RateUnavailable, postal_form

CHINA_FORMS = ("cn_export_declaration", "cbec_export_list", "inspection_declaration")
POSTAL_FORMS = ("cn22", "cn23")
MAX_EXPORT_LINES = 50
CENT = Decimal("0.01")
TOLERANCE = Decimal("0.01")
CONTENT_TYPES = ("gift", "documents", "sample", "merchandise", "return_merchandise", "other")
COMMERCIAL = ("sample", "merchandise", "return_merchandise")
_WORD = re.compile(r"[\w\u4e00-\u9fff]+")


@dataclass(frozen=True, slots=True)
class Issue:
    rule: str
    path: str
    en: str
    zh: str
    severity: str = "error"
    documents: tuple[str, ...] = ()

    def blocks(self, kind: str) -> bool:
        return self.severity == "error" and (not self.documents or kind in self.documents)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "path": self.path,
            "message": self.en,
            "message_zh": self.zh,
            "severity": self.severity,
            "documents": list(self.documents or KINDS),
        }


@dataclass(frozen=True, slots=True)
class OrderRef:
    """The order as registered (CEB303 side of the order/waybill/list check)."""

    number: str
    items: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class WaybillRef:
    """The carrier waybill (CEB505 side)."""

    number: str
    packages: int | None = None
    gross_weight_kg: str | None = None


@dataclass(slots=True)
class Result:
    issues: list[Issue] = field(default_factory=list)
    goods_value: Decimal | None = None
    invoice_total: Decimal | None = None
    value_sdr: Decimal | None = None
    postal_form: str | None = None
    documents: tuple[str, ...] = KINDS

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return not any(i.documents == () or set(i.documents) & set(self.documents) for i in self.errors)

    def ready(self, kind: str) -> bool:
        if kind in POSTAL_FORMS and self.postal_form not in (None, kind):
            return False
        return not any(i.blocks(kind) for i in self.issues)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": [i.as_dict() for i in self.issues if i.severity == "error"],
            "warnings": [i.as_dict() for i in self.issues if i.severity == "warning"],
            "goods_value": _s(self.goods_value),
            "invoice_total": _s(self.invoice_total),
            "value_sdr": _s(self.value_sdr),
            "postal_form": self.postal_form,
            "documents": {k: self.ready(k) for k in self.documents},
        }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def dec(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def china_weight(kg: Decimal) -> Decimal:
    """Weights on China forms: 2 decimals; below 1 kg this is the rule since 2024-04-10 (GACC 2024 No. 30)."""
    return kg.quantize(CENT, ROUND_HALF_UP)


def normalise_hs(code: str) -> str:
    return code.replace(".", "").replace(" ", "").strip()


def is_generic(text: str) -> bool:
    words = [w.casefold() for w in _WORD.findall(text)]
    generic = codes.generic_words()
    if len("".join(words)) < int(codes.load("generic_descriptions")["min_length"]):
        return True
    return not words or all(w in generic for w in words)


class _Checker:
    def __init__(
        self, header: dict[str, Any], lines: list[dict[str, Any]], currency: str, documents: tuple[str, ...]
    ) -> None:
        self.h = header
        self.lines = lines
        self.currency = currency
        self.docs = documents
        self.issues: list[Issue] = []

    def wants(self, kinds: Iterable[str]) -> bool:
        return bool(set(kinds) & set(self.docs))

    def add(
        self, rule: str, path: str, en: str, zh: str, *, docs: tuple[str, ...] = (), severity: str = "error"
    ) -> None:
        if docs and not self.wants(docs):
            return
        self.issues.append(Issue(rule, path, en, zh, severity, tuple(d for d in docs if d in self.docs)))

    def get(self, dotted: str) -> Any:
        node: Any = self.h
        for part in dotted.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    def number(self, path: str, value: Any, *, required: bool = False, docs: tuple[str, ...] = ()) -> Decimal | None:
        if value is None or value == "":
            if required:
                self.add("required", path, f"{path} is required", f"{path} 为必填项", docs=docs)
            return None
        d = dec(value)
        if d is None:
            self.add("number", path, f"{path} is not a number", f"{path} 不是有效数字", docs=docs)
        elif d < 0:
            self.add("number", path, f"{path} must not be negative", f"{path} 不能为负数", docs=docs)
            return None
        return d


# which header fields each document needs (path -> documents)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "invoice_number": ("commercial_invoice", "packing_list", "cn23", "cn_export_declaration"),
    "invoice_date": ("commercial_invoice", "packing_list"),
    "order_number": ("commercial_invoice", "cbec_export_list"),
    "waybill_number": ("cn22", "cn23", "cbec_export_list", "cn_export_declaration"),
    "exporter.name": KINDS,
    "exporter.address": KINDS,
    "exporter.country": KINDS,
    "exporter.uscc": CHINA_FORMS,
    "exporter.customs_code": ("cn_export_declaration", "inspection_declaration"),
    "consignee.name": KINDS,
    "consignee.address": ("commercial_invoice", "packing_list", "cn22", "cn23", "cbec_export_list"),
    "consignee.country": KINDS,
    "incoterm": ("commercial_invoice", "cn_export_declaration"),
    "incoterm_place": ("commercial_invoice",),
    "supervision_mode": ("cn_export_declaration", "cbec_export_list"),
    "transport_mode": ("cn_export_declaration", "cbec_export_list"),
    "customs_office": ("cn_export_declaration", "cbec_export_list", "inspection_declaration"),
    "exit_customs": ("cn_export_declaration", "cbec_export_list"),
    "levy_type": ("cn_export_declaration",),
    "package_type": ("cn_export_declaration", "cbec_export_list", "packing_list"),
    "packages": ("cn_export_declaration", "cbec_export_list", "packing_list", "cn23"),
    "gross_weight_kg": KINDS,
    "net_weight_kg": (
        "commercial_invoice",
        "packing_list",
        "cn_export_declaration",
        "cbec_export_list",
        "inspection_declaration",
    ),
    "content_type": POSTAL_FORMS,
    "ebp_code": ("cbec_export_list",),
    "logistics_code": ("cbec_export_list",),
}


def _codes(c: _Checker) -> None:
    for path, docs in _REQUIRED.items():
        value = c.get(path)
        if value is None or (isinstance(value, str) and not value.strip()):
            c.add(
                "required",
                f"header.{path}",
                f"header.{path} is required for {', '.join(d for d in docs if d in c.docs)}",
                f"header.{path} 为必填项",
                docs=docs,
            )
    uscc = c.get("exporter.uscc")
    if uscc and not re.fullmatch(r"[0-9A-HJ-NPQRTUWXY]{18}", str(uscc)):
        c.add(
            "uscc.format",
            "header.exporter.uscc",
            "the unified social credit code has 18 characters (digits and capital letters except I, O, S, V, Z)",
            "统一社会信用代码应为18位",
            docs=CHINA_FORMS,
        )
    ccode = c.get("exporter.customs_code")
    if ccode and not re.fullmatch(r"[0-9A-Z]{10}", str(ccode)):
        c.add(
            "customs_code.format",
            "header.exporter.customs_code",
            "the customs registration code has 10 characters",
            "海关编码应为10位",
            docs=CHINA_FORMS,
        )
    simple: list[tuple[str, Any, str, str, tuple[str, ...]]] = [
        (
            "supervision_mode",
            codes.supervision_mode,
            "supervision mode (4 digits, e.g. 9610)",
            "监管方式",
            ("cn_export_declaration", "cbec_export_list"),
        ),
        (
            "transport_mode",
            codes.transport_mode,
            "mode of transport (e.g. 5 air, 6 postal)",
            "运输方式",
            ("cn_export_declaration", "cbec_export_list"),
        ),
        ("levy_type", codes.levy_type, "nature of levy (3 digits, e.g. 101)", "征免性质", ("cn_export_declaration",)),
        (
            "package_type",
            codes.package_type,
            "package type (2 digits, e.g. 22 carton)",
            "包装种类",
            ("cn_export_declaration", "cbec_export_list", "packing_list"),
        ),
    ]
    for name, lookup, en, zh, docs in simple:
        value = c.get(name)
        if value and lookup(str(value)) is None:
            c.add(
                "code.unknown",
                f"header.{name}",
                f"{value!r} is not a known {en}",
                f"{zh}代码 {value} 不存在",
                docs=docs,
            )
    if c.get("supervision_mode") and str(c.get("supervision_mode")) != "9610" and c.wants(("cbec_export_list",)):
        c.add(
            "code.mode",
            "header.supervision_mode",
            "the cross-border retail export list is for supervision mode 9610",
            "申报清单的监管方式应为9610",
            docs=("cbec_export_list",),
        )
    for name, zh in (("customs_office", "申报地海关"), ("exit_customs", "出境关别")):
        value = c.get(name)
        if not value:
            continue
        if not re.fullmatch(r"\d{4}", str(value)):
            c.add(
                "code.format",
                f"header.{name}",
                f"{name} is a 4-digit customs office code",
                f"{zh}应为4位关区代码",
                docs=CHINA_FORMS,
            )
        elif codes.customs_office(str(value)) is None:
            c.add(
                "code.unlisted",
                f"header.{name}",
                f"customs office {value} is not in the bundled list; check it",
                f"关区代码 {value} 不在内置代码表中，请核对",
                severity="warning",
                docs=CHINA_FORMS,
            )
    port = c.get("exit_port")
    if port and not re.fullmatch(r"\d{6}", str(port)):
        c.add(
            "code.format",
            "header.exit_port",
            "the domestic port of exit is a 6-digit code",
            "离境口岸应为6位代码",
            docs=("cn_export_declaration",),
        )
    dport = c.get("destination_port")
    if dport and not re.fullmatch(r"[A-Z]{3}\d{3}", str(dport)):
        c.add(
            "code.format",
            "header.destination_port",
            "the port of destination is a country alpha-3 code and 3 digits",
            "指运港代码应为国别三字码加3位数字",
            docs=("cn_export_declaration", "cbec_export_list"),
        )
    content = c.get("content_type")
    if content and content not in CONTENT_TYPES:
        c.add(
            "code.unknown",
            "header.content_type",
            f"content_type is one of {', '.join(CONTENT_TYPES)}",
            "内件类别不正确",
            docs=POSTAL_FORMS,
        )
    if content == "other" and not c.get("content_explanation"):
        c.add(
            "required",
            "header.content_explanation",
            "category 'other' needs an explanation",
            "类别为“其他”时须说明",
            docs=POSTAL_FORMS,
        )
    packages = c.get("packages")
    if packages is not None and (
        not isinstance(packages, int) or isinstance(packages, bool) or not 1 <= packages <= 999_999_999
    ):
        c.add(
            "packages.range",
            "header.packages",
            "the number of packages is a whole number from 1 to 999999999",
            "件数应为1至999999999的整数",
        )
    if c.get("inspection.required") and not c.get("inspection.ledger_number"):
        c.add(
            "inspection.ledger",
            "header.inspection.ledger_number",
            "goods under inspection need the e-ledger (电子底账) number before the declaration is rendered",
            "法检商品须先取得电子底账数据号",
            docs=("cn_export_declaration", "inspection_declaration"),
        )


def _parties(c: _Checker) -> None:
    for party in ("exporter", "consignee"):
        value = c.get(f"{party}.country")
        if not value:
            continue
        found = codes.country(str(value)) if len(str(value)) == 2 else None
        if found is None:
            c.add(
                "country.code",
                f"header.{party}.country",
                f"{value!r} is not an ISO 3166-1 alpha-2 country code",
                f"{value} 不是有效的ISO两位国别代码",
            )
        elif party == "consignee" and found.customs_old is None:
            c.add(
                "country.customs_old",
                "header.consignee.country",
                f"{found.name} has no old China customs country code in the bundled table (needed on the 9610 list)",
                f"{found.name} 在内置代码表中没有海关旧国别代码（申报清单需要）",
                docs=("cbec_export_list",),
            )
    cur = codes.currency(c.currency)
    if cur is None:
        c.add(
            "currency.code",
            "currency",
            f"{c.currency!r} is not an ISO 4217 currency code",
            f"{c.currency} 不是有效的ISO 4217币制代码",
        )
    elif cur.customs_old is None:
        c.add(
            "currency.customs_old",
            "currency",
            f"{cur.alpha3} has no old China customs currency code (9610 list)",
            f"{cur.alpha3} 没有海关旧币制代码（申报清单需要）",
            docs=("cbec_export_list",),
        )
    incoterm = c.get("incoterm")
    if incoterm and str(incoterm).upper() not in codes.INCOTERMS_2020:
        hint = " (use DAP instead of DDU)" if str(incoterm).upper() == "DDU" else ""
        c.add(
            "incoterm.2020",
            "header.incoterm",
            f"{incoterm!r} is not an Incoterms 2020 rule{hint}",
            f"{incoterm} 不是2020年版国际贸易术语",
            docs=("commercial_invoice", "cn_export_declaration"),
        )


def _minor_ok(value: Decimal, digits: int) -> bool:
    exponent = value.normalize().as_tuple().exponent
    return not isinstance(exponent, int) or -exponent <= digits


def _lines(c: _Checker) -> tuple[Decimal, Decimal, Decimal]:
    goods = Decimal(0)
    net_sum = Decimal(0)
    gross_sum = Decimal(0)
    if not c.lines:
        c.add("lines.empty", "lines", "a declaration needs at least one line", "报关单至少需要一项商品")
    if len(c.lines) > MAX_EXPORT_LINES:
        c.add(
            "lines.max",
            "lines",
            f"the export declaration takes at most {MAX_EXPORT_LINES} lines; split the dossier",
            f"出口报关单最多{MAX_EXPORT_LINES}项商品，请拆分",
            docs=("cn_export_declaration",),
        )
    cur = codes.currency(c.currency)
    content = c.get("content_type")
    for i, line in enumerate(c.lines):
        p = f"lines[{i}]"
        hs = normalise_hs(str(line.get("hs_code") or ""))
        if not hs.isdigit():
            c.add("hs.format", f"{p}.hs_code", "the HS code has digits only", "商品编号只能是数字")
        else:
            if len(hs) != 10:
                c.add(
                    "hs.length",
                    f"{p}.hs_code",
                    "China declarations need the 10-digit commodity code",
                    "中国报关单商品编号应为10位",
                    docs=CHINA_FORMS,
                )
            if len(hs) < 6:
                c.add("hs.length", f"{p}.hs_code", "the HS code has at least 6 digits", "HS编码至少6位")
            elif hs[:6] not in codes.hs2022():
                c.add(
                    "hs.exists",
                    f"{p}.hs_code",
                    f"{hs[:6]} is not a subheading of HS 2022",
                    f"{hs[:6]} 不是2022版HS子目",
                )
        ciq = line.get("ciq_code")
        if ciq is not None and not re.fullmatch(r"\d{3}", str(ciq)):
            c.add(
                "ciq.format",
                f"{p}.ciq_code",
                "the CIQ code has 3 digits",
                "检验检疫编码应为3位",
                docs=("cn_export_declaration", "inspection_declaration"),
            )
        if ciq is None:
            c.add(
                "required",
                f"{p}.ciq_code",
                "the inspection declaration needs the 3-digit CIQ code",
                "检验检疫申报须填检验检疫编码",
                docs=("inspection_declaration",),
            )
        for key in ("description", "description_en"):
            text = line.get(key)
            if text and is_generic(str(text)):
                c.add(
                    "description.generic",
                    f"{p}.{key}",
                    f"{text!r} is too vague: say what the goods are, their material and use",
                    f"“{text}”过于笼统，请写明品名、材质和用途",
                )
        if not line.get("description"):
            c.add("required", f"{p}.description", "a description is required", "商品名称为必填项")
        if not line.get("description_en"):
            c.add(
                "required",
                f"{p}.description_en",
                "an English description is required on postal and invoice forms",
                "须填写英文品名",
                docs=("commercial_invoice", "packing_list", "cn22", "cn23"),
            )
        origin = line.get("origin_country")
        if origin:
            if codes.country(str(origin)) is None or len(str(origin)) != 2:
                c.add(
                    "country.code",
                    f"{p}.origin_country",
                    f"{origin!r} is not an ISO 3166-1 alpha-2 country code",
                    f"{origin} 不是有效的ISO两位国别代码",
                )
        elif content in COMMERCIAL or c.wants(CHINA_FORMS):
            c.add(
                "required", f"{p}.origin_country", "commercial items need the country of origin", "商业货物须填原产国"
            )
        if codes.unit(str(line.get("unit") or "")) is None:
            c.add(
                "unit.code",
                f"{p}.unit",
                f"{line.get('unit')!r} is not a China customs unit code (e.g. 007 个, 035 千克)",
                "计量单位代码不正确",
                docs=CHINA_FORMS,
            )
        qty = c.number(f"{p}.quantity", line.get("quantity"), required=True)
        price = c.number(f"{p}.unit_price", line.get("unit_price"), required=True)
        total = c.number(f"{p}.total", line.get("total"), required=True)
        if qty is not None and qty == 0:
            c.add("quantity.positive", f"{p}.quantity", "the quantity must be above zero", "数量必须大于零")
        if qty is not None and price is not None and total is not None:
            expected = money(qty * price)
            if abs(expected - total) > TOLERANCE:
                c.add(
                    "line.total",
                    f"{p}.total",
                    f"total {total} is not quantity x unit price = {expected}",
                    f"总价 {total} 不等于数量×单价 {expected}",
                )
        if total is not None:
            goods += total
            if cur is not None and not _minor_ok(total, cur.minor_units):
                c.add(
                    "currency.minor",
                    f"{p}.total",
                    f"{cur.alpha3} amounts have {cur.minor_units} decimals",
                    f"{cur.alpha3} 金额应为{cur.minor_units}位小数",
                )
        net = c.number(
            f"{p}.net_weight_kg",
            line.get("net_weight_kg"),
            required=True,
            docs=("commercial_invoice", "packing_list", "cn22", "cn23", *CHINA_FORMS),
        )
        gross = c.number(f"{p}.gross_weight_kg", line.get("gross_weight_kg"))
        if net is not None:
            net_sum += net
            if net == 0 or china_weight(net) == 0:
                c.add(
                    "weight.positive",
                    f"{p}.net_weight_kg",
                    "the net weight must be at least 0.01 kg once rounded",
                    "净重四舍五入后应不小于0.01千克",
                )
            if gross is not None and net > gross:
                c.add(
                    "weight.net_gross",
                    f"{p}.net_weight_kg",
                    f"net weight {net} kg exceeds gross weight {gross} kg",
                    f"净重 {net} 千克大于毛重 {gross} 千克",
                )
        if gross is not None:
            gross_sum += gross
    return goods, net_sum, gross_sum


def _totals(c: _Checker, goods: Decimal, net_sum: Decimal, gross_sum: Decimal) -> tuple[Decimal, Decimal]:
    declared_goods = c.number("header.goods_value", c.get("goods_value"))
    if declared_goods is not None and abs(declared_goods - goods) > TOLERANCE:
        c.add(
            "totals.goods",
            "header.goods_value",
            f"goods value {declared_goods} is not the sum of line totals {goods}",
            f"货值 {declared_goods} 不等于各项总价之和 {goods}",
        )
    charges = Decimal(0)
    for name in ("freight", "insurance", "other_charges"):
        value = c.number(f"header.{name}", c.get(name))
        charges += value or 0
    discount = c.number("header.discount", c.get("discount")) or Decimal(0)
    total = goods + charges - discount
    declared_total = c.number("header.invoice_total", c.get("invoice_total"))
    if declared_total is not None and abs(declared_total - total) > TOLERANCE:
        c.add(
            "totals.invoice",
            "header.invoice_total",
            f"invoice total {declared_total} is not goods + freight + insurance + other charges - discount = {total}",
            f"发票总额 {declared_total} 与计算值 {total} 不符",
        )
    term = codes.transaction_term(str(c.get("incoterm") or ""))
    if term is not None:
        freight, insurance = dec(c.get("freight")), dec(c.get("insurance"))
        if term["code"] in ("3", "7") and (freight or 0) > 0:
            c.add(
                "terms.freight",
                "header.freight",
                f"{c.get('incoterm')} ({term['zh']}) excludes freight; leave it empty",
                f"成交方式为{term['zh']}时不填运费",
                docs=("cn_export_declaration",),
            )
        if term["code"] == "1" and (not freight or insurance is None):
            c.add(
                "terms.freight",
                "header.freight",
                f"{c.get('incoterm')} (CIF) needs both freight and insurance",
                "成交方式为CIF时须填运费和保费",
                docs=("cn_export_declaration",),
            )
    net = c.number("header.net_weight_kg", c.get("net_weight_kg"))
    gross = c.number("header.gross_weight_kg", c.get("gross_weight_kg"))
    if net is not None and gross is not None and net > gross:
        c.add(
            "weight.net_gross",
            "header.net_weight_kg",
            f"net weight {net} kg exceeds gross weight {gross} kg",
            f"净重 {net} 千克大于毛重 {gross} 千克",
        )
    if net is not None and c.lines and abs(net - net_sum) > TOLERANCE:
        c.add(
            "weight.sum",
            "header.net_weight_kg",
            f"net weight {net} kg is not the sum of the lines {net_sum} kg",
            f"净重 {net} 与各项净重之和 {net_sum} 不符",
        )
    if gross is not None and gross_sum and gross_sum > gross + TOLERANCE:
        c.add(
            "weight.sum",
            "header.gross_weight_kg",
            f"the lines weigh {gross_sum} kg gross, more than the shipment's {gross} kg",
            f"各项毛重之和 {gross_sum} 大于总毛重 {gross}",
        )
    if (
        gross is not None
        and c.wants(CHINA_FORMS)
        and (china_weight(gross) == 0 or (net is not None and china_weight(net) > china_weight(gross)))
    ):
        c.add(
            "weight.rounding",
            "header.gross_weight_kg",
            "once rounded to 2 decimals the weights are zero or net exceeds gross",
            "按两位小数取整后重量为零或净重大于毛重",
            docs=CHINA_FORMS,
        )
    return total, gross or Decimal(0)


def _packing(c: _Checker) -> None:
    packing = c.get("packing")
    if not packing:
        return
    if not isinstance(packing, list):
        c.add("packing.shape", "header.packing", "packing is a list of packages", "装箱明细应为列表")
        return
    if c.get("packages") is not None and len(packing) != c.get("packages"):
        c.add(
            "packing.count",
            "header.packages",
            f"{c.get('packages')} packages declared but the packing list has {len(packing)}",
            f"件数 {c.get('packages')} 与装箱单箱数 {len(packing)} 不符",
        )
    per_line: dict[int, Decimal] = {}
    gross_total = Decimal(0)
    for i, pkg in enumerate(packing):
        g = c.number(
            f"header.packing[{i}].gross_weight_kg",
            pkg.get("gross_weight_kg") if isinstance(pkg, dict) else None,
            required=True,
        )
        gross_total += g or 0
        for j, item in enumerate(pkg.get("contents") or [] if isinstance(pkg, dict) else []):
            q = c.number(f"header.packing[{i}].contents[{j}].quantity", item.get("quantity"), required=True)
            per_line[int(item.get("line_no") or 0)] = per_line.get(int(item.get("line_no") or 0), Decimal(0)) + (q or 0)
    gross = dec(c.get("gross_weight_kg"))
    if gross is not None and abs(gross_total - gross) > TOLERANCE:
        c.add(
            "packing.gross",
            "header.gross_weight_kg",
            f"the packages weigh {gross_total} kg, the shipment {gross} kg",
            f"各箱毛重之和 {gross_total} 与总毛重 {gross} 不符",
        )
    for i, line in enumerate(c.lines):
        qty = dec(line.get("quantity"))
        packed = per_line.get(i + 1, Decimal(0))
        if qty is not None and packed != qty:
            c.add(
                "packing.quantity",
                f"lines[{i}].quantity",
                f"the packing list holds {packed} of line {i + 1}, the invoice {qty}",
                f"装箱单第{i + 1}项数量 {packed} 与发票数量 {qty} 不符",
            )


def _consistency(c: _Checker, order: OrderRef | None, waybill: WaybillRef | None, goods: Decimal) -> None:
    if order is not None:
        if c.get("order_number") and c.get("order_number") != order.number:
            c.add(
                "match.order",
                "header.order_number",
                f"order number {c.get('order_number')} is not the order's {order.number}",
                f"订单编号 {c.get('order_number')} 与订单 {order.number} 不符",
            )
        if order.items:
            if len(order.items) != len(c.lines):
                c.add(
                    "match.lines",
                    "lines",
                    f"the order has {len(order.items)} items, the dossier {len(c.lines)} lines",
                    f"订单商品 {len(order.items)} 项，申报 {len(c.lines)} 项，不一致",
                )
            order_value = Decimal(0)
            for i, (item, line) in enumerate(zip(order.items, c.lines, strict=False)):
                oq, lq = dec(item.get("quantity")), dec(line.get("quantity"))
                if oq is not None and lq is not None and oq != lq:
                    c.add(
                        "match.quantity",
                        f"lines[{i}].quantity",
                        f"quantity {lq} differs from the order's {oq}",
                        f"数量 {lq} 与订单数量 {oq} 不符",
                    )
                op, lp = dec(item.get("unit_price")), dec(line.get("unit_price"))
                if op is not None and lp is not None and op != lp:
                    c.add(
                        "match.price",
                        f"lines[{i}].unit_price",
                        f"unit price {lp} differs from the order's {op}",
                        f"单价 {lp} 与订单单价 {op} 不符",
                    )
                if oq is not None and op is not None:
                    order_value += money(oq * op)
            if order_value and len(order.items) == len(c.lines) and abs(order_value - goods) > TOLERANCE:
                c.add(
                    "match.value",
                    "header.goods_value",
                    f"the order's goods value {order_value} differs from the dossier's {goods}",
                    f"订单货值 {order_value} 与申报货值 {goods} 不符",
                )
    if waybill is not None:
        if c.get("waybill_number") and c.get("waybill_number") != waybill.number:
            c.add(
                "match.waybill",
                "header.waybill_number",
                f"waybill {c.get('waybill_number')} is not the shipment's {waybill.number}",
                f"运单号 {c.get('waybill_number')} 与物流运单 {waybill.number} 不符",
            )
        if waybill.packages is not None and c.get("packages") is not None and waybill.packages != c.get("packages"):
            c.add(
                "match.packages",
                "header.packages",
                f"the waybill has {waybill.packages} packages",
                f"运单件数 {waybill.packages} 与申报件数不符",
            )
        wg, hg = dec(waybill.gross_weight_kg), dec(c.get("gross_weight_kg"))
        if wg is not None and hg is not None and abs(wg - hg) > max(TOLERANCE, hg * Decimal("0.05")):
            c.add(
                "match.weight",
                "header.gross_weight_kg",
                f"the waybill's gross weight {wg} kg differs from {hg} kg",
                f"运单毛重 {wg} 与申报毛重 {hg} 不符",
                severity="warning",
            )


def validate(
    header: dict[str, Any],
    lines: list[dict[str, Any]],
    currency: str,
    *,
    on: date,
    rates: Rates,
    order: OrderRef | None = None,
    waybill: WaybillRef | None = None,
) -> Result:
    wanted = header.get("documents")
    documents = tuple(k for k in KINDS if not wanted or k in wanted)
    c = _Checker(header, lines, currency.upper(), documents)
    _codes(c)
    _parties(c)
    goods, net_sum, gross_sum = _lines(c)
    total, _ = _totals(c, goods, net_sum, gross_sum)
    _packing(c)
    _consistency(c, order, waybill, goods)
    result = Result(issues=c.issues, goods_value=money(goods), invoice_total=money(total), documents=documents)
    try:
        result.value_sdr = rates.to_sdr(goods, currency, on)
        result.postal_form = postal_form(result.value_sdr)
    except RateUnavailable as err:
        c.add(
            "sdr.rate",
            "currency",
            f"cannot choose CN22 or CN23: {err}",
            "无法换算特别提款权以选择CN22或CN23",
            docs=POSTAL_FORMS,
        )
    return result
