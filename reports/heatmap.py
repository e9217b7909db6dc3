"""The satisfaction heatmap as an HTML table: works without JavaScript and inside PDFs."""
from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup, escape

from reports.colors import score_color, text_color

SMALL_N = 5


@dataclass(frozen=True)
class Cell:
    estimate: float | None
    n: int = 0
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True)
class Row:
    label: str
    cells: list[Cell]
    link: str | None = None
    note: str = ""


def heatmap_html(columns: list[str], rows: list[Row], caption: str = "", *, tappable: bool = False) -> Markup:
    """Return a table: one row per area, one column per topic, cells coloured around 80.

    Each cell's title (the hover text) gives n and the 95% interval; cells with fewer than
    ``SMALL_N`` answers are marked as thin. With ``tappable`` (web pages) each score is also a
    ``<details>``: tapping or pressing Enter on it shows n and the interval, with no JavaScript.

    >>> html = heatmap_html(["环境"], [Row("甲社区", [Cell(72.5, 40, 68.0, 77.0)], "/a")])
    >>> "72.5" in html and "n=40" in html and 'href="/a"' in html
    True
    >>> tapped = heatmap_html(["环境"], [Row("甲社区", [Cell(72.5, 40, 68.0, 77.0)])], tappable=True)
    >>> '<summary>72.5</summary><span class="detail">n=40<br>68.0–77.0</span>' in tapped
    True
    """
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in columns)
    body = []
    for row in rows:
        label = f'<a href="{escape(row.link)}">{escape(row.label)}</a>' if row.link else escape(row.label)
        note = f'<span class="note">{escape(row.note)}</span>' if row.note else ""
        cells = []
        for cell in row.cells:
            if cell.estimate is None:
                cells.append('<td class="empty" title="无数据">—</td>')
                continue
            interval = (
                f"，95%区间 {cell.ci_low:.1f}–{cell.ci_high:.1f}" if cell.ci_low is not None and cell.ci_high is not None else ""
            )
            thin = " thin" if cell.n < SMALL_N else ""
            shown = f"{cell.estimate:.1f}"
            if tappable:
                bounds = f"<br>{cell.ci_low:.1f}–{cell.ci_high:.1f}" if interval else ""
                shown = f'<details><summary>{shown}</summary><span class="detail">n={cell.n}{bounds}</span></details>'
            cells.append(
                f'<td class="score{thin}" style="background:{score_color(cell.estimate)};color:{text_color(cell.estimate)}"'
                f' title="{escape(row.label)}：{cell.estimate:.1f}分，n={cell.n}{interval}">{shown}</td>'
            )
        body.append(f'<tr><th scope="row">{label}{note}</th>{"".join(cells)}</tr>')
    caption_html = f"<caption>{escape(caption)}</caption>" if caption else ""
    return Markup(
        f'<table class="heatmap">{caption_html}<thead><tr><th scope="col">区域</th>{head}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table>'
    )
