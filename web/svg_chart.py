"""Small server-side charts as inline SVG: grouped bars and lines, nothing else.

Rendered on the server so the report page needs no script and works under a CSP of ``default-src 'none'``; only
presentation attributes are used (no ``style``). Every text is escaped here; the result is safe to embed as markup.
Each bar and point carries ``data-series``/``data-label``/``data-value`` and a ``<title>`` so a test (or a screen
reader) can find the number it stands for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 580, 250
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 44, 30
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7")  # Okabe-Ito: distinguishable with colour blindness


@dataclass(frozen=True)
class Point:
    """One value as drawn: ``height`` in chart units, ``text`` as shown, ``muted`` for a masked small count."""

    height: float | None
    text: str
    muted: bool = False


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[Point]


def nice_max(value: float) -> float:
    """The smallest 1/2/5 x 10^k at or above ``value`` so the grid lines land on round numbers."""
    if value <= 0:
        return 1.0
    k = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * k >= value:
            return float(step * k)
    return float(10 * k)  # pragma: no cover - the loop always returns


def grid_steps(top: float) -> int:
    """Grid lines on round values: 1 and 5 x 10^k in five steps, 2 x 10^k in four."""
    return 4 if round(top / 10.0 ** math.floor(math.log10(top))) == 2 else 5


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _frame(title: str, labels: Sequence[str], series: Sequence[Series], top: float, unit: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="{WIDTH}" height="{HEIGHT}" aria-label="{escape(title)}">',
           f"<title>{escape(title)}</title>",
           f'<text x="{LEFT}" y="14" font-size="13" font-weight="bold" fill="#222">{escape(title)}</text>']
    for i, s in enumerate(series):  # legend
        lx = LEFT + 120 * i
        out.append(f'<rect x="{lx}" y="21" width="10" height="10" fill="{COLOURS[i % len(COLOURS)]}"/>'
                   f'<text x="{lx + 14}" y="30" font-size="11" fill="#222">{escape(s.name)}</text>')
    steps = grid_steps(top)
    for g in range(steps + 1):  # horizontal grid with values
        value = top * g / steps
        y = TOP + plot_h - plot_h * g / steps
        out.append(f'<line x1="{LEFT}" y1="{_num(y)}" x2="{WIDTH - RIGHT}" y2="{_num(y)}" stroke="#ddd"/>'
                   f'<text x="{LEFT - 4}" y="{_num(y + 4)}" font-size="10" text-anchor="end" fill="#555">'
                   f"{escape(_num(value) + unit)}</text>")
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    every = max(1, math.ceil(len(labels) / 14))  # at most ~14 axis labels, whatever the number of buckets
    for i, label in enumerate(labels):
        if i % every == 0:
            x = LEFT + slot * (i + 0.5)
            out.append(f'<text x="{_num(x)}" y="{HEIGHT - BOTTOM + 16}" font-size="10" text-anchor="middle" '
                       f'fill="#555">{escape(label)}</text>')
    return out


def _top(series: Sequence[Series]) -> float:
    return nice_max(max((p.height or 0.0 for s in series for p in s.points), default=0.0))


def _check(labels: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.points) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.points)} points for {len(labels)} labels")


def bar_chart(title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "") -> Markup:
    """Grouped bars: one group per label, one bar per series. A muted bar is drawn lighter."""
    _check(labels, series)
    top = _top(series)
    out = _frame(title, labels, series, top, unit)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    bar_w = slot * 0.8 / max(1, len(series))
    for i, label in enumerate(labels):
        for j, s in enumerate(series):
            p = s.points[i]
            h = plot_h * (p.height or 0.0) / top
            x = LEFT + slot * i + slot * 0.1 + bar_w * j
            y = TOP + plot_h - h
            opacity = ' fill-opacity="0.45"' if p.muted else ""
            out.append(f'<rect class="bar" x="{_num(x)}" y="{_num(y)}" width="{_num(bar_w)}" height="{_num(h)}" '
                       f'fill="{COLOURS[j % len(COLOURS)]}"{opacity} data-series="{escape(s.name)}" '
                       f'data-label="{escape(label)}" data-value="{escape(p.text)}">'
                       f"<title>{escape(f'{s.name}, {label}: {p.text}')}</title></rect>")
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text above went through escape()


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], unit: str = "") -> Markup:
    """Lines through the points that have a value; a point without one (``height`` None) breaks the line."""
    _check(labels, series)
    top = _top(series)
    out = _frame(title, labels, series, top, unit)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    for j, s in enumerate(series):
        colour = COLOURS[j % len(COLOURS)]
        segment: list[str] = []
        dots: list[str] = []
        segments: list[list[str]] = [segment]
        for i, label in enumerate(labels):
            p = s.points[i]
            if p.height is None:
                segment = []
                segments.append(segment)
                continue
            x, y = LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * p.height / top
            segment.append(f"{_num(x)},{_num(y)}")
            dots.append(f'<circle class="point" cx="{_num(x)}" cy="{_num(y)}" r="3.5" fill="{colour}" '
                        f'data-series="{escape(s.name)}" data-label="{escape(label)}" data-value="{escape(p.text)}">'
                        f"<title>{escape(f'{s.name}, {label}: {p.text}')}</title></circle>")
        for seg in segments:
            if len(seg) > 1:
                out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.extend(dots)
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text above went through escape()
