"""Rendered PDFs: every kind, CJK glyphs embedded, PDF/A-3b with the dossier attached, page
numbers and running totals on every page, the cache and the process pool."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import barcode
import pytest
from barcode.writer import SVGWriter
from pypdf import PdfReader
from weasyprint import HTML, Attachment

from tests.customs import header, lines
from tracker.customs import KINDS
from tracker.customs.barcodes import code128
from tracker.customs.documents import Dossier, context
from tracker.customs.render import ATTACHMENT_NAME, BASE_URL, Renderer, _fetcher, render_html, write_pdf
from tracker.customs.sdr import Rates
from tracker.customs.validation import validate

WHEN = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def html_for(kind: str, n_lines: int | None = None, **changes: Any) -> tuple[str, Dossier]:
    h, ls = header(**changes), lines(n_lines)
    if n_lines:
        net = sum(Decimal(x["net_weight_kg"]) for x in ls)
        h.update(net_weight_kg=str(net), gross_weight_kg=str(net * 2))
    result = validate(h, ls, "USD", on=WHEN.date(), rates=Rates.bundled())
    assert result.ready(kind) or kind == "cn23", [i.as_dict() for i in result.errors]
    dossier = Dossier("dcl_01TEST", "validated", h, ls, "USD", None, "http://tracker.test/t/tok123")
    return render_html(kind, context(kind, dossier, result, generated_at=WHEN)), dossier


def pdf_for(kind: str, n_lines: int | None = None) -> tuple[PdfReader, bytes, Dossier]:
    html, dossier = html_for(kind, n_lines)
    attachment = Renderer.attachment(dossier.as_json())
    pdf = write_pdf(html, attachment, WHEN.isoformat())
    return PdfReader(io.BytesIO(pdf)), pdf, dossier


def fonts(reader: PdfReader) -> set[str]:
    names: set[str] = set()
    for page in reader.pages:
        resources = page.get("/Resources") or {}
        for font in (resources.get("/Font") or {}).values():
            obj = font.get_object()
            names.add(str(obj.get("/BaseFont")))
            for desc in obj.get("/DescendantFonts") or []:
                d = desc.get_object()
                fd = d.get("/FontDescriptor")
                if fd is not None and any(k in fd.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                    names.add(str(d.get("/BaseFont")) + "+embedded")
    return names


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders(kind: str) -> None:
    reader, _, _ = pdf_for(kind)
    text = "".join(page.extract_text() for page in reader.pages)
    assert "Page 第 1 / " in text
    if kind in ("cn_export_declaration", "cbec_export_list", "inspection_declaration"):
        assert {
            "cn_export_declaration": "出口货物报关单",
            "cbec_export_list": "申报清单",
            "inspection_declaration": "检验检疫",
        }[kind] in text
        assert "男式棉制针织T恤" in text
        # glyphs really embedded, not just mapped: the CJK font file is in the PDF
        assert any("WenQuanYi" in f and f.endswith("+embedded") for f in fonts(reader)), fonts(reader)
    else:
        assert "Men's cotton knitted T-shirt" in text


def test_pdf_a3b_with_the_dossier_attached() -> None:
    reader, _raw, dossier = pdf_for("commercial_invoice")
    files = reader.attachments
    assert list(files) == ["dossier.json"]
    assert json.loads(files["dossier.json"][0]) == dossier.as_json()
    meta = reader.xmp_metadata
    assert meta is not None
    xml = meta.stream.get_data().decode()  # type: ignore[attr-defined]
    assert 'pdfaid:part="3"' in xml
    assert 'pdfaid:conformance="B"' in xml


def test_long_document_has_page_numbers_and_running_totals_on_every_page() -> None:
    reader, _, _ = pdf_for("cn_export_declaration", 50)
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) >= 3
    totals = []
    for i, text in enumerate(pages, start=1):
        assert f"Page 第 {i} / {len(pages)} 页" in text
        assert "Total 合计: USD 1,375.00" in text
        assert "33 项号" in text  # the table header repeats on each page
        running = text.split("Running total 累计: USD ")[1].split()[0]
        totals.append(Decimal(running.replace(",", "")))
    assert totals == sorted(totals)
    assert totals[-1] == Decimal("1375.00")
    assert totals[0] < totals[-1]


def test_barcodes_and_qr_are_inline_svg() -> None:
    html, _ = html_for("cn22")
    assert html.count("<svg") >= 2  # Code 128 of the waybill and the QR to the tracking page
    assert "<img" not in html


@pytest.mark.parametrize("value", ["TRK0000000001", "INV-2026-0001", "dcl_01TEST", "0", "1234567890", "~ !" * 26])
def test_code128_draws_the_bars_python_barcode_draws(value: str) -> None:
    buf = io.BytesIO()
    barcode.get("code128", value, writer=SVGWriter()).write(
        buf, options={"module_height": 9.0, "module_width": 0.25, "write_text": False, "quiet_zone": 2.0}
    )
    svg = re.sub(r"<!--.*?-->", "", re.sub(r"^.*?(?=<svg)", "", buf.getvalue().decode(), count=1, flags=re.S))
    svg = svg.replace('style="fill:black;"', 'fill="black"').replace('style="fill:white"', 'fill="white"')
    assert code128(value) == svg.replace(' id="barcode_group"', "")


def test_a_worker_reusing_its_fonts_writes_the_same_bytes_as_a_fresh_render() -> None:
    html, dossier = html_for("cbec_export_list")
    attachment = Renderer.attachment(dossier.as_json())
    first = write_pdf(html, attachment, WHEN.isoformat())
    fetcher = _fetcher()
    doc = Attachment(
        string=attachment,
        name=ATTACHMENT_NAME,
        description="Declaration dossier (JSON)",
        relationship="Data",
        created=WHEN,
        modified=WHEN,
        url_fetcher=fetcher,
    )
    fresh = HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher).write_pdf(
        pdf_variant="pdf/a-3b", attachments=[doc], pdf_identifier=hashlib.md5(attachment).digest()
    )
    assert write_pdf(html, attachment, WHEN.isoformat()) == first == fresh


async def test_renderer_caches_by_content_and_uses_the_executor() -> None:
    with ThreadPoolExecutor(1) as pool:
        renderer = Renderer(executor=pool)
        html, dossier = html_for("cn22")
        first = await renderer.pdf(html, dossier.as_json(), created=WHEN)
        again = await renderer.pdf(html, dossier.as_json(), created=WHEN)
        assert (renderer.misses, renderer.hits) == (1, 1)
        assert again.pdf is first.pdf
        assert again.etag == first.etag
        other_html, _ = html_for("cn22", waybill_number="TRK999")
        other = await renderer.pdf(other_html, dossier.as_json(), created=WHEN)
        assert other.etag != first.etag
        assert renderer.misses == 2


async def test_the_event_loop_keeps_running_while_a_pdf_renders() -> None:
    renderer = Renderer(workers=1)
    try:
        html, dossier = html_for("cn_export_declaration", 30)
        task = asyncio.create_task(renderer.pdf(html, dossier.as_json(), created=WHEN))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0)
            ticks += 1
        assert (await task).pdf.startswith(b"%PDF")
        assert ticks > 10  # the loop ran other work for the whole render
    finally:
        renderer.close()
