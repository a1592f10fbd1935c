"""The renderer loads packaged assets only; seller text is escaped; a canary never leaks."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jinja2 import UndefinedError
from pypdf import PdfReader

from tests.customs import header, lines
from tracker.customs.documents import Dossier, context
from tracker.customs.render import TEMPLATES, RefusedURL, asset_path, environment, render_html, write_pdf
from tracker.customs.sdr import Rates
from tracker.customs.validation import validate

WHEN = "2026-03-02T08:00:00+00:00"
CANARY_TEXT = "CANARY-7f3a9c-SECRET"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "canary.txt"
    path.write_text(CANARY_TEXT)
    return path


def page(body: str, head: str = "") -> str:
    return f'<html><head><link rel="stylesheet" href="customs.css">{head}</head><body><p>x</p>{body}</body></html>'


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "http://127.0.0.1:9/x.css",
        "https://example.com/a.png",
        "data:text/plain,hi",
        (TEMPLATES / ".." / "pyproject.toml").as_uri(),
        (TEMPLATES / "base.html.j2").as_uri(),
        TEMPLATES.as_uri() + "/customs.css?x=1",
        "ftp://example.com/x",
    ],
)
def test_only_packaged_assets_resolve(url: str) -> None:
    with pytest.raises(RefusedURL):
        asset_path(url)


def test_the_packaged_stylesheet_resolves() -> None:
    assert asset_path((TEMPLATES / "customs.css").as_uri()) == TEMPLATES / "customs.css"


@pytest.mark.parametrize(
    "markup",
    [
        '<img src="{canary}">',
        '<link rel="attachment" href="{canary}">',
        '<a rel="attachment" href="{canary}">a</a>',
        '<div style="background: url({canary})">x</div>',
        '<embed src="{canary}">',
        '<img src="http://127.0.0.1:9/pixel.png">',
        '<object data="file:///etc/passwd"></object>',
    ],
)
def test_templates_pointing_outside_are_refused(markup: str, canary: Path) -> None:
    html = page(markup.format(canary=canary.as_uri()))
    with pytest.raises(RefusedURL):
        write_pdf(html, b"{}", WHEN)


def test_css_url_is_refused(canary: Path) -> None:
    html = page("", head=f"<style>@import url({canary.as_uri()}); p {{ background: url({canary.as_uri()}) }}</style>")
    with pytest.raises(RefusedURL):
        write_pdf(html, b"{}", WHEN)


def test_seller_text_is_escaped_and_never_fetched(canary: Path) -> None:
    hostile = f'<img src="{canary.as_uri()}"><script>alert(1)</script>'
    h = header(exporter={**header()["exporter"], "name": hostile})
    ls = lines()
    ls[0]["description_en"] = f"Cotton shirt <link rel=attachment href={canary.as_uri()}>"
    result = validate(h, ls, "USD", on=datetime(2026, 3, 2, tzinfo=UTC).date(), rates=Rates.bundled())
    dossier = Dossier("dcl_X", "validated", h, ls, "USD", None, None)
    html = render_html(
        "commercial_invoice",
        context("commercial_invoice", dossier, result, generated_at=datetime(2026, 3, 2, tzinfo=UTC)),
    )
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "<img src=" not in html
    assert "<link rel=attachment" not in html
    pdf = write_pdf(html, b"{}", WHEN)
    reader = PdfReader(io.BytesIO(pdf))
    text = "".join(p.extract_text() for p in reader.pages)
    assert "<script>alert(1)</script>" in text  # shown as text
    assert CANARY_TEXT not in text
    assert CANARY_TEXT.encode() not in pdf
    assert list(reader.attachments) == ["dossier.json"]


def test_a_missing_field_fails_instead_of_printing_a_blank() -> None:
    env = environment()
    assert env.autoescape is True
    with pytest.raises(UndefinedError):
        env.from_string("{{ h.invoice_number }}").render(h={})
