"""PDF documents with WeasyPrint: the area report and QR code sheets, Chinese with an embedded font."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache

import segno
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

CJK_PACKAGE = "fonts-noto-cjk"


class ReportError(RuntimeError):
    """A document that cannot be made here; the message says what to install or fix."""


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["score"] = lambda v: "—" if v is None else f"{v:.1f}"
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.1f}%"
    env.filters["interval"] = interval_text
    return env


NO_INTERVAL = "数据不足"  # an interval the data cannot carry (too few answers, one PSU, answers all alike)
VARIANCE_NOTES = {
    "single_psu": "答卷都来自同一个抽样单元，抽样误差无法估计",
    "zero_variance": "所有答卷得分相同，抽样误差无法估计",
}


def interval_text(low: float | None, high: float | None, kind: str = "score", digits: int = 1) -> str:
    """Return "low–high" (scores, or percentages with ``kind="pct"``), or 数据不足 when either end is missing.

    >>> interval_text(71.234, 80.0), interval_text(None, 80.0), interval_text(0.5, 0.75, "pct")
    ('71.2–80.0', '数据不足', '50.0%–75.0%')
    """
    if low is None or high is None:
        return NO_INTERVAL
    if kind == "pct":
        return f"{100 * low:.{digits}f}%–{100 * high:.{digits}f}%"
    return f"{low:.{digits}f}–{high:.{digits}f}"


_font_found = False  # checked once per process (a subprocess per PDF would cost more than the page)


def ensure_cjk_font() -> None:
    """Raise ReportError unless fontconfig knows a Chinese font; a found font is not looked for again."""
    global _font_found
    if _font_found:
        return
    if shutil.which("fc-list") is None:
        raise ReportError(f"fontconfig is missing; install the Debian packages fontconfig and {CJK_PACKAGE}")
    found = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False).stdout
    if not found.strip():
        raise ReportError(
            f"no Chinese font found for PDF reports: install the Debian package {CJK_PACKAGE} "
            f"(sudo apt-get install {CJK_PACKAGE})"
        )
    _font_found = True


def render_pdf(template: str, **context) -> bytes:
    """Render an HTML template of this package to PDF bytes."""
    ensure_cjk_font()
    from weasyprint import HTML

    html = _environment().get_template(template).render(**context)
    return HTML(string=html).write_pdf()


@dataclass
class AreaReport:
    """Everything the area report shows, as plain numbers and strings."""

    city_name: str
    area_name: str
    area_level: str
    wave_name: str
    generated: str
    respondents: int
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    points: dict[str, float] | None
    prob_pass: float | None
    rates: list[dict] = field(default_factory=list)
    channels: dict[str, int] = field(default_factory=dict)
    ranking: list[dict] = field(default_factory=list)
    heatmap: Markup = Markup("")
    community_map: Markup = Markup("")  # SVG of the communities coloured by score, and its legend (reports/maps.py)
    at_risk: list[dict] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)
    method: dict = field(default_factory=dict)
    minors: dict | None = None
    period: str = ""
    change: dict | None = None  # the area's change since the compared wave: text, sentence, interval, basis, ...
    change_label: str = ""  # 比上轮, or 比<wave name>
    compare_wave: str = ""
    change_note: str = ""  # how significance is decided (Benjamini-Hochberg)
    data_as_of: str = ""  # "数据截至": when the run's data was read, local time
    variance_warning: str = ""  # why the area's variance is unusable (single_psu, zero_variance), else ""
    lonely: list[str] = field(default_factory=list)  # strata of the design with one PSU (the city's report)


def area_report_pdf(report: AreaReport) -> bytes:
    """Return the area report: cover, summary, ranking, heatmap, at-risk list, problems, method."""
    return render_pdf("area_report.html", r=report, variance_notes=VARIANCE_NOTES)


def qr_svg(url: str) -> Markup:
    """Return a vector QR code for ``url`` as inline SVG."""
    return Markup(segno.make(url, error="m").svg_inline(scale=4, border=2, omitsize=True))


def qr_sheet_pdf(title: str, entries: list[tuple[str, str, str]]) -> bytes:
    """Return A4 pages of QR codes: each entry is (name, detail, url), printed under its code."""
    cards = [{"name": n, "detail": d, "url": u, "svg": qr_svg(u)} for n, d, u in entries]
    return render_pdf("qr_sheet.html", title=title, cards=cards)
