"""Small charts as inline SVG: numbers in, SVG out; no JavaScript, so they print and cost nothing.

Each chart carries a ``<title>`` and a ``<desc>`` listing every value (its accessible name and
description); pages show the same numbers in a table beside it. Coordinates are in a 360-unit
wide ``viewBox`` sized for a phone; CSS scales the drawing to its box.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeGuard

from markupsafe import Markup, escape

from analysis.rules import PASS_LINE

FONT = "'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', system-ui, sans-serif"
WIDTH = 360
BAR_COLOR = "#b2182b"
LINE_COLOR = "#2166ac"
REFERENCE_COLOR = "#b2182b"
GRID_COLOR = "#d0d7de"
TEXT_COLOR = "#1f2328"
MUTED_COLOR = "#57606a"


def _num(value: float) -> str:
    """Return a coordinate with at most one decimal."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _text_width(text: str, size: float) -> float:
    """Return the approximate drawn width of ``text``: a CJK character is one em, others about half."""
    return sum(size if ord(ch) > 0x2E7F else 0.58 * size for ch in text)


def _fit(text: str, size: float, width: float) -> str:
    """Return ``text``, shortened with an ellipsis to fit ``width`` (the full text is in the title and desc)."""
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def _svg(chart_id: str, height: float, title: str, desc: str, body: list[str]) -> Markup:
    ids = f"{chart_id}-title {chart_id}-desc"
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'aria-labelledby="{escape(ids)}" viewBox="0 0 {WIDTH} {_num(height)}" width="{WIDTH}" height="{_num(height)}" '
        f'font-family="{FONT}" preserveAspectRatio="xMinYMin meet">'
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title><desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>'
        f'{"".join(body)}</svg>'
    )


def bar_chart_svg(labels: Sequence[str], values: Sequence[float | None], title: str, *, unit: str = "", digits: int = 2,
                  chart_id: str = "bar") -> Markup:
    """Return a horizontal bar chart, one bar per label in the given order, its value written after it.

    Each label sits above its bar, so long names need no margin and stay readable on a phone.

    >>> svg = bar_chart_svg(["甲社区", "乙社区"], [0.5, 0.25], "失分", unit="分", digits=2)
    >>> svg.index("甲社区") < svg.index("乙社区") and "0.50分" in svg and "<desc" in svg
    True
    """
    if len(labels) != len(values):
        raise ValueError("one value per label")
    row, bar, top = 40.0, 14.0, 30.0
    size = 13
    top_value = max((v for v in values if _finite(v) and v > 0), default=0.0)
    room = WIDTH - 4 - max((_text_width(f"{v:.{digits}f}{unit}", 12) for v in values if _finite(v)), default=0) - 8
    body = [f'<text x="0" y="18" font-size="14" font-weight="700" fill="{TEXT_COLOR}">{escape(title)}</text>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        body.append(f'<text x="0" y="{_num(y + size)}" font-size="{size}" fill="{TEXT_COLOR}">{escape(label)}</text>')
        if not _finite(value):
            body.append(f'<text x="0" y="{_num(y + size + 4 + bar)}" font-size="12" fill="{MUTED_COLOR}">无数据</text>')
            continue
        length = room * max(value, 0.0) / top_value if top_value else 0.0
        shown = f"{value:.{digits}f}{unit}"
        body.append(f'<rect x="0" y="{_num(y + size + 5)}" width="{_num(max(length, 1.0))}" height="{_num(bar)}" '
                    f'fill="{BAR_COLOR}"><title>{escape(label)}：{escape(shown)}</title></rect>')
        body.append(f'<text x="{_num(max(length, 1.0) + 4)}" y="{_num(y + size + 5 + bar - 2)}" font-size="12" '
                    f'fill="{TEXT_COLOR}">{escape(shown)}</text>')
    desc = "；".join(f"{label}：{v:.{digits}f}{unit}" if _finite(v) else f"{label}：无数据"
                    for label, v in zip(labels, values, strict=True))
    return _svg(chart_id, top + len(labels) * row + 4, title, desc or "无数据", body)


def _ticks(low: float, high: float) -> list[float]:
    step = 5.0 if high - low <= 40 else 10.0
    first = math.ceil(low / step) * step
    return [first + k * step for k in range(int((high - first) // step) + 1)]


def line_chart_svg(x: Sequence[str], y: Sequence[float], low: Sequence[float], high: Sequence[float], title: str, *,
                   reference: float | None = PASS_LINE, reference_label: str = "80分线", unit: str = "分",
                   digits: int = 1, chart_id: str = "line") -> Markup:
    """Return a line chart of ``y`` over ``x`` with a shaded band from ``low`` to ``high`` and a reference line.

    The y axis runs to 100 and down to below the lowest interval (at most 70); every point's value
    is written above it; x labels alternate between two lines when they would overlap, and are
    shortened with an ellipsis only if they still do not fit.

    >>> svg = line_chart_svg(["一轮", "二轮"], [78.0, 82.5], [75.0, 80.0], [81.0, 85.0], "变化")
    >>> "78.0" in svg and "82.5" in svg and "80分线" in svg and "<polygon" in svg
    True
    """
    n = len(x)
    if not (len(y) == len(low) == len(high) == n):
        raise ValueError("one estimate and interval per x value")
    lows = [lo if _finite(lo) else est for lo, est in zip(low, y, strict=True)]
    highs = [hi if _finite(hi) else est for hi, est in zip(high, y, strict=True)]
    floor = min([*lows, *y, 70.0] if reference is None else [*lows, *y, 70.0, reference])
    y_min, y_max = math.floor(floor / 5) * 5 - 2, max(100.0, *highs, *y) if n else 100.0
    label_size = 11
    left, right, top = 30.0, 12.0, 30.0
    plot_width = WIDTH - left - right
    slot = plot_width / max(n, 1)
    staggered = any(_text_width(name, label_size) > slot - 4 for name in x)
    bottom = 20.0 + (14.0 if staggered else 0.0)
    plot_height = 170.0
    height = top + plot_height + bottom

    def px(i: int) -> float:
        return left + slot * (i + 0.5)

    def py(value: float) -> float:
        return top + plot_height * (y_max - value) / (y_max - y_min)

    body = [f'<text x="0" y="18" font-size="14" font-weight="700" fill="{TEXT_COLOR}">{escape(title)}</text>']
    for tick in _ticks(y_min, y_max):
        body.append(f'<line x1="{_num(left)}" x2="{_num(WIDTH - right)}" y1="{_num(py(tick))}" y2="{_num(py(tick))}" '
                    f'stroke="{GRID_COLOR}" stroke-width="0.5"/>')
        body.append(f'<text x="{_num(left - 4)}" y="{_num(py(tick) + 4)}" font-size="10" text-anchor="end" '
                    f'fill="{MUTED_COLOR}">{tick:.0f}</text>')
    if n:
        band = [(px(i), py(v)) for i, v in enumerate(highs)] + [(px(i), py(v)) for i, v in reversed(list(enumerate(lows)))]
        if n == 1:
            band = [(px(0) - 6, py(highs[0])), (px(0) + 6, py(highs[0])), (px(0) + 6, py(lows[0])), (px(0) - 6, py(lows[0]))]
        points = " ".join(f"{_num(a)},{_num(b)}" for a, b in band)
        body.append(f'<polygon points="{points}" fill="{LINE_COLOR}" fill-opacity="0.15" stroke="none"/>')
    if reference is not None:
        body.append(f'<line x1="{_num(left)}" x2="{_num(WIDTH - right)}" y1="{_num(py(reference))}" '
                    f'y2="{_num(py(reference))}" stroke="{REFERENCE_COLOR}" stroke-dasharray="5 3" stroke-width="1"/>')
        body.append(f'<text x="{_num(WIDTH - right)}" y="{_num(py(reference) + 12)}" font-size="10" text-anchor="end" '
                    f'fill="{REFERENCE_COLOR}">{escape(reference_label)}</text>')
    if n:
        line = " ".join(f"{_num(px(i))},{_num(py(v))}" for i, v in enumerate(y))
        body.append(f'<polyline points="{line}" fill="none" stroke="{LINE_COLOR}" stroke-width="2"/>')
    for i, (name, value) in enumerate(zip(x, y, strict=True)):
        interval = f"，95%区间 {lows[i]:.{digits}f}–{highs[i]:.{digits}f}"
        body.append(f'<circle cx="{_num(px(i))}" cy="{_num(py(value))}" r="3.5" fill="{LINE_COLOR}">'
                    f'<title>{escape(name)}：{value:.{digits}f}{escape(unit)}{interval}</title></circle>')
        body.append(f'<text x="{_num(px(i))}" y="{_num(py(value) - 7)}" font-size="11" font-weight="700" '
                    f'text-anchor="middle" fill="{LINE_COLOR}">{value:.{digits}f}</text>')
        base = top + plot_height + 14 + (14 if staggered and i % 2 else 0)
        shown = _fit(name, label_size, 2 * slot - 6 if staggered else slot - 4)
        half = _text_width(shown, label_size) / 2
        anchor, at = "middle", px(i)
        if at - half < 0:
            anchor, at = "start", 0.0
        elif at + half > WIDTH:
            anchor, at = "end", float(WIDTH)
        body.append(f'<text x="{_num(at)}" y="{_num(base)}" font-size="{label_size}" text-anchor="{anchor}" '
                    f'fill="{TEXT_COLOR}">{escape(shown)}</text>')
    desc = "；".join(f"{name}：{v:.{digits}f}{unit}（95%区间 {lo:.{digits}f}–{hi:.{digits}f}）"
                    for name, v, lo, hi in zip(x, y, lows, highs, strict=True))
    if reference is not None:
        desc += f"。{reference_label}：{reference:g}{unit}" if desc else f"{reference_label}：{reference:g}{unit}"
    return _svg(chart_id, height, title, desc or "无数据", body)
