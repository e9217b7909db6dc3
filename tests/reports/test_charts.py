"""The inline SVG charts: well-formed SVG, values drawn in order, labels escaped, accessible text."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reports.charts import bar_chart_svg, line_chart_svg
from tests.conftest import examples

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    return root


def accessible_text(root: ET.Element) -> tuple[str, str]:
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return title.text, desc.text


def test_bar_chart_draws_one_bar_per_label_in_order_with_lengths_proportional_to_values():
    labels = ["安居社区", "福泰社区", "幸福社区"]
    root = parse(bar_chart_svg(labels, [0.254, 0.127, 0.0], "失分最多的社区", unit="分", digits=3, chart_id="cost"))
    assert root.get("id") == "cost"
    bars = root.findall(f"{SVG}rect")
    assert [b.find(f"{SVG}title").text for b in bars] == ["安居社区：0.254分", "福泰社区：0.127分", "幸福社区：0.000分"]
    ys = [float(b.get("y")) for b in bars]
    assert ys == sorted(ys)  # top to bottom in the given order
    widths = [float(b.get("width")) for b in bars]
    assert widths[0] == pytest.approx(2 * widths[1], rel=0.01) and widths[2] <= 1.0
    assert all(w <= 360 for w in widths)
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert texts[0] == "失分最多的社区"
    assert texts[1:] == ["安居社区", "0.254分", "福泰社区", "0.127分", "幸福社区", "0.000分"]
    title, desc = accessible_text(root)
    assert title == "失分最多的社区"
    assert desc == "安居社区：0.254分；福泰社区：0.127分；幸福社区：0.000分"


def test_bar_chart_escapes_labels_and_title():
    svg = bar_chart_svg(['<script>alert("x")</script>', "A&B社区"], [1.0, 2.0], "<b>标题</b>")
    assert "<script>" not in svg and "<b>" not in svg
    root = parse(svg)
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert texts[:4] == ["<b>标题</b>", '<script>alert("x")</script>', "1.00", "A&B社区"]
    assert root.find(f"{SVG}title").text == "<b>标题</b>"


def test_bar_chart_with_no_rows_or_missing_values():
    assert accessible_text(parse(bar_chart_svg([], [], "空")))[1] == "无数据"
    root = parse(bar_chart_svg(["甲", "乙"], [float("nan"), 1.0], "缺"))
    assert len(root.findall(f"{SVG}rect")) == 1
    assert "甲：无数据" in root.find(f"{SVG}desc").text
    with pytest.raises(ValueError):
        bar_chart_svg(["甲"], [1.0, 2.0], "多")


def test_line_chart_plots_points_left_to_right_higher_values_higher_with_band_and_pass_line():
    waves = ["2025年第四季度", "2026年第一季度", "2026年第二季度"]
    root = parse(line_chart_svg(waves, [76.0, 81.5, 79.0], [72.0, 78.0, 75.5], [80.0, 85.0, 82.5], "满意度变化",
                                chart_id="trend"))
    points = root.findall(f"{SVG}circle")
    xs, ys = [float(c.get("cx")) for c in points], [float(c.get("cy")) for c in points]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert ys[1] < ys[2] < ys[0]  # SVG y grows downwards: 81.5 is drawn highest, 76.0 lowest
    assert [c.find(f"{SVG}title").text for c in points] == [
        "2025年第四季度：76.0分，95%区间 72.0–80.0", "2026年第一季度：81.5分，95%区间 78.0–85.0",
        "2026年第二季度：79.0分，95%区间 75.5–82.5"]
    band = [tuple(map(float, p.split(","))) for p in root.find(f"{SVG}polygon").get("points").split()]
    assert len(band) == 6
    uppers, lowers = band[:3], band[3:][::-1]
    assert all(u[1] < y < lo[1] for u, y, lo in zip(uppers, ys, lowers, strict=True))  # each point inside its band
    dashed = [line for line in root.findall(f"{SVG}line") if line.get("stroke-dasharray")]
    assert len(dashed) == 1 and ys[0] > float(dashed[0].get("y1")) > ys[1]  # the 80-point line between 76 and 81.5
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert "80分线" in texts and ["76.0", "81.5", "79.0"] == [t for t in texts if re.fullmatch(r"\d+\.\d", t)]
    assert all(any(w in t for t in texts) for w in ("2025年第四", "2026年第一", "2026年第二"))
    title, desc = accessible_text(root)
    assert title == "满意度变化"
    assert desc.startswith("2025年第四季度：76.0分（95%区间 72.0–80.0）；2026年第一季度：81.5分") and "80分线：80分" in desc


def test_line_chart_escapes_wave_names_and_uses_the_estimate_without_an_interval():
    root = parse(line_chart_svg(["<i>一</i>", "二&三"], [70.0, 90.0], [float("nan"), 85.0], [None, 95.0], "趋势"))
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert "<i>一</i>" in texts and "二&三" in texts
    assert "<i>一</i>：70.0分（95%区间 70.0–70.0）" in root.find(f"{SVG}desc").text


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.tuples(st.text(min_size=0, max_size=30), st.floats(0, 20, allow_nan=False)), max_size=15))
def test_bar_chart_is_well_formed_for_any_labels(rows):
    labels = [label for label, _ in rows]
    cleaned = [re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]", "", label) for label in labels]
    root = parse(bar_chart_svg(cleaned, [v for _, v in rows], "标题"))
    assert len(root.findall(f"{SVG}rect")) == len(rows)


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.tuples(st.floats(40, 100), st.floats(0, 15), st.floats(0, 15)), min_size=1, max_size=12))
def test_line_chart_keeps_every_point_inside_the_drawing(points):
    estimate = [e for e, _, _ in points]
    low = [max(0.0, e - a) for e, a, _ in points]
    high = [min(100.0, e + b) for e, _, b in points]
    root = parse(line_chart_svg([f"第{i}轮" for i in range(len(points))], estimate, low, high, "趋势"))
    _, _, width, height = map(float, root.get("viewBox").split())
    for circle in root.findall(f"{SVG}circle"):
        assert 0 <= float(circle.get("cx")) <= width and 0 <= float(circle.get("cy")) <= height
