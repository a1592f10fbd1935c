"""Bulk import of shipments from CSV: our own columns or a marketplace order export.

Every row is validated (with the API's ShipmentCreate) before anything is written; the
write is one transaction in chunks, so a file is imported whole or not at all unless the
caller asks to skip invalid rows. Rows already registered (same order number and tracking
number) are reported as skipped, so re-importing a file creates no duplicates.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import pycountry
from pydantic import ValidationError

from tracker.clock import utc_now
from tracker.db import SessionMaker, create_sessionmaker, engine_for, writing
from tracker.settings import Settings
from tracker.store import NotFoundError
from tracker.store import sellers as seller_store
from tracker.store import shipments as shipment_store
from tracker.store.dashboard import registered_pairs
from tracker.web.api.schemas import ShipmentCreate

NATIVE = (
    "tracking_number",
    "carrier",
    "order_number",
    "customer_name",
    "customer_email",
    "customer_phone",
    "customer_locale",
    "dest_country",
    "dest_postcode",
    "dest_city",
    "dest_address",
    "origin_country",
    "promised_delivery",
)
REQUIRED = ("tracking_number", "order_number", "dest_country")
CHUNK = 500
MAX_ROWS = 200_000

#: native column -> the header(s) each marketplace export uses for it, first match wins
MAPPINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "native": {name: (name,) for name in NATIVE},
    # Shopify "Export orders" CSV, plus the Tracking Number / Tracking Company columns of its
    # fulfilment exports
    "shopify": {
        "order_number": ("Name",),
        "tracking_number": ("Tracking Number", "Fulfillment Tracking Number"),
        "carrier": ("Tracking Company", "Fulfillment Tracking Company"),
        "customer_name": ("Shipping Name",),
        "customer_email": ("Email",),
        "customer_phone": ("Shipping Phone", "Phone"),
        "dest_country": ("Shipping Country",),
        "dest_postcode": ("Shipping Zip",),
        "dest_city": ("Shipping City",),
        "dest_address": ("Shipping Address1", "Shipping Street"),
    },
    # Amazon Seller Central order report (tab separated) with the shipping-confirmation columns
    "amazon": {
        "order_number": ("amazon-order-id", "order-id"),
        "tracking_number": ("tracking-number",),
        "carrier": ("carrier-code", "carrier-name"),
        "customer_name": ("recipient-name", "buyer-name"),
        "customer_email": ("buyer-email",),
        "customer_phone": ("ship-phone-number", "buyer-phone-number"),
        "dest_country": ("ship-country",),
        "dest_postcode": ("ship-postal-code",),
        "dest_city": ("ship-city",),
        "dest_address": ("ship-address-1",),
        "promised_delivery": ("promise-date", "latest-delivery-date"),
    },
    # AliExpress seller order export, English or Chinese headers
    "aliexpress": {
        "order_number": ("Order ID", "Order Number", "订单号"),
        "tracking_number": ("Tracking Number", "Logistics Tracking No.", "运单号", "物流单号"),
        "carrier": ("Logistics Company", "Shipping Company", "物流公司"),
        "customer_name": ("Receiver", "Contact Name", "收货人"),
        "customer_email": ("Buyer Email", "Email", "买家邮箱"),
        "customer_phone": ("Phone", "Mobile", "联系电话"),
        "dest_country": ("Country/Region", "Country", "收货国家", "国家"),
        "dest_postcode": ("Zip Code", "Postcode", "邮编"),
        "dest_city": ("City", "城市"),
        "dest_address": ("Address", "Detailed Address", "详细地址"),
    },
}
#: headers that identify an export, checked in this order by `detect_mapping`
SIGNATURES: tuple[tuple[str, frozenset[str]], ...] = (
    ("native", frozenset({"tracking_number", "order_number", "dest_country"})),
    ("amazon", frozenset({"amazon-order-id", "ship-country"})),
    ("shopify", frozenset({"Name", "Shipping Country", "Financial Status"})),
    ("aliexpress", frozenset({"Order ID", "Country/Region"})),
    ("aliexpress", frozenset({"订单号"})),
)
#: the carrier names marketplaces print -> our carrier codes; others are auto-detected
CARRIER_NAMES = {
    "dhl": "dhl",
    "dhl express": "dhl",
    "ups": "ups",
    "fedex": "fedex",
    "usps": "usps",
    "sf express": "sf_express",
    "sf": "sf_express",
    "顺丰": "sf_express",
    "顺丰速运": "sf_express",
    "yanwen": "yanwen",
    "燕文": "yanwen",
}


class ImportFileError(ValueError):
    """The file as a whole cannot be read (encoding, header, size)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    message: str


@dataclass(slots=True)
class ImportReport:
    mapping: str
    rows: int = 0
    imported: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    errors: list[RowError] = field(default_factory=list)
    committed: bool = False

    @property
    def invalid_lines(self) -> int:
        return len({e.line for e in self.errors})


Progress = Callable[[str, int, int], None]


def _silent(_phase: str, _done: int, _total: int) -> None:
    return None


def detect_mapping(header: Iterable[str]) -> str:
    names = {h.strip().lstrip("\ufeff") for h in header}
    for mapping, needed in SIGNATURES:
        if needed <= names:
            return mapping
    raise ImportFileError(
        "Unknown column set: use the documented columns (tracking_number, order_number, dest_country, ...) "
        "or a Shopify, Amazon or AliExpress order export."
    )


def _carrier(value: str) -> str | None:
    v = value.strip()
    if not v:
        return None
    return CARRIER_NAMES.get(v.casefold(), v.lower())


def _country(value: str) -> str:
    v = value.strip()
    if len(v) <= 3:
        return v
    try:
        return str(pycountry.countries.lookup(v).alpha_2)
    except LookupError:
        return v


def _promised(value: str) -> str | None:
    v = value.strip()
    if not v:
        return None
    try:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        return v


def _row_body(row: Mapping[str, str], columns: Mapping[str, str]) -> dict[str, Any]:
    """The ShipmentCreate body for one row; `columns` maps native name -> source header."""

    def get(name: str) -> str:
        source = columns.get(name)
        return (row.get(source) or "").strip() if source else ""

    def opt(name: str) -> str | None:
        return get(name) or None

    customer = {"name": opt("customer_name"), "email": opt("customer_email"), "phone": opt("customer_phone")}
    body: dict[str, Any] = {
        "tracking_number": get("tracking_number"),
        "carrier": _carrier(get("carrier")),
        "order_number": get("order_number"),
        "customer": {**customer, "locale": get("customer_locale") or "en"},
        "destination": {
            "country": _country(get("dest_country")),
            "postcode": opt("dest_postcode"),
            "city": opt("dest_city"),
            "address": opt("dest_address"),
        },
        "origin_country": _country(get("origin_country")) or None,
        "promised_delivery": _promised(get("promised_delivery")),
    }
    return body


#: ShipmentCreate's location of an error -> the native column it came from
_FIELD_OF = {
    ("customer", "name"): "customer_name",
    ("customer", "email"): "customer_email",
    ("customer", "phone"): "customer_phone",
    ("customer", "locale"): "customer_locale",
    ("destination", "country"): "dest_country",
    ("destination", "postcode"): "dest_postcode",
    ("destination", "city"): "dest_city",
    ("destination", "address"): "dest_address",
}


def _column_of(loc: tuple[int | str, ...], columns: Mapping[str, str]) -> str:
    """The source header an error belongs to, so the report names the seller's own column."""
    parts = [str(p) for p in loc]
    native = _FIELD_OF.get((parts[0], parts[1])) if len(parts) > 1 else None
    native = native or (parts[0] if parts else "row")
    return columns.get(native, native)


@dataclass(frozen=True, slots=True)
class ParsedRow:
    line: int
    shipment: shipment_store.NewShipment


def read_rows(text: str, mapping: str = "auto") -> tuple[str, dict[str, str], list[tuple[int, dict[str, str]]]]:
    """The mapping used, native column -> header, and (line number, row) pairs."""
    first = text.splitlines()[0] if text.strip() else ""
    if not first:
        raise ImportFileError("The file is empty.")
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lstrip("\ufeff") for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    chosen = detect_mapping(header) if mapping == "auto" else mapping
    if chosen not in MAPPINGS:
        raise ImportFileError(f"Unknown mapping {mapping!r}; use auto, {', '.join(MAPPINGS)}.")
    columns = {
        native: next(h for h in candidates if h in header)
        for native, candidates in MAPPINGS[chosen].items()
        if any(h in header for h in candidates)
    }
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        wanted = ", ".join(MAPPINGS[chosen][m][0] for m in missing)
        raise ImportFileError(f"Missing required column(s) for the {chosen} mapping: {wanted}.")
    rows: list[tuple[int, dict[str, str]]] = []
    line = reader.line_num
    for row in reader:
        # line_num counts physical lines, so a quoted multi-line cell keeps numbers right
        start, line = line + 1, reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        rows.append((start, row))
        if len(rows) > MAX_ROWS:
            raise ImportFileError(f"More than {MAX_ROWS} rows; split the file.")
    return chosen, columns, rows


def _continuation(mapping: str, row: Mapping[str, str], columns: Mapping[str, str], previous: str | None) -> bool:
    """Shopify repeats an order's Name on one line per item, with the shipping columns empty."""
    if mapping != "shopify":
        return False
    order = (row.get(columns["order_number"]) or "").strip()
    country = (row.get(columns["dest_country"]) or "").strip()
    tracking = (row.get(columns["tracking_number"]) or "").strip()
    return order == previous and not country and not tracking


def validate_rows(
    mapping: str,
    columns: Mapping[str, str],
    rows: list[tuple[int, dict[str, str]]],
    report: ImportReport,
    progress: Progress = _silent,
) -> list[ParsedRow]:
    parsed: list[ParsedRow] = []
    previous: str | None = None
    for i, (line, row) in enumerate(rows, 1):
        if i % 1000 == 0 or i == len(rows):
            progress("validate", i, len(rows))
        if _continuation(mapping, row, columns, previous):
            continue
        previous = (row.get(columns["order_number"]) or "").strip()
        report.rows += 1
        try:
            body = ShipmentCreate.model_validate(_row_body(row, columns))
        except ValidationError as err:
            for e in err.errors():
                report.errors.append(RowError(line, _column_of(tuple(e["loc"]), columns), str(e["msg"])))
            continue
        parsed.append(ParsedRow(line, body.to_new_shipment()))
    return parsed


def _customer(n: shipment_store.NewShipment) -> str:
    return shipment_store.customer_key(n.customer_email, n.dest_country, n.dest_postcode, n.customer_name)


async def import_text(
    sessionmaker: SessionMaker,
    seller_id: str,
    text: str,
    *,
    now: datetime,
    public_url: str,
    skip_invalid: bool = False,
    mapping: str = "auto",
    progress: Progress = _silent,
) -> ImportReport:
    """Validate every row, then write all of them in one transaction (or none)."""
    chosen, columns, rows = read_rows(text, mapping)
    report = ImportReport(mapping=chosen)
    parsed = validate_rows(chosen, columns, rows, report, progress)
    async with writing(sessionmaker) as session:
        await seller_store.get_seller(session, seller_id)
        known = await registered_pairs(session, seller_id, {p.shipment.order_number for p in parsed})
        fresh: list[ParsedRow] = []
        owners = dict(known.customers)
        for p in parsed:
            pair = (p.shipment.order_number, p.shipment.tracking_number)
            if pair in known.pairs:
                report.skipped.append((p.line, "already registered"))
                continue
            owner = owners.setdefault(p.shipment.order_number, _customer(p.shipment))
            if owner != _customer(p.shipment):
                report.errors.append(
                    RowError(p.line, columns["order_number"], "order number already used by a different customer")
                )
                continue
            known.pairs.add(pair)
            fresh.append(p)
        if report.errors and not skip_invalid:
            await session.rollback()
            report.errors.sort(key=lambda e: e.line)
            return report
        for start in range(0, len(fresh), CHUNK):
            batch = [p.shipment for p in fresh[start : start + CHUNK]]
            await shipment_store.create_shipments(session, seller_id, batch, now=now, public_url=public_url)
            report.imported += len(batch)
            progress("import", report.imported, len(fresh))
        await session.commit()
        report.committed = True
    report.errors.sort(key=lambda e: e.line)
    return report


class ProgressBar:
    """A bar redrawn in place on a terminal; plain lines every tenth when not a TTY."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last: dict[str, int] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        share = done / total if total else 1.0
        if self.tty:
            filled = int(share * 30)
            self.stream.write(f"\r{phase:<9} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            if done >= total:
                self.stream.write("\n")
        else:
            tenth = int(share * 10)
            if self._last.get(phase, -1) == tenth:
                return
            self._last[phase] = tenth
            self.stream.write(f"{phase}: {done}/{total} rows ({share:.0%})\n")
        self.stream.flush()


def format_report(report: ImportReport, *, skip_invalid: bool) -> str:
    lines = [f"mapping: {report.mapping}; rows: {report.rows}"]
    for e in report.errors:
        lines.append(f"line {e.line}: {e.field}: {e.message}")
    for line, why in report.skipped:
        lines.append(f"line {line}: skipped ({why})")
    if report.committed:
        lines.append(f"imported {report.imported}, skipped {len(report.skipped)}, invalid {report.invalid_lines}")
    else:
        lines.append(
            f"nothing imported: {report.invalid_lines} invalid row(s); fix them or use --skip-invalid"
            if not skip_invalid
            else "nothing imported"
        )
    return "\n".join(lines)


def decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("The file is not UTF-8 text; save it as CSV UTF-8.")


async def _run(settings: Settings, text: str, seller_id: str, skip_invalid: bool, mapping: str) -> int:
    engine = engine_for(settings.database)
    try:
        report = await import_text(
            create_sessionmaker(engine),
            seller_id,
            text,
            now=utc_now(),
            public_url=settings.server.public_url,
            skip_invalid=skip_invalid,
            mapping=mapping,
            progress=ProgressBar(sys.stderr),
        )
    finally:
        await engine.dispose()
    print(format_report(report, skip_invalid=skip_invalid))
    return 0 if report.committed else 1


def run_import_cli(settings: Settings, path: str, *, seller_id: str, skip_invalid: bool, mapping: str) -> int:
    """`tracker import FILE.csv --seller ID`: 0 imported, 1 refused (invalid rows), 2 unusable file."""
    try:
        text = decode(Path(path).read_bytes())
        return asyncio.run(_run(settings, text, seller_id, skip_invalid, mapping))
    except (OSError, ImportFileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except NotFoundError:
        print(f"error: no seller {seller_id}", file=sys.stderr)
        return 2
