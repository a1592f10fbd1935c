"""Server-side SVG charts that read without JavaScript and without sight.

Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` that states every
value, text labels next to every bar, and no external resources or inline styles, so the
pages' Content-Security-Policy stays strict. The pages put a data table beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count

from markupsafe import Markup, escape

BAR_HEIGHT = 16
GAP = 10
LABEL_WIDTH = 120
PLOT_WIDTH = 190
VALUE_WIDTH = 70
COLORS = ("#1d4ed8", "#b45309")
_ids = count(1)


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]


def _fmt(value: float | None, formatter: Callable[[float], str], missing: str) -> str:
    return missing if value is None else formatter(value)


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    formatter: Callable[[float], str] = lambda v: f"{v:.1f}",
    missing: str = "–",
    maximum: float | None = None,
) -> Markup:
    """Horizontal bars, one group per label and one bar per series."""
    uid = next(_ids)
    top = max([v for s in series for v in s.values if v is not None] or [0.0])
    scale = maximum if maximum is not None else (top or 1.0)
    per_group = len(series) * BAR_HEIGHT + GAP
    head = 24
    legend = head + (22 if len(series) > 1 else 0)
    height = legend + len(labels) * per_group + GAP
    width = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH
    parts: list[str] = [f'<text x="0" y="16" font-size="14" font-weight="700">{escape(title)}</text>']
    described: list[str] = []
    if len(series) > 1:
        x = LABEL_WIDTH
        for i, s in enumerate(series):
            parts.append(f'<rect x="{x}" y="{head + 4}" width="12" height="12" fill="{COLORS[i % len(COLORS)]}"/>')
            parts.append(f'<text x="{x + 16}" y="{head + 14}" font-size="12">{escape(s.name)}</text>')
            x += 24 + 8 * len(s.name)
    for g, label in enumerate(labels):
        y0 = legend + GAP // 2 + g * per_group
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y0 + len(series) * BAR_HEIGHT / 2 + 4}" font-size="12" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        values_text = []
        for i, s in enumerate(series):
            value = s.values[g]
            shown = _fmt(value, formatter, missing)
            values_text.append(f"{s.name} {shown}" if len(series) > 1 else shown)
            y = y0 + i * BAR_HEIGHT
            w = 0.0 if value is None else max(0.0, min(1.0, value / scale)) * PLOT_WIDTH
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{y + 1}" width="{w:.1f}" height="{BAR_HEIGHT - 2}" '
                f'fill="{COLORS[i % len(COLORS)]}"/>'
            )
            parts.append(
                f'<text x="{LABEL_WIDTH + w + 4:.1f}" y="{y + BAR_HEIGHT - 3}" font-size="12">{escape(shown)}</text>'
            )
        described.append(f"{label}: {', '.join(values_text)}")
    desc = "; ".join(described) or missing
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" class="chart" '
        f'aria-labelledby="chart{uid}t chart{uid}d">'
        f'<title id="chart{uid}t">{escape(title)}</title><desc id="chart{uid}d">{escape(desc)}</desc>'
        f'<g fill="#1b1f24" font-family="system-ui, sans-serif">{"".join(parts)}</g></svg>'
    )
    return Markup(svg)  # noqa: S704  (every text piece above is escaped)
