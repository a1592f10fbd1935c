"""/v1/declarations: dossiers, their review workflow and their PDF documents."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlmodel.ext.asyncio.session import AsyncSession

from tracker import keys
from tracker.customs import KINDS, validation
from tracker.customs.config import CustomsSettings
from tracker.customs.documents import Dossier, context
from tracker.customs.render import Renderer, cjk_font_available, render_html
from tracker.customs.sdr import Rates
from tracker.customs.workflow import (
    TransitionError,
    check_editable,
    check_four_eyes,
    check_transition,
    entry_number_error,
    move,
)
from tracker.db import writing
from tracker.models import Declaration
from tracker.store import NotFoundError
from tracker.store import declarations as store
from tracker.store import sellers as seller_store
from tracker.store.declarations import Loaded
from tracker.store.sellers import Principal
from tracker.web import openapi
from tracker.web.auth import require
from tracker.web.openapi import model_schema
from tracker.web.problems import Problem
from tracker.web.validation import read_json, validate

log = logging.getLogger("tracker.customs")
RENDERER = web.AppKey("customs_renderer", Renderer)
RATES = web.AppKey("customs_rates", Rates)
WRITE, REVIEW = "declarations:write", "declarations:review"
REVIEW_STATES = ("validated", "approved", "submitted")


def _num(v: Any) -> Any:
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int | float | str):
        try:
            d = Decimal(str(v).strip())
        except InvalidOperation:
            raise ValueError("not a decimal number") from None
        if not d.is_finite():
            raise ValueError("not a finite number")
        return str(d)
    raise ValueError("not a number")


Num = Annotated[str, BeforeValidator(_num), StringConstraints(max_length=32)]
Text = Annotated[str, StringConstraints(max_length=500)]
Code = Annotated[str, StringConstraints(max_length=40)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Party(_Strict):
    name: Text | None = None
    name_en: Text | None = None
    address: Text | None = None
    city: Text | None = None
    postcode: Code | None = None
    country: Code | None = None
    phone: Code | None = None
    email: Text | None = None
    uscc: Code | None = None
    customs_code: Code | None = None
    tax_id: Code | None = None


class Inspection(_Strict):
    required: bool = False
    ledger_number: Code | None = None
    purpose: Text | None = None
    goods_attr: Text | None = None
    wood_packaging: Text | None = None
    certificates: Text | None = None


class PackedItem(_Strict):
    line_no: int = Field(ge=1, le=1000)
    quantity: Num


class Package(_Strict):
    gross_weight_kg: Num | None = None
    dimensions_cm: Code | None = None
    contents: list[PackedItem] = Field(default_factory=list, max_length=200)


class OrderSnapshot(_Strict):
    number: Text
    items: list[dict[str, Any]] = Field(default_factory=list, max_length=200)


class WaybillSnapshot(_Strict):
    number: Code
    packages: int | None = None
    gross_weight_kg: Num | None = None


class Header(_Strict):
    documents: list[Literal[KINDS]] | None = None  # type: ignore[valid-type]
    invoice_number: Code | None = None
    invoice_date: Code | None = None
    order_number: Code | None = None
    waybill_number: Code | None = None
    exporter: Party | None = None
    consignee: Party | None = None
    incoterm: Code | None = None
    incoterm_place: Text | None = None
    supervision_mode: Code | None = None
    transport_mode: Code | None = None
    levy_type: Code | None = None
    duty_mode: Code | None = None
    customs_office: Code | None = None
    exit_customs: Code | None = None
    exit_port: Code | None = None
    destination_port: Code | None = None
    domestic_source: Code | None = None
    package_type: Code | None = None
    packages: int | None = None
    gross_weight_kg: Num | None = None
    net_weight_kg: Num | None = None
    goods_value: Num | None = None
    invoice_total: Num | None = None
    freight: Num | None = None
    insurance: Num | None = None
    other_charges: Num | None = None
    discount: Num | None = None
    content_type: Code | None = None
    content_explanation: Text | None = None
    ebp_code: Code | None = None
    logistics_code: Code | None = None
    logistics_name: Text | None = None
    marks: Text | None = None
    record_number: Code | None = None
    licence_number: Code | None = None
    contract_number: Code | None = None
    transport_name: Text | None = None
    producer: Text | None = None
    agent_name: Text | None = None
    pre_entry_number: Code | None = None
    list_number: Code | None = None
    sender_reference: Code | None = None
    signatory: Text | None = None
    inspection: Inspection | None = None
    packing: list[Package] | None = Field(default=None, max_length=500)
    order: OrderSnapshot | None = None
    waybill: WaybillSnapshot | None = None


class LineIn(_Strict):
    hs_code: Annotated[str, StringConstraints(max_length=16)]
    description: Text
    description_en: Text | None = None
    quantity: Num
    unit: Annotated[str, StringConstraints(max_length=16)] = "007"
    unit_price: Num
    total: Num | None = None
    net_weight_kg: Num | None = None
    gross_weight_kg: Num | None = None
    origin_country: Annotated[str, StringConstraints(max_length=3)] | None = None
    sku: Code | None = None
    ciq_code: Code | None = None
    declaration_elements: Text | None = None
    legal_quantity: Num | None = None
    legal_unit: Code | None = None


class DeclarationCreate(_Strict):
    shipment_id: Annotated[str, StringConstraints(max_length=40)] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")] | None = None
    header: Header = Header()
    lines: list[LineIn] | None = Field(default=None, max_length=200)


class DeclarationPatch(_Strict):
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")] | None = None
    header: Header | None = None
    lines: list[LineIn] | None = Field(default=None, max_length=200)


class SubmitBody(_Strict):
    entry_number: Annotated[str, StringConstraints(max_length=40)]


class RejectBody(_Strict):
    reason: Annotated[str, StringConstraints(min_length=3, max_length=1000)]


def _line_data(line: LineIn) -> dict[str, Any]:
    data = line.model_dump(exclude_none=True)
    if "total" not in data:
        data["total"] = str(validation.money(Decimal(line.quantity) * Decimal(line.unit_price)))
    return data


def _order_lines(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order items become editable draft lines; missing customs data is left for the seller."""
    out = []
    for item in items:
        qty, price = validation.dec(item.get("quantity")), validation.dec(item.get("unit_price"))
        out.append(
            {
                "hs_code": str(item.get("hs_code") or ""),
                "description": str(item.get("description") or ""),
                "description_en": item.get("description"),
                "quantity": str(qty or 0),
                "unit": "007",
                "unit_price": str(price or 0),
                "total": str(validation.money((qty or Decimal(0)) * (price or Decimal(0)))),
                **({"sku": item["sku"]} if item.get("sku") else {}),
            }
        )
    return out


# --- access ---------------------------------------------------------------------------


def _reader(request: web.Request) -> Principal:
    principal = require(request, WRITE) if not _has(request, REVIEW) else require(request, REVIEW)
    return principal


def _has(request: web.Request, scope: str) -> bool:
    principal: Principal | None = request.get(keys.PRINCIPAL)
    return principal is not None and principal.has(scope)


def _check_read(principal: Principal, decl: Declaration | None) -> Declaration:
    """Review keys read dossiers sent for review; drafts are the seller's work in progress.

    A review-only key gets the same 403 for a draft, another seller's dossier and a missing one."""
    if not principal.has(WRITE) and (decl is None or decl.status in ("draft", "rejected")):
        raise Problem(
            403,
            "insufficient-scope",
            f"A key without {WRITE} reads only dossiers sent for review.",
            required_scope=WRITE,
        )
    if decl is None:
        raise Problem(404, "not-found", "No such declaration.")
    return decl


async def _load_for_reading(session: AsyncSession, principal: Principal, request: web.Request) -> Loaded:
    try:
        loaded = await store.get(session, principal.seller_id, request.match_info["id"])
    except NotFoundError:
        _check_read(principal, None)
        raise
    _check_read(principal, loaded.declaration)
    return loaded


async def _load(
    session: AsyncSession, principal: Principal, request: web.Request, *, for_update: bool = False
) -> Loaded:
    try:
        return await store.get(session, principal.seller_id, request.match_info["id"], for_update=for_update)
    except NotFoundError as err:
        raise Problem(404, "not-found", "No such declaration.") from err


def _conflict(err: TransitionError) -> Problem:
    return Problem(409, err.slug, err.detail)


# --- views ----------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


async def _view(session: AsyncSession, loaded: Loaded, request: web.Request) -> dict[str, Any]:
    decl = loaded.declaration
    trail = await seller_store.audit_trail(session, decl.seller_id, "declaration", decl.id)
    release = await store.customs_release(session, decl.shipment_id)
    val: dict[str, Any] = dict(decl.validation or {})
    postal = val.get("postal_form")
    base = f"/v1/declarations/{decl.id}/documents"
    documents = {
        k: {
            "applies": not (k in ("cn22", "cn23") and postal is not None and k != postal and k == "cn22"),
            "ready": bool((val.get("documents") or {}).get(k, False)),
            "url": f"{base}/{k}.pdf",
        }
        for k in KINDS
    }
    return {
        "id": decl.id,
        "status": decl.status,
        "shipment_id": decl.shipment_id,
        "currency": decl.currency,
        "total_value": decl.total_value,
        "entry_number": decl.entry_number,
        "reject_reason": decl.reject_reason,
        "header": decl.header,
        "lines": [store.line_dict(line) for line in loaded.lines],
        "validation": val or None,
        "postal_form": postal,
        "documents": documents,
        "customs_release": None
        if release is None
        else {
            "occurred_at": release.occurred_at.isoformat(),
            "description": release.description,
            "location": ", ".join(p for p in (release.city, release.country) if p) or None,
        },
        "audit": [
            {"at": row.at.isoformat(), "actor": row.actor, "action": row.action, "details": row.details}
            for row in trail
        ],
        "created_at": decl.created_at.isoformat(),
        "updated_at": decl.updated_at.isoformat(),
    }


def _summary(decl: Declaration) -> dict[str, Any]:
    val: dict[str, Any] = dict(decl.validation or {})
    return {
        "id": decl.id,
        "status": decl.status,
        "shipment_id": decl.shipment_id,
        "currency": decl.currency,
        "total_value": decl.total_value,
        "entry_number": decl.entry_number,
        "validation_ok": val.get("ok"),
        "postal_form": val.get("postal_form"),
        "updated_at": decl.updated_at.isoformat(),
    }


# --- handlers -------------------------------------------------------------------------


async def create(request: web.Request) -> web.Response:
    principal = require(request, WRITE)
    body = validate(DeclarationCreate, await read_json(request))
    now = request.app[keys.CLOCK]()
    header = body.header.model_dump(exclude_none=True)
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        lines = [_line_data(line) for line in body.lines or []]
        order_currency: str | None = None
        if body.shipment_id is not None:
            try:
                shipment, order = await store.shipment_and_order(session, principal.seller_id, body.shipment_id)
            except NotFoundError as err:
                raise Problem(
                    422,
                    "unknown-reference",
                    "No such shipment.",
                    errors=[{"path": "shipment_id", "message": "no such shipment", "type": "reference"}],
                ) from err
            header.setdefault("order_number", order.order_number)
            header.setdefault("waybill_number", shipment.tracking_number)
            consignee = {
                "name": shipment.customer_name,
                "address": shipment.dest_address,
                "city": shipment.dest_city,
                "postcode": shipment.dest_postcode,
                "country": shipment.dest_country,
                "phone": shipment.customer_phone,
            }
            header["consignee"] = {**{k: v for k, v in consignee.items() if v}, **header.get("consignee", {})}
            if not lines:
                lines = _order_lines(order.items)
            order_currency = next((str(i["currency"]) for i in order.items if i.get("currency")), None)
        elif not lines:
            raise Problem(
                422,
                "validation-error",
                "Post the dossier's lines, or a shipment_id to copy them from.",
                errors=[{"path": "lines", "message": "lines or shipment_id is required", "type": "missing"}],
            )
        currency = (body.currency or order_currency or "USD").upper()
        loaded = await store.create(
            session,
            principal.seller_id,
            header=header,
            lines=lines,
            currency=currency,
            shipment_id=body.shipment_id,
            now=now,
        )
        await seller_store.audit(
            session,
            seller_id=principal.seller_id,
            actor=principal.key_prefix,
            action="declaration.created",
            object_type="declaration",
            object_id=loaded.declaration.id,
            now=now,
            details={"lines": len(lines)},
        )
        await session.commit()
        view = await _view(session, loaded, request)
    return web.json_response(view, status=201)


async def list_all(request: web.Request) -> web.Response:
    principal = require(request, WRITE)
    status = request.query.get("status")
    if status is not None and status not in ("draft", "validated", "approved", "submitted", "released", "rejected"):
        raise Problem(400, "bad-query", "Unknown status.", errors=[{"path": "status", "message": "unknown status"}])
    async with request.app[keys.SESSIONMAKER]() as session:
        rows = await store.list_for(
            session, principal.seller_id, statuses=(status,) if status else None, after=request.query.get("cursor")
        )
    return web.json_response(
        {"data": [_summary(d) for d in rows], "next_cursor": rows[-1].id if len(rows) == 50 else None}
    )


async def review_queue(request: web.Request) -> web.Response:
    principal = require(request, REVIEW)
    async with request.app[keys.SESSIONMAKER]() as session:
        rows = await store.list_for(session, principal.seller_id, statuses=REVIEW_STATES, limit=200)
    return web.json_response({"data": [_summary(d) for d in rows], "next_cursor": None})


async def get_one(request: web.Request) -> web.Response:
    principal = _reader(request)
    async with request.app[keys.SESSIONMAKER]() as session:
        loaded = await _load_for_reading(session, principal, request)
        view = await _view(session, loaded, request)
    return web.json_response(view)


async def update(request: web.Request) -> web.Response:
    principal = require(request, WRITE)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        loaded = await _load(session, principal, request, for_update=True)
        body = validate(DeclarationPatch, await read_json(request))
        decl = loaded.declaration
        try:
            check_editable(decl)
        except TransitionError as err:
            raise _conflict(err) from err
        changed: list[str] = []
        if body.header is not None:
            decl.header = {**decl.header, **body.header.model_dump(exclude_none=True)}
            changed.append("header")
        if body.currency is not None:
            decl.currency = body.currency.upper()
            changed.append("currency")
        lines = loaded.lines
        if body.lines is not None:
            lines = await store.replace_lines(session, decl, [_line_data(line) for line in body.lines])
            changed.append("lines")
        decl.validation = {}
        await seller_store.audit(
            session,
            seller_id=decl.seller_id,
            actor=principal.key_prefix,
            action="declaration.updated",
            object_type="declaration",
            object_id=decl.id,
            now=now,
            details={"fields": changed},
        )
        if decl.status != "draft":
            await move(session, decl, "draft", actor=principal.key_prefix, action="declaration.reopened", now=now)
        decl.updated_at = now
        session.add(decl)
        await session.commit()
        view = await _view(session, Loaded(decl, lines), request)
    return web.json_response(view)


async def _references(
    session: AsyncSession, decl: Declaration
) -> tuple[validation.OrderRef | None, validation.WaybillRef | None]:
    header = decl.header
    order_ref = waybill_ref = None
    if decl.shipment_id is not None:
        shipment, order = await store.shipment_and_order(session, decl.seller_id, decl.shipment_id)
        order_ref = validation.OrderRef(order.order_number, list(order.items))
        waybill_ref = validation.WaybillRef(shipment.tracking_number)
    snap = header.get("order")
    if order_ref is None and isinstance(snap, dict):
        order_ref = validation.OrderRef(str(snap.get("number")), list(snap.get("items") or []))
    wb = header.get("waybill")
    if isinstance(wb, dict):
        waybill_ref = validation.WaybillRef(
            str(wb.get("number") or (waybill_ref.number if waybill_ref else "")),
            wb.get("packages"),
            wb.get("gross_weight_kg"),
        )
    return order_ref, waybill_ref


async def run_validation(request: web.Request) -> web.Response:
    principal = require(request, WRITE)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        loaded = await _load(session, principal, request, for_update=True)
        decl = loaded.declaration
        try:
            target = check_transition(decl, "validate")
        except TransitionError as err:
            raise _conflict(err) from err
        order_ref, waybill_ref = await _references(session, decl)
        result = validation.validate(
            decl.header,
            [store.line_dict(x) for x in loaded.lines],
            decl.currency,
            on=now.date(),
            rates=request.app[RATES],
            order=order_ref,
            waybill=waybill_ref,
        )
        decl.validation = {**result.as_dict(), "checked_at": now.isoformat()}
        if result.ok:
            await move(session, decl, target, actor=principal.key_prefix, action="declaration.validated", now=now)
        else:
            await seller_store.audit(
                session,
                seller_id=decl.seller_id,
                actor=principal.key_prefix,
                action="declaration.validation_failed",
                object_type="declaration",
                object_id=decl.id,
                now=now,
                details={"errors": len(result.errors)},
            )
            if decl.status == "validated":
                await move(session, decl, "draft", actor=principal.key_prefix, action="declaration.reopened", now=now)
            session.add(decl)
        await session.commit()
        if not result.ok:
            errors: list[dict[str, Any]] = list(result.as_dict()["errors"])
            raise Problem(
                422,
                "declaration-invalid",
                f"The dossier has {len(errors)} problem(s); the first is at {errors[0]['path']}.",
                errors=errors,
            )
        view = await _view(session, loaded, request)
    return web.json_response(view)


async def _step(request: web.Request, action: str, scope: str) -> web.Response:
    principal = require(request, scope)
    now = request.app[keys.CLOCK]()
    async with writing(request.app[keys.SESSIONMAKER]) as session:
        loaded = await _load(session, principal, request, for_update=True)
        decl = loaded.declaration
        details: dict[str, Any] = {}
        if action == "submit":
            body_s = validate(SubmitBody, await read_json(request))
            problem = entry_number_error(body_s.entry_number, now)
            if problem:
                raise Problem(
                    422,
                    "validation-error",
                    f"entry_number: {problem}.",
                    errors=[{"path": "entry_number", "message": problem, "type": "entry_number"}],
                )
        elif action == "reject":
            body_r = validate(RejectBody, await read_json(request))
        try:
            target = check_transition(decl, action)
            if action == "approve":
                check_four_eyes(
                    await seller_store.audit_trail(session, decl.seller_id, "declaration", decl.id),
                    principal.key_prefix,
                )
        except TransitionError as err:
            raise _conflict(err) from err
        if action == "submit":
            decl.entry_number = body_s.entry_number
            details["entry_number"] = body_s.entry_number
        elif action == "reject":
            decl.reject_reason = body_r.reason
            details["reason"] = body_r.reason
        await move(
            session, decl, target, actor=principal.key_prefix, action=f"declaration.{target}", now=now, details=details
        )
        await session.commit()
        view = await _view(session, loaded, request)
    return web.json_response(view)


async def approve(request: web.Request) -> web.Response:
    return await _step(request, "approve", REVIEW)


async def submit(request: web.Request) -> web.Response:
    return await _step(request, "submit", REVIEW)


async def release(request: web.Request) -> web.Response:
    return await _step(request, "release", REVIEW)


async def reject(request: web.Request) -> web.Response:
    return await _step(request, "reject", REVIEW)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def filename(kind: str, decl: Declaration) -> str:
    ref = str(decl.header.get("invoice_number") or decl.header.get("waybill_number") or decl.id)
    return f"{kind}-{_SAFE.sub('_', ref)[:60]}.pdf"


async def prepare_document(request: web.Request, loaded: Loaded, kind: str) -> tuple[str, Dossier]:
    """The HTML of one document, or a problem saying why it cannot be produced yet."""
    decl = loaded.declaration
    if kind not in KINDS:
        raise Problem(404, "not-found", f"Unknown document kind; known: {', '.join(KINDS)}.")
    if decl.status in ("draft", "rejected") or not decl.validation:
        raise Problem(409, "not-validated", "Validate the dossier first (POST /v1/declarations/{id}/validate).")
    stored: dict[str, Any] = dict(decl.validation)
    if kind == "cn22" and stored.get("postal_form") == "cn23":
        raise Problem(
            422,
            "use-cn23",
            f"The contents are worth {stored.get('value_sdr')} SDR, over the 300 SDR limit "
            "of a CN22; use the CN23 (documents/cn23.pdf).",
            applies="cn23",
        )
    if not (stored.get("documents") or {}).get(kind):
        errors = [e for e in stored.get("errors", []) if kind in e.get("documents", [])]
        raise Problem(422, "document-not-ready", f"The dossier is not complete for {kind}.", errors=errors)
    settings = request.app[keys.SETTINGS]
    token = None
    if decl.shipment_id is not None:
        async with request.app[keys.SESSIONMAKER]() as session:
            shipment, _ = await store.shipment_and_order(session, decl.seller_id, decl.shipment_id)
            token = shipment.public_token
    dossier = Dossier(
        decl.id,
        decl.status,
        decl.header,
        [store.line_dict(x) for x in loaded.lines],
        decl.currency,
        decl.entry_number,
        f"{settings.server.public_url}/t/{token}" if token else None,
    )
    result = validation.Result(
        goods_value=validation.dec(stored.get("goods_value")),
        invoice_total=validation.dec(stored.get("invoice_total")),
        value_sdr=validation.dec(stored.get("value_sdr")),
        postal_form=stored.get("postal_form"),
    )
    html = render_html(kind, context(kind, dossier, result, generated_at=decl.updated_at))
    return html, dossier


async def pdf_response(request: web.Request, loaded: Loaded, kind: str) -> web.StreamResponse:
    html, dossier = await prepare_document(request, loaded, kind)
    renderer = request.app[RENDERER]
    payload = {**dossier.as_json(), "validation": loaded.declaration.validation}
    etag = Renderer.etag(html, Renderer.attachment(payload))
    quoted = f'"{etag}"'
    headers = {"ETag": quoted, "Cache-Control": "private, no-cache"}
    if quoted in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    rendered = await renderer.pdf(html, payload, created=loaded.declaration.updated_at)
    headers["Content-Disposition"] = f'attachment; filename="{filename(kind, loaded.declaration)}"'
    return web.Response(body=rendered.pdf, content_type="application/pdf", headers=headers)


async def document(request: web.Request) -> web.StreamResponse:
    principal = _reader(request)
    async with request.app[keys.SESSIONMAKER]() as session:
        loaded = await _load_for_reading(session, principal, request)
    return await pdf_response(request, loaded, request.match_info["kind"])


# --- wiring ---------------------------------------------------------------------------


def customs_settings(app: web.Application) -> CustomsSettings:
    found = getattr(app[keys.SETTINGS], "customs", None)
    return found if isinstance(found, CustomsSettings) else CustomsSettings()


async def renderer_ctx(app: web.Application) -> AsyncIterator[None]:
    conf = customs_settings(app)
    if not await asyncio.to_thread(cjk_font_available):
        log.warning(
            "no CJK font found: Chinese customs documents would render without glyphs; "
            "run scripts/system-deps.sh runtime"
        )
    app[RATES] = Rates.bundled(conf.rates or None, conf.rates_date or None)
    renderer = app[keys.SERVICES].get("customs_renderer")
    owned = renderer is None
    app[RENDERER] = renderer or Renderer(workers=conf.pdf_workers, cache_bytes=conf.pdf_cache_bytes)
    yield
    if owned:
        app[RENDERER].close()


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/declarations", create)
    app.router.add_get("/v1/declarations", list_all)
    app.router.add_get("/v1/declarations/review-queue", review_queue)
    app.router.add_get("/v1/declarations/{id}", get_one)
    app.router.add_patch("/v1/declarations/{id}", update)
    app.router.add_post("/v1/declarations/{id}/validate", run_validation)
    app.router.add_post("/v1/declarations/{id}/approve", approve)
    app.router.add_post("/v1/declarations/{id}/submit", submit)
    app.router.add_post("/v1/declarations/{id}/release", release)
    app.router.add_post("/v1/declarations/{id}/reject", reject)
    app.router.add_get("/v1/declarations/{id}/documents/{kind:[^/]+}.pdf", document)


# --- OpenAPI --------------------------------------------------------------------------


def _document_api() -> None:
    op, ok, problems, pid = openapi.operation, openapi.ok, openapi.problems, openapi.path_param
    schemas: dict[str, Any] = {}
    for model, name in (
        (DeclarationCreate, "DeclarationCreate"),
        (DeclarationPatch, "DeclarationPatch"),
        (SubmitBody, "DeclarationSubmit"),
        (RejectBody, "DeclarationReject"),
    ):
        schema, defs = model_schema(model)
        schemas[name] = schema
        schemas.update(defs)
    obj = {"type": "object"}
    nullable = {"type": ["string", "null"]}
    schemas["Declaration"] = {
        "type": "object",
        "required": ["id", "status", "currency", "header", "lines", "documents", "audit"],
        "properties": {
            "id": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["draft", "validated", "approved", "submitted", "released", "rejected"],
            },
            "shipment_id": nullable,
            "currency": {"type": "string"},
            "total_value": {"type": "string"},
            "entry_number": nullable,
            "reject_reason": nullable,
            "header": obj,
            "lines": {"type": "array", "items": obj},
            "validation": {"type": ["object", "null"]},
            "postal_form": nullable,
            "documents": obj,
            "customs_release": {"type": ["object", "null"]},
            "audit": {"type": "array", "items": {"type": "object", "required": ["at", "actor", "action"]}},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
        },
    }
    schemas["DeclarationList"] = {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {"data": {"type": "array", "items": obj}, "next_cursor": nullable},
    }
    decl = ok("Declaration")
    write_body = openapi.json_body
    doc = openapi.document
    doc(
        "post",
        "/v1/declarations",
        op(
            "Create a dossier from a shipment or whole",
            "declarations",
            {"201": ok("Declaration", "Created"), **problems(*openapi.WRITE)},
            scope=WRITE,
            body=write_body("DeclarationCreate"),
        ),
        schemas,
    )
    doc(
        "get",
        "/v1/declarations",
        op(
            "List dossiers",
            "declarations",
            {"200": ok("DeclarationList"), **problems(400, *openapi.AUTHED)},
            scope=WRITE,
            params=[
                openapi.query_param("status", {"type": "string"}),
                openapi.query_param("cursor", {"type": "string"}),
            ],
        ),
    )
    doc(
        "get",
        "/v1/declarations/review-queue",
        op(
            "Dossiers awaiting a clerk",
            "declarations",
            {"200": ok("DeclarationList"), **problems(*openapi.AUTHED)},
            scope=REVIEW,
        ),
    )
    doc(
        "get",
        "/v1/declarations/{id}",
        op(
            "One dossier with its validation and audit trail",
            "declarations",
            {"200": decl, **problems(*openapi.AUTHED, 404)},
            scope=WRITE,
            params=[pid()],
        ),
    )
    doc(
        "patch",
        "/v1/declarations/{id}",
        op(
            "Correct a dossier (back to draft)",
            "declarations",
            {"200": decl, **problems(*openapi.WRITE, 404, 409)},
            scope=WRITE,
            body=write_body("DeclarationPatch"),
            params=[pid()],
        ),
    )
    doc(
        "post",
        "/v1/declarations/{id}/validate",
        op(
            "Validate before any document is rendered",
            "declarations",
            {"200": decl, **problems(*openapi.AUTHED, 404, 409, 422)},
            scope=WRITE,
            params=[pid()],
        ),
    )
    for action, summary in (
        ("approve", "Approve (a clerk key other than the author's)"),
        ("release", "Record customs release"),
    ):
        doc(
            "post",
            f"/v1/declarations/{{id}}/{action}",
            op(
                summary,
                "declarations",
                {"200": decl, **problems(*openapi.AUTHED, 404, 409)},
                scope=REVIEW,
                params=[pid()],
            ),
        )
    doc(
        "post",
        "/v1/declarations/{id}/submit",
        op(
            "Record submission with the customs entry number",
            "declarations",
            {"200": decl, **problems(*openapi.AUTHED, 404, 409)},
            scope=REVIEW,
            body=write_body("DeclarationSubmit"),
            params=[pid()],
        ),
    )
    doc(
        "post",
        "/v1/declarations/{id}/reject",
        op(
            "Reject with a reason (back to the seller)",
            "declarations",
            {"200": decl, **problems(*openapi.AUTHED, 404, 409)},
            scope=REVIEW,
            body=write_body("DeclarationReject"),
            params=[pid()],
        ),
    )
    pdf_op = op(
        "Download one document as PDF/A-3b",
        "declarations",
        {
            "200": {
                "description": "PDF/A-3b with the dossier JSON attached",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            },
            "304": {"description": "Not modified (If-None-Match matched the ETag)"},
            **problems(*openapi.AUTHED, 404, 409, 422),
        },
        scope=WRITE,
        params=[pid(), pid("kind")],
    )
    pdf_op["description"] += f" A key with `{REVIEW}` may download dossiers sent for review."
    doc("get", "/v1/declarations/{id}/documents/{kind}.pdf", pdf_op)


_document_api()
