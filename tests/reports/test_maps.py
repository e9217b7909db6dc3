"""The map drawn from outlines alone: projection, simplification, accessible SVG, the plotly figure."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

from reports.colors import score_color
from reports.maps import Marker, Outline, Projection, Shape, choropleth_figure, legend_html, map_svg, simplify


def square(lon: float, lat: float, size: float = 0.01, clockwise: bool = False) -> list:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return [[ring[::-1] if clockwise else ring]]


SHAPES = [
    Shape("A1", "甲社区", square(120.0, 30.0), 72.5, 40, 68.0, 77.0, "/office/community/A1"),
    Shape("A2", "乙社区", square(120.01, 30.0), 88.0, 12, 80.1, 95.9, "/office/community/A2"),
    Shape("B1", "丙社区", square(120.0, 30.01, clockwise=True), None, 0, None, None, "/office/community/B1"),
]


def test_each_area_is_a_link_named_by_its_title_and_filled_on_the_heatmaps_scale():
    svg = map_svg(SHAPES, title="示范市")
    links = re.findall(r'<a href="([^"]+)" class="area" aria-label="([^"]+)" data-code="(\w+)"><title>([^<]+)</title>'
                       r'<path d="[^"]+" fill="(#[0-9a-f]{6})"', svg)
    assert [(href, code, fill) for href, _, code, _, fill in links] == [
        ("/office/community/A1", "A1", score_color(72.5)), ("/office/community/A2", "A2", score_color(88.0)),
        ("/office/community/B1", "B1", "#e0e0e0")]
    assert [title for _, _, _, title, _ in links] == ["甲社区：72.5分（n=40，95%区间 68.0–77.0）",
                                                       "乙社区：88.0分（n=12，95%区间 80.1–95.9）", "丙社区：无数据"]
    assert all(label == title for _, label, _, title, _ in links)
    assert '<title id="map-title">示范市</title>' in svg and "<script" not in svg


def test_the_drawing_fills_its_width_and_keeps_north_up_and_proportions():
    project = Projection((120.0, 30.0, 120.02, 30.02))
    corners = project(np.array([[120.0, 30.02], [120.02, 30.0]]))
    assert corners[0].tolist() == pytest.approx([12.0, 12.0])  # north-west at the top left
    width, height = corners[1] - corners[0]
    assert width == pytest.approx(776.0)
    assert height / width == pytest.approx(1 / np.cos(np.radians(30.01)), rel=1e-6)  # equirectangular


def test_names_escape_and_markers_show_their_last_inspection_by_colour_and_shape():
    shapes = [Shape("X", "<b>&社区", square(120.0, 30.0), 80.0, 3, None, None, "/c?a=1&b=2")]
    markers = [Marker("P1", "菜市场", 120.005, 30.005, None, "农贸市场", "/office/site/P1"),
               Marker("P2", "公厕", 120.002, 30.002, "fail", "公共厕所", "/office/site/P2"),
               Marker("P3", "游园", 120.008, 30.008, "pass", "公园广场", None)]
    svg = map_svg(shapes, markers, [Outline("一街道", square(120.0, 30.0))], title="t")
    assert "&lt;b&gt;&amp;社区" in svg and 'href="/c?a=1&amp;b=2"' in svg and "<b>" not in svg
    assert '<title>菜市场（农贸市场）：未检查</title><circle' in svg and 'fill="#8c959f"' in svg
    assert '<title>公厕（公共厕所）：不合格</title><path' in svg  # a diamond
    assert '<g class="site"><title>游园（公园广场）：合格</title><circle' in svg  # no page: not a link
    assert '<g class="outlines" aria-hidden="true"' in svg
    legend = legend_html(with_sites=True)
    assert all(text in legend for text in ("≤60", "80", "≥95", "无数据", "合格", "不合格", "未检查"))


def test_simplification_is_bounded_by_the_drawing_not_by_the_files_detail():
    angles = np.linspace(0, 2 * np.pi, 50_001)
    ring = np.column_stack([400 + 300 * np.cos(angles), 400 + 300 * np.sin(angles)])
    ring[-1] = ring[0]
    started = time.perf_counter()
    kept = simplify(ring, 0.6)
    assert time.perf_counter() - started < 2
    assert 20 < len(kept) < 2_000 and kept[0].tolist() == kept[-1].tolist()
    # every original point stays within the tolerance (plus the grid's half step) of the kept outline
    radius = np.hypot(kept[:, 0] - 400, kept[:, 1] - 400)
    assert np.all(np.abs(radius - 300) < 1.0)


def test_the_choropleth_is_a_valid_plotly_figure_without_tiles_wound_as_plotly_draws():
    go = pytest.importorskip("plotly.graph_objects")
    markers = [Marker("P1", "菜市场", 120.005, 30.005, "fail", "农贸市场", "/office/site/P1")]
    figure = choropleth_figure(SHAPES, markers, title="示范市")
    go.Figure(figure)  # raises on anything plotly does not know
    scored, empty, sites = figure["data"]
    assert scored["locations"] == ["A1", "A2"] and scored["z"] == [72.5, 88.0]
    assert (scored["zmin"], scored["zmax"]) == (60.0, 95.0) and scored["colorscale"][1][1] == score_color(80)
    assert scored["customdata"][0] == ["甲社区", 40, "68.0–77.0", "/office/community/A1"]
    assert empty["locations"] == ["B1"] and sites["marker"]["symbol"] == ["diamond"]
    geo = figure["layout"]["geo"]
    assert geo["visible"] is False and geo["fitbounds"] == "locations" and "mapbox" not in figure["layout"]
    for feature in scored["geojson"]["features"]:  # outer rings counter-clockwise, whatever the file had
        ring = np.array(feature["geometry"]["coordinates"][0][0])
        assert (ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1]).sum() > 0


def test_nothing_to_draw_is_said():
    with pytest.raises(ValueError, match="nothing to draw"):
        map_svg([], title="空")
