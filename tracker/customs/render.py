"""HTML from Jinja templates, PDF from WeasyPrint in worker processes, cached by content hash.

Safety: the templates are the project's own (autoescaped, StrictUndefined so a missing field
fails instead of printing a blank); seller text only reaches them as escaped data. WeasyPrint
may fetch only files under `customs_templates/` through `AssetFetcher`; anything else (file
paths outside, http, data URLs, attachments) aborts the render."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import threading
from collections import OrderedDict
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pydyf  # type: ignore[import-untyped]
from jinja2 import Environment, FileSystemLoader, StrictUndefined

log = logging.getLogger("tracker.customs")

TEMPLATES = Path(__file__).resolve().parents[2] / "customs_templates"
BASE_URL = TEMPLATES.as_uri() + "/"
ATTACHMENT_NAME = "dossier.json"
CJK_FAMILY = "WenQuanYi Micro Hei"


class RefusedURL(Exception):
    """A document tried to load something other than a packaged asset."""


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_ENV: Environment | None = None


def render_html(kind: str, ctx: dict[str, Any]) -> str:
    global _ENV
    if _ENV is None:
        _ENV = environment()
    return _ENV.get_template(f"{kind}.html.j2").render(**ctx)


def asset_path(url: str) -> Path:
    """The packaged file a URL names, or RefusedURL."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost") or parts.query:
        raise RefusedURL(f"only packaged assets may be loaded, not {url[:200]}")
    path = Path(unquote(parts.path)).resolve()
    if not path.is_relative_to(TEMPLATES) or not path.is_file() or path.suffix not in (".css", ".svg", ".png"):
        raise RefusedURL(f"not a packaged asset: {url[:200]}")
    return path


def _fetcher() -> Any:
    from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

    class AssetFetcher(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: Any = None) -> Any:
            try:
                path = asset_path(url)
            except RefusedURL as err:
                raise FatalURLFetchingError(str(err)) from err
            return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": _mime(path)})

    return AssetFetcher(allowed_protocols={"file"}, allow_redirects=False, fail_on_errors=True)


def _mime(path: Path) -> str:
    return {".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}[path.suffix]


def write_pdf(html: str, attachment: bytes, created_iso: str) -> bytes:
    """Runs in a worker process: one PDF/A-3b with the dossier JSON attached."""
    from weasyprint import HTML, Attachment
    from weasyprint.urls import FatalURLFetchingError

    tools = _tools()
    created = datetime.fromisoformat(created_iso)
    doc = Attachment(
        string=attachment,
        name=ATTACHMENT_NAME,
        description="Declaration dossier (JSON)",
        relationship="Data",
        created=created,
        modified=created,
        url_fetcher=tools.fetcher,
    )
    try:
        pdf: bytes = HTML(string=html, base_url=BASE_URL, url_fetcher=tools.fetcher).write_pdf(
            pdf_variant="pdf/a-3b",
            attachments=[doc],
            pdf_identifier=hashlib.md5(attachment).digest(),  # noqa: S324
            font_config=tools.fonts,
            finisher=_serialize_once,
        )
    except FatalURLFetchingError as err:
        raise RefusedURL(str(err)) from None
    return pdf


@dataclass(frozen=True, slots=True)
class _Tools:
    pid: int
    fonts: Any
    fetcher: Any


_LOCAL = threading.local()


def _tools() -> _Tools:
    """This thread's font configuration and fetcher, kept across renders: a fresh
    FontConfiguration reloads fontconfig and reopens every face, which costs a short document
    10 to 20% of its time. Per thread because Pango's font map is not thread-safe; per process
    because a forked child must not share its parent's."""
    tools: _Tools | None = getattr(_LOCAL, "tools", None)
    if tools is None or tools.pid != os.getpid():
        from weasyprint.text.fonts import FontConfiguration

        tools = _Tools(os.getpid(), FontConfiguration(), _fetcher())
        _LOCAL.tools = tools
    return tools


class _Serialized(pydyf.Object):  # type: ignore[misc]
    """A PDF object whose bytes are computed once; the file it belongs to is final."""

    def __init__(self, obj: Any) -> None:
        super().__init__()
        self.number, self.generation, self.free = obj.number, obj.generation, obj.free
        self._data: bytes = obj.data
        self._compressible: bool = obj.compressible

    @property
    def data(self) -> bytes:
        return self._data

    @property
    def compressible(self) -> bool:
        return self._compressible


def _serialize_once(_document: Any, pdf: Any) -> None:
    """WeasyPrint finisher, run just before the file is written. PDF/A needs a file identifier,
    and pydyf derives it by serializing every object a second time, deflating each stream
    again; freezing the bytes first leaves the file identical at half the serializing cost."""
    pdf.objects[:] = [obj if obj.free == "f" else _Serialized(obj) for obj in pdf.objects]


_WARM_HTML = (
    '<html lang="zh-Hans"><head><link rel="stylesheet" href="customs.css"></head><body>'
    '<h1>Warm 预热</h1><p class="zh">装箱单</p><table><tr><th>No.</th><td class="num">1.00</td></tr></table>'
    "</body></html>"
)


def _warm_up() -> None:
    """Pool initializer: import WeasyPrint and load the faces every document uses before the
    first request, so that one is not slower than the rest."""
    try:
        write_pdf(_WARM_HTML, b"{}", "2026-01-01T00:00:00+00:00")
    except Exception:  # a broken initializer would break the whole pool; real renders report it
        log.warning("PDF worker warm-up failed", exc_info=True)
    # what is alive now (modules, fonts) lives as long as the worker: spare the cycle
    # collector rescanning it during every long render
    gc.collect()
    gc.freeze()


def cjk_font_available() -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    out = subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
    return bool(out.stdout.strip())


@dataclass(frozen=True, slots=True)
class Rendered:
    etag: str
    pdf: bytes


class Renderer:
    """Owns the process pool and the PDF cache; the event loop only awaits."""

    def __init__(self, workers: int = 2, cache_bytes: int = 64 * 1024 * 1024, executor: Executor | None = None) -> None:
        self._own = executor is None
        self._executor = executor or ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_warm_up
        )
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = cache_bytes
        self._size = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def etag(html: str, attachment: bytes) -> str:
        h = hashlib.sha256()
        h.update(html.encode())
        h.update(b"\0")
        h.update(attachment)
        return h.hexdigest()[:32]

    @staticmethod
    def attachment(dossier_json: dict[str, Any]) -> bytes:
        return json.dumps(dossier_json, ensure_ascii=False, sort_keys=True, indent=1).encode()

    def cached(self, etag: str) -> bytes | None:
        pdf = self._cache.get(etag)
        if pdf is not None:
            self._cache.move_to_end(etag)
            self.hits += 1
        return pdf

    async def pdf(self, html: str, dossier_json: dict[str, Any], *, created: datetime) -> Rendered:
        attachment = self.attachment(dossier_json)
        etag = self.etag(html, attachment)
        hit = self.cached(etag)
        if hit is not None:
            return Rendered(etag, hit)
        self.misses += 1
        loop = asyncio.get_running_loop()
        pdf = await loop.run_in_executor(
            self._executor, write_pdf, html, attachment, created.astimezone(UTC).isoformat()
        )
        self._store(etag, pdf)
        return Rendered(etag, pdf)

    def _store(self, etag: str, pdf: bytes) -> None:
        if len(pdf) > self._cache_bytes:
            return
        self._cache[etag] = pdf
        self._size += len(pdf)
        while self._size > self._cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._size -= len(old)

    def close(self) -> None:
        if self._own:
            self._executor.shutdown(wait=True, cancel_futures=True)
