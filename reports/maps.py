"""Maps drawn from area outlines alone (no tiles): server-side SVG and a plotly choropleth of the same shapes.

Outlines come as GeoJSON MultiPolygon coordinates in WGS84 longitude/latitude. They are projected
with a plain equirectangular projection (x = longitude x cos(mid latitude), y = latitude), scaled to
the extent of what is drawn, then simplified to what the drawing can show (Douglas-Peucker at a
fraction of a pixel after snapping to a grid of that size, so the work is bounded by the drawing,
not by the detail of the file). Areas are coloured by satisfaction on the heatmap's scale centred on
80 (:func:`reports.colors.score_color`); each area is a link whose ``<title>`` gives its name and
value; sites are markers coloured by their last inspection.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape

from reports.colors import CENTER, HIGH, LOW, plotly_scale, score_color

FONT = "'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', system-ui, sans-serif"
WIDTH = 800
MAX_HEIGHT = 1000
PAD = 12
TOLERANCE = 0.6  # viewBox units (an 800-unit map is about 360 px wide on a phone)
NO_DATA = "#e0e0e0"
# A site's last inspection: passed, failed, or none yet; each its colour and shape (not colour alone).
SITE_STATES = {"pass": ("#1a7f37", "合格"), "fail": ("#cf222e", "不合格"), None: ("#8c959f", "未检查")}


@dataclass(frozen=True)
class Shape:
    """An area to draw: its outline and its value (a satisfaction score, or None for no data)."""

    code: str
    name: str
    coordinates: list
    value: float | None = None
    n: int = 0
    ci_low: float | None = None
    ci_high: float | None = None
    link: str | None = None

    def describe(self) -> str:
        """Return the text of its title: name, value, n and the interval.

        >>> Shape("A1", "甲社区", [], 78.26, 40, 74.0, 82.5).describe()
        '甲社区：78.3分（n=40，95%区间 74.0–82.5）'
        """
        if self.value is None or not math.isfinite(self.value):
            return f"{self.name}：无数据"
        interval = f"，95%区间 {self.ci_low:.1f}–{self.ci_high:.1f}" if self.ci_low is not None and self.ci_high is not None else ""
        return f"{self.name}：{self.value:.1f}分（n={self.n}{interval}）"


@dataclass(frozen=True)
class Marker:
    """A site: where it is, what it is, its last inspection (``"pass"``, ``"fail"`` or None) and its page."""

    code: str
    name: str
    lon: float
    lat: float
    state: str | None = None
    kind: str = ""
    link: str | None = None

    def describe(self) -> str:
        kind = f"（{self.kind}）" if self.kind else ""
        return f"{self.name}{kind}：{SITE_STATES[self.state][1]}"


@dataclass(frozen=True)
class Outline:
    """A higher area (a street, a district) drawn as a line over the communities."""

    name: str
    coordinates: list
    weight: float = 1.5


class Projection:
    """Equirectangular projection of a lon/lat extent onto a ``WIDTH``-wide drawing (north up)."""

    def __init__(self, extent: tuple[float, float, float, float], width: float = WIDTH, max_height: float = MAX_HEIGHT,
                 pad: float = PAD) -> None:
        min_lon, min_lat, max_lon, max_lat = extent
        self.min_lon, self.max_lat = min_lon, max_lat
        self.k = math.cos(math.radians((min_lat + max_lat) / 2))
        dx = max((max_lon - min_lon) * self.k, 1e-9)
        dy = max(max_lat - min_lat, 1e-9)
        self.scale = min((width - 2 * pad) / dx, (max_height - 2 * pad) / dy)
        self.pad = pad
        self.x_offset = (width - dx * self.scale) / 2
        self.width = width
        self.height = dy * self.scale + 2 * pad

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Return [[x, y], ...] for [[lon, lat], ...].

        >>> p = Projection((120.0, 30.0, 120.1, 30.1))
        >>> p(np.array([[120.0, 30.1], [120.1, 30.0]])).round(1).tolist()
        [[12.0, 12.0], [788.0, 908.5]]
        """
        x = (points[:, 0] - self.min_lon) * self.k * self.scale + self.x_offset
        y = (self.max_lat - points[:, 1]) * self.scale + self.pad
        return np.column_stack([x, y])


def extent_of(coordinates: Sequence[list]) -> tuple[float, float, float, float] | None:
    """Return (min lon, min lat, max lon, max lat) over MultiPolygon coordinates, or None for none."""
    rings = [np.asarray(ring, dtype=float)[:, :2] for multi in coordinates for polygon in multi for ring in polygon]
    if not rings:
        return None
    points = np.concatenate(rings)
    return float(points[:, 0].min()), float(points[:, 1].min()), float(points[:, 0].max()), float(points[:, 1].max())


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Return a ring's points snapped to a ``tolerance`` grid, repeats dropped, then Douglas-Peucker'd.

    The first and last points are kept (a closed ring stays closed).

    >>> ring = np.array([[0, 0], [5, 0.01], [10, 0], [10, 10], [0, 10], [0, 0]], dtype=float)
    >>> simplify(ring, 0.5).tolist()
    [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]]
    """
    if tolerance <= 0 or len(points) <= 3:
        return points
    snapped = np.round(points / tolerance) * tolerance
    moved = np.any(np.diff(snapped, axis=0) != 0, axis=1)
    snapped = snapped[np.concatenate([[True], moved])]
    n = len(snapped)
    if n <= 3:
        return snapped
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        first, last = stack.pop()
        if last - first < 2:
            continue
        a, b = snapped[first], snapped[last]
        inner = snapped[first + 1:last]
        segment = b - a
        length = math.hypot(segment[0], segment[1])
        if length == 0:
            distances = np.hypot(inner[:, 0] - a[0], inner[:, 1] - a[1])
        else:
            distances = np.abs(segment[0] * (inner[:, 1] - a[1]) - segment[1] * (inner[:, 0] - a[0])) / length
        index = int(np.argmax(distances))
        if distances[index] > tolerance:
            middle = first + 1 + index
            keep[middle] = True
            stack.append((first, middle))
            stack.append((middle, last))
    return snapped[keep]


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _rings(coordinates: list, project: Projection, tolerance: float) -> list[np.ndarray]:
    """Return the projected, simplified rings of a MultiPolygon (rings too small to see left out)."""
    out = []
    for polygon in coordinates:
        for ring in polygon:
            points = simplify(project(np.asarray(ring, dtype=float)[:, :2]), tolerance)
            if len(points) >= 4 or (len(points) == 3 and not np.array_equal(points[0], points[-1])):
                out.append(points)
    return out


def _path(rings: list[np.ndarray]) -> str:
    return "".join("M" + "L".join(f"{_num(x)},{_num(y)}" for x, y in ring[:-1]) + "Z" for ring in rings)


def _area_and_centre(ring: np.ndarray) -> tuple[float, float, float]:
    """Return a ring's area and centroid (shoelace); its box's centre when the area is zero."""
    x, y = ring[:, 0], ring[:, 1]
    cross = x[:-1] * y[1:] - x[1:] * y[:-1]
    area = cross.sum() / 2
    if abs(area) < 1e-9:
        return 0.0, float((x.min() + x.max()) / 2), float((y.min() + y.max()) / 2)
    cx = ((x[:-1] + x[1:]) * cross).sum() / (6 * area)
    cy = ((y[:-1] + y[1:]) * cross).sum() / (6 * area)
    return abs(float(area)), float(cx), float(cy)


def _label_width(text: str, size: float) -> float:
    return sum(size if ord(ch) > 0x2E7F else 0.58 * size for ch in text)


def map_svg(shapes: Sequence[Shape], markers: Sequence[Marker] = (), outlines: Sequence[Outline] = (), *,
            title: str, svg_id: str = "map", labels: bool = True, marker_size: float = 9.0) -> Markup:
    """Return the map as inline SVG: each area a link (or a plain shape) with its name and value in ``<title>``.

    The drawing is scaled to the extent of ``shapes`` (and markers); ``outlines`` are drawn as lines
    on top (street or district borders); :func:`legend_html` goes beside it. Works with no
    JavaScript, on a phone and in a PDF.

    >>> square = [[[[120, 30], [120.01, 30], [120.01, 30.01], [120, 30.01], [120, 30]]]]
    >>> svg = map_svg([Shape("A1", "甲社区", square, 72.5, 40, 68.0, 77.0, "/a")], title="示范")
    >>> 'href="/a"' in svg and "<title>甲社区：72.5分（n=40，95%区间 68.0–77.0）</title>" in svg
    True
    """
    extents = [e for s in shapes if (e := extent_of([s.coordinates]))]
    extents += [(m.lon, m.lat, m.lon, m.lat) for m in markers]
    if not extents:
        raise ValueError("nothing to draw: no outline and no site")
    extent = (min(e[0] for e in extents), min(e[1] for e in extents), max(e[2] for e in extents), max(e[3] for e in extents))
    project = Projection(extent)
    body: list[str] = ['<g class="areas" stroke="#ffffff" stroke-width="0.8" stroke-linejoin="round">']
    placed: list[tuple[str, float, float, float]] = []
    for shape in shapes:
        rings = _rings(shape.coordinates, project, TOLERANCE)
        if not rings:
            continue
        fill = NO_DATA if shape.value is None else score_color(shape.value)
        text = shape.describe()
        path = f'<path d="{_path(rings)}" fill="{fill}" fill-rule="evenodd"/>'
        if shape.link:
            body.append(f'<a href="{escape(shape.link)}" class="area" aria-label="{escape(text)}" data-code="{escape(shape.code)}">'
                        f'<title>{escape(text)}</title>{path}</a>')
        else:
            body.append(f'<g class="area" data-code="{escape(shape.code)}"><title>{escape(text)}</title>{path}</g>')
        area, cx, cy = max((_area_and_centre(r) for r in rings), key=lambda found: found[0])
        placed.append((shape.name, area, cx, cy))
    body.append("</g>")
    if outlines:
        body.append('<g class="outlines" aria-hidden="true" fill="none" stroke="#3d444d" stroke-linejoin="round">')
        for outline in outlines:
            rings = _rings(outline.coordinates, project, TOLERANCE)
            if rings:
                body.append(f'<path d="{_path(rings)}" stroke-width="{_num(outline.weight)}"/>')
        body.append("</g>")
    if labels:
        body.append(f'<g class="labels" aria-hidden="true" font-family="{FONT}" text-anchor="middle" fill="#1f2328">')
        for name, area, cx, cy in placed:
            size = min(24.0, max(11.0, math.sqrt(area) / 5))
            if _label_width(name, size) < math.sqrt(area) * 1.1:
                at = f'x="{_num(cx)}" y="{_num(cy + size / 3)}" font-size="{_num(size)}"'
                # a white halo under the name (paint-order is not drawn by every renderer, WeasyPrint's included)
                body.append(f'<text {at} fill="#ffffff" stroke="#ffffff" stroke-width="3" opacity="0.8">{escape(name)}</text>'
                            f'<text {at}>{escape(name)}</text>')
        body.append("</g>")
    if markers:
        body.append('<g class="sites">')
        xy = project(np.array([[m.lon, m.lat] for m in markers], dtype=float))
        for marker, (x, y) in zip(markers, xy):
            body.append(_marker(marker, float(x), float(y), marker_size))
        body.append("</g>")
    height = project.height
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="map" id="{escape(svg_id)}" viewBox="0 0 {WIDTH} {_num(height)}" '
        f'width="{WIDTH}" height="{_num(height)}" font-family="{FONT}" aria-labelledby="{escape(svg_id)}-title" '
        f'preserveAspectRatio="xMidYMin meet"><title id="{escape(svg_id)}-title">{escape(title)}</title>'
        f'{"".join(body)}</svg>'
    )


def _marker_shape(state: str | None, x: float, y: float, size: float = 5.5) -> str:
    color = SITE_STATES[state][0]
    if state == "fail":  # a diamond: not told by colour alone
        d = size * 1.3
        return (f'<path d="M{_num(x)},{_num(y - d)}L{_num(x + d)},{_num(y)}L{_num(x)},{_num(y + d)}L{_num(x - d)},{_num(y)}Z" '
                f'fill="{color}" stroke="#ffffff" stroke-width="{_num(size / 4)}"/>')
    return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(size)}" fill="{color}" stroke="#ffffff" stroke-width="{_num(size / 4)}"/>'


def _marker(marker: Marker, x: float, y: float, size: float) -> str:
    shape = _marker_shape(marker.state, x, y, size)
    text = marker.describe()
    if marker.link:
        return (f'<a href="{escape(marker.link)}" class="site" aria-label="{escape(text)}">'
                f'<title>{escape(text)}</title>{shape}</a>')
    return f'<g class="site"><title>{escape(text)}</title>{shape}</g>'


def legend_html(with_sites: bool = False) -> Markup:
    """Return the map's legend as HTML (real text, readable at any size): the score scale and the site markers.

    >>> "≤60" in legend_html() and "未检查" in legend_html(with_sites=True)
    True
    """
    stops = [LOW, 65, 70, 75, CENTER, 85, 90, HIGH]
    swatches = "".join(
        f'<li><span class="swatch" style="background:{score_color(value)}"></span>'
        f'{"≤" if i == 0 else ("≥" if i == len(stops) - 1 else "")}{value:g}</li>'
        for i, value in enumerate(stops))
    swatches += f'<li><span class="swatch" style="background:{NO_DATA}"></span>无数据</li>'
    out = (f'<div class="map-legend"><p>满意度（分）：以80分为中心，红色低于80分，蓝色高于80分</p>'
           f'<ul class="scale">{swatches}</ul>')
    if with_sites:
        items = "".join(
            f'<li><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">'
            f'{_marker_shape(state, 8, 8)}</svg>{label}</li>' for state, (_, label) in SITE_STATES.items())
        out += f'<p>点位（最近一次检查）：</p><ul class="sites">{items}</ul>'
    return Markup(out + "</div>")


def _wound(ring: np.ndarray, outer: bool) -> np.ndarray:
    """Return a ring wound as RFC 7946 has it (outer rings counter-clockwise, holes clockwise), which plotly draws.

    >>> _wound(np.array([[0, 0], [0, 1], [1, 1], [0, 0]], dtype=float), outer=True).tolist()
    [[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    """
    x, y = ring[:, 0], ring[:, 1]
    counter_clockwise = (x[:-1] * y[1:] - x[1:] * y[:-1]).sum() > 0
    return ring if counter_clockwise == outer else ring[::-1]


def choropleth_figure(shapes: Sequence[Shape], markers: Sequence[Marker] = (), *, title: str) -> dict:
    """Return a plotly figure (as its JSON dict) of the same shapes: a choropleth with no base map or tiles.

    Hover gives the name, the score, n and the interval; clicking an area or a site follows its
    link (static/map.js). The outlines are simplified to what a 1600-pixel-wide map can show.

    >>> square = [[[[120, 30], [120.01, 30], [120.01, 30.01], [120, 30.01], [120, 30]]]]
    >>> figure = choropleth_figure([Shape("A1", "甲社区", square, 72.5, 40, 68.0, 77.0, "/a")], title="示范")
    >>> figure["data"][0]["locations"], figure["data"][0]["z"], figure["layout"]["geo"]["visible"]
    (['A1'], [72.5], False)
    """
    extent = extent_of([s.coordinates for s in shapes])
    if extent is None:
        raise ValueError("nothing to draw: no outline")
    tolerance = max(extent[2] - extent[0], extent[3] - extent[1]) / 1600
    features = []
    for shape in shapes:
        polygons = []
        for polygon in shape.coordinates:
            rings = [_wound(simplify(np.asarray(ring, dtype=float)[:, :2], tolerance), outer=i == 0).round(6).tolist()
                     for i, ring in enumerate(polygon)]
            if len(rings[0]) >= 4:  # an outer ring too small to see takes its holes along
                rings = [r for r in rings if len(r) >= 4]
                polygons.append(rings)
        if polygons:
            features.append({"type": "Feature", "id": shape.code, "properties": {"code": shape.code},
                             "geometry": {"type": "MultiPolygon", "coordinates": polygons}})
    drawn = {f["id"] for f in features}
    geojson = {"type": "FeatureCollection", "features": features}
    scored = [s for s in shapes if s.code in drawn and s.value is not None]
    empty = [s for s in shapes if s.code in drawn and s.value is None]

    def interval(s: Shape) -> str:
        return f"{s.ci_low:.1f}–{s.ci_high:.1f}" if s.ci_low is not None and s.ci_high is not None else "—"

    line = {"color": "#ffffff", "width": 0.8}
    data: list[dict] = [{
        "type": "choropleth", "geojson": geojson, "featureidkey": "properties.code", "name": "满意度",
        "locations": [s.code for s in scored], "z": [round(float(s.value or 0), 2) for s in scored],
        "zmin": LOW, "zmax": HIGH, "colorscale": plotly_scale(), "marker": {"line": line},
        "customdata": [[s.name, s.n, interval(s), s.link or ""] for s in scored],
        "hovertemplate": "<b>%{customdata[0]}</b><br>满意度 %{z:.1f}分<br>n=%{customdata[1]}，95%区间 %{customdata[2]}<extra></extra>",
        "colorbar": {"title": {"text": "满意度"}, "tickvals": [LOW, 70, CENTER, 90, HIGH], "len": 0.8},
    }]
    if empty:
        data.append({
            "type": "choropleth", "geojson": geojson, "featureidkey": "properties.code", "name": "无数据",
            "locations": [s.code for s in empty], "z": [0] * len(empty), "showscale": False,
            "colorscale": [[0, NO_DATA], [1, NO_DATA]], "marker": {"line": line},
            "customdata": [[s.name, 0, "—", s.link or ""] for s in empty],
            "hovertemplate": "<b>%{customdata[0]}</b><br>无数据<extra></extra>",
        })
    if markers:
        data.append({
            "type": "scattergeo", "mode": "markers", "name": "点位",
            "lon": [m.lon for m in markers], "lat": [m.lat for m in markers],
            "marker": {"size": 9, "color": [SITE_STATES[m.state][0] for m in markers],
                       "symbol": ["diamond" if m.state == "fail" else "circle" for m in markers],
                       "line": {"color": "#ffffff", "width": 1}},
            "customdata": [[m.name, m.kind, SITE_STATES[m.state][1], m.link or ""] for m in markers],
            "hovertemplate": "<b>%{customdata[0]}</b><br>%{customdata[1]}<br>最近检查：%{customdata[2]}<extra></extra>",
        })
    layout = {
        "title": {"text": title, "x": 0.01}, "height": 640, "margin": {"l": 0, "r": 0, "t": 40, "b": 0},
        "font": {"family": FONT.replace("'", "")}, "showlegend": False, "dragmode": "pan",
        "geo": {"visible": False, "fitbounds": "locations", "projection": {"type": "equirectangular"},
                "bgcolor": "rgba(0,0,0,0)"},
    }
    return {"data": data, "layout": layout}
