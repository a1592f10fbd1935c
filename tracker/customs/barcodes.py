"""Code 128 and QR codes as inline SVG, so the renderer never fetches an image."""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import groupby

import barcode
import segno
from markupsafe import Markup

_PRINTABLE = re.compile(r"^[\x20-\x7e]{1,80}$")
# the geometry python-barcode's SVG writer gives these options, written without its XML DOM
# (building that DOM cost more than the rest of a document's context)
_MODULE_MM = 0.25
_QUIET_ZONE_MM = 2.0
_MARGIN_MM = 1.0


def code128(value: str, *, height_mm: float = 9.0) -> Markup:
    """A Code 128 symbol for an ASCII value; the text is printed by the template beside it."""
    if not _PRINTABLE.match(value):
        raise ValueError("Code 128 takes 1 to 80 printable ASCII characters")
    modules: str = barcode.get("code128", value).build()[0]
    # presentation attributes instead of style="", and no fixed id: several symbols share a page
    size = f'y="{_MARGIN_MM:.3f}mm" width="{{:.3f}}mm" height="{height_mm:.3f}mm" fill="black"'
    bars = "".join(f'        <rect x="{x:.3f}mm" {size.format(w)}/>\n' for x, w in _bars(modules))
    width = 2 * _QUIET_ZONE_MM + len(modules) * _MODULE_MM
    height = 2 * _MARGIN_MM + height_mm
    # the writer's layout, blank line of its dropped comment included: documents and ETags stay as they were
    svg = (
        f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="{width:.3f}mm" height="{height:.3f}mm">\n'
        '    \n    <g>\n        <rect width="100%" height="100%" fill="white"/>\n'
        f"{bars}    </g>\n</svg>\n"
    )
    # the markup is produced here from a validated ASCII value, never from seller HTML
    return Markup(svg)  # noqa: S704


def _bars(modules: str) -> list[tuple[float, float]]:
    """(x, width) in mm of each run of dark modules, accumulated as python-barcode does."""
    out = []
    x = _QUIET_ZONE_MM
    for bit, run in groupby(modules):
        width = _MODULE_MM * len(list(run))
        if bit == "1":
            out.append((x, width))
        x += width
    return out


@lru_cache(maxsize=1024)
def qr(url: str, *, scale: int = 2) -> Markup:
    """The QR of a tracking URL; cached because every document of a dossier carries the same one
    and choosing the mask dominates the cost."""
    svg = segno.make(url, error="m").svg_inline(scale=scale, border=2)
    return Markup(svg)  # noqa: S704
