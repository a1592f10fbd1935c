"""Customs PDF rendering: our pipeline (Jinja -> process pool -> WeasyPrint PDF/A-3b with the
dossier attached) against WeasyPrint rendering the same HTML directly, in the same run.

    python bench/pdf.py [--quick] [--reps N]

Figures: median render time per document kind and for a 50-line export declaration (baseline:
plain `HTML(string=...).write_pdf()` of the same HTML in this process; target ratio <= 1.15),
the cache-hit latency, and documents per second with a pool of 2 worker processes."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.customs import header, lines
from tracker.customs import KINDS
from tracker.customs.documents import Dossier, context
from tracker.customs.render import BASE_URL, Renderer, render_html
from tracker.customs.sdr import Rates
from tracker.customs.validation import validate

WHEN = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def make(kind: str, n: int | None, salt: int) -> tuple[Dossier, Any]:
    h, ls = header(invoice_number=f"INV-{salt:06d}"), lines(n)
    if n:
        net = sum(Decimal(x["net_weight_kg"]) for x in ls)
        h.update(net_weight_kg=str(net), gross_weight_kg=str(net * 2))
    result = validate(h, ls, "USD", on=WHEN.date(), rates=Rates.bundled())
    return Dossier(f"dcl_{salt:06d}", "validated", h, ls, "USD", None, "http://tracker.test/t/tok"), result


def direct(html: str) -> float:
    from weasyprint import HTML

    t = time.perf_counter()
    HTML(string=html, base_url=BASE_URL).write_pdf()
    return time.perf_counter() - t


async def ours(renderer: Renderer, kind: str, dossier: Dossier, result: Any) -> float:
    t = time.perf_counter()
    html = render_html(kind, context(kind, dossier, result, generated_at=WHEN))
    await renderer.pdf(html, dossier.as_json(), created=WHEN)
    return time.perf_counter() - t


async def main(quick: bool, reps: int | None = None) -> list[dict[str, Any]]:
    reps = reps or (2 if quick else 11)
    figures: list[dict[str, Any]] = []
    # one worker for the comparison so both sides render on one core; no cache (every render is new)
    renderer = Renderer(workers=1, cache_bytes=0)
    # both sides render one Latin and CJK document first, so neither pays its process's first render
    dossier, result = make("cbec_export_list", None, 0)
    await ours(renderer, "cbec_export_list", dossier, result)
    direct(render_html("cbec_export_list", context("cbec_export_list", dossier, result, generated_at=WHEN)))
    cases = [(k, None) for k in KINDS] + [("cn_export_declaration", 50)]
    salt = 0
    for kind, n in cases:
        ours_t, base_t = [], []
        for rep in range(reps):
            salt += 1
            dossier, result = make(kind, n, salt)
            html = render_html(kind, context(kind, dossier, result, generated_at=WHEN))
            # alternate which side goes first: the one after inherits caches the other evicted
            if rep % 2:
                base_t.append(direct(html))
            ours_t.append(await ours(renderer, kind, dossier, result))
            if not rep % 2:
                base_t.append(direct(html))
        o, b = statistics.median(ours_t), statistics.median(base_t)
        name = f"{kind}{'_50_lines' if n else ''}"
        figures.append(
            {
                "metric": f"render_median_{name}",
                "value": round(o * 1000, 1),
                "unit": "ms",
                "baseline": "weasyprint HTML.write_pdf of the same HTML, in process",
                "baseline_value": round(b * 1000, 1),
                "ratio": round(o / b, 3),
            }
        )
        print(f"{name:40s} ours {o * 1000:7.1f} ms  direct {b * 1000:7.1f} ms  ratio {o / b:.3f}")
    renderer.close()

    cached = Renderer(workers=1)
    await cached.pdf("<p>warm</p>", {}, created=WHEN)
    dossier, result = make("cn22", None, 0)
    html = render_html("cn22", context("cn22", dossier, result, generated_at=WHEN))
    first = time.perf_counter()
    await cached.pdf(html, dossier.as_json(), created=WHEN)
    miss = time.perf_counter() - first
    hits = []
    for _ in range(200 if not quick else 50):
        t = time.perf_counter()
        await cached.pdf(html, dossier.as_json(), created=WHEN)
        hits.append(time.perf_counter() - t)
    hit = statistics.median(hits)
    cached.close()
    figures.append(
        {
            "metric": "cache_hit_latency",
            "value": round(hit * 1e6, 1),
            "unit": "us",
            "baseline": "cache miss (render)",
            "baseline_value": round(miss * 1e6, 1),
            "ratio": round(hit / miss, 5),
        }
    )
    print(f"cache hit {hit * 1e6:.1f} us vs miss {miss * 1000:.1f} ms")

    docs = 8 if quick else 28
    rates = {}
    for workers in (1, 2):
        pool = Renderer(workers=workers, cache_bytes=0)
        await asyncio.gather(*(pool.pdf(f"<p>warm {i}</p>", {}, created=WHEN) for i in range(workers)))
        jobs = []
        for i in range(docs):
            kind = KINDS[i % len(KINDS)]
            d, r = make(kind, None, 10_000 + i)
            jobs.append(pool.pdf(render_html(kind, context(kind, d, r, generated_at=WHEN)), d.as_json(), created=WHEN))
        t = time.perf_counter()
        await asyncio.gather(*jobs)
        rates[workers] = docs / (time.perf_counter() - t)
        pool.close()
    figures.append(
        {
            "metric": "documents_per_second_pool_2",
            "value": round(rates[2], 2),
            "unit": "docs/s",
            "baseline": "pool of 1 worker",
            "baseline_value": round(rates[1], 2),
            "ratio": round(rates[2] / rates[1], 3),
        }
    )
    print(f"documents/s: 2 workers {rates[2]:.2f}, 1 worker {rates[1]:.2f}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, help="renders per document kind and side (default 11, 2 with --quick)")
    args = parser.parse_args()
    out = asyncio.run(main(args.quick, args.reps))
    target = Path(__file__).parent / "out" / "pdf.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps({"figures": out}, indent=2))
    print(f"wrote {target}")
