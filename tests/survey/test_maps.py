"""Boundaries and sites: ``flask import-boundaries`` and ``flask import-sites``, and the scoped map pages."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from survey import boundaries, db
from survey.auth import create_user
from survey.models import AreaBoundary, Site
from tests.conftest import PASSWORD, logged_in


def square(lon: float, lat: float, size: float = 0.01) -> list:
    return [[[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]]


def feature(code, coordinates=None, kind="Polygon") -> dict:
    return {"type": "Feature", "properties": {"code": code},
            "geometry": {"type": kind, "coordinates": coordinates if coordinates is not None else square(120.0, 30.0)}}


def collection(*features) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


CITY_OUTLINES = collection(
    feature("A1", square(120.00, 30.00)), feature("A2", square(120.01, 30.00)), feature("B1", square(120.00, 30.01)),
    feature("S1", [square(120.00, 30.00, 0.02)], "MultiPolygon"))


def write(tmp_path, document, name="areas.geojson"):
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return str(path)


def test_import_boundaries_stores_an_outline_per_area_and_replaces_it_on_a_new_file(app, city, runner, tmp_path):
    result = runner.invoke(args=["import-boundaries", write(tmp_path, CITY_OUTLINES)])
    assert result.exit_code == 0, result.output
    assert "Imported 4 boundaries" in result.output
    moved = collection(feature("A1", square(121.0, 31.0)))
    assert runner.invoke(args=["import-boundaries", write(tmp_path, moved)]).exit_code == 0
    with app.app_context():
        stored = {b.area.code: b for b in db.session().scalars(select(AreaBoundary))}
        assert set(stored) == {"A1", "A2", "B1", "S1"}
        a1 = stored["A1"]
        assert a1.coordinates == [square(121.0, 31.0)] and a1.vertices == 5  # a Polygon is kept as a MultiPolygon
        assert (a1.min_lon, a1.min_lat, a1.max_lon, a1.max_lat) == (121.0, 31.0, 121.01, 31.01)


BAD_FILES = [
    ("{not json", "the file is not JSON"),
    ("[" * 100_000 + "]" * 100_000, "nests arrays or objects too deeply"),
    (collection(), "has no features"),
    ({"type": "Feature"}, "not a GeoJSON FeatureCollection"),
    (collection(feature("A1"), {"type": "Feature", "properties": {}, "geometry": None}),
     "feature 2: properties.code (the area's code) is missing"),
    (collection(feature("A1", [120, 30], "Point")), "feature 1 (code A1): the geometry is a Point"),
    (collection(feature("A1", [[[120, 30], [120.1, 30], [120.1, 30.1], [120, 30.1]]])),
     "feature 1 (code A1): ring 1 of polygon 1 is not closed"),
    (collection(feature("A1", [[[120, 30], [120.1, 30], [120, 30]]])), "fewer than 4 positions"),
    (collection(feature("A1", [[[500000, 3300000], [500100, 3300000], [500100, 3300100], [500000, 3300000]]])),
     "feature 1 (code A1): ring 1 of polygon 1, position 1: [500000, 3300000] is not a longitude and latitude"),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "A1"}, "geometry": '
     '{"type": "Polygon", "coordinates": [[[NaN, 30], [120.1, 30], [120.1, 30.1], [120, 30]]]}}]}', "NaN is not a number"),
    (collection(feature("A1"), feature("A2"), feature("A1")), "feature 3 (code A1): the code appears already in feature 1"),
    (collection(feature("A1"), feature("ZZ9")), "feature 2 (code ZZ9): no area has this code"),
    ({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}},
      "features": [feature("A1")]}, "export WGS84 longitude/latitude"),
]


@pytest.mark.parametrize(("document", "message"), BAD_FILES, ids=range(len(BAD_FILES)))
def test_a_bad_file_is_refused_whole_with_the_feature_named(app, city, runner, tmp_path, document, message):
    result = runner.invoke(args=["import-boundaries", write(tmp_path, collection(feature("B1")), "first.geojson")])
    assert result.exit_code == 0
    result = runner.invoke(args=["import-boundaries", write(tmp_path, document)])
    assert result.exit_code == 1
    assert message in result.output and "nothing was imported" in result.output
    with app.app_context():
        assert [b.area.code for b in db.session().scalars(select(AreaBoundary))] == ["B1"]


def test_budgets_bound_the_work_of_a_large_file(app, city, runner, tmp_path, monkeypatch):
    many = [[120 + i * 1e-5, 30.0] for i in range(60)] + [[120.0, 30.001], [120.0, 30.0]]
    too_many = collection(feature("A1", [many]))
    monkeypatch.setattr(boundaries, "MAX_FEATURE_VERTICES", 50)
    result = runner.invoke(args=["import-boundaries", write(tmp_path, too_many)])
    assert "feature 1 (code A1): the outline has more than 50 vertices" in result.output
    monkeypatch.setattr(boundaries, "MAX_BYTES", 100)
    result = runner.invoke(args=["import-boundaries", write(tmp_path, CITY_OUTLINES)])
    assert result.exit_code == 1 and "larger than 100 bytes" in result.output
    with pytest.raises(boundaries.BoundaryError, match="at most 100 are read"):
        boundaries.parse_geojson(json.dumps(CITY_OUTLINES).encode())


UNITS_CSV = "name,contact,phone,communities\n市教育局,王,123,A1;A2\n"
SITES_CSV = """code,name,type,community_code,unit,lat,lon
P1,甲农贸市场,market,A1,市教育局,30.005,120.005
P2,乙公厕,公共厕所,A2,,30.004,120.014
P3,丙背街小巷,back_street,B1,,,
"""


@pytest.fixture
def mapped_city(app, city, runner, tmp_path):
    """The small city with outlines, a unit and three sites (one without a place)."""
    (tmp_path / "units.csv").write_text(UNITS_CSV, encoding="utf-8")
    (tmp_path / "sites.csv").write_text(SITES_CSV, encoding="utf-8")
    assert runner.invoke(args=["import-boundaries", write(tmp_path, CITY_OUTLINES)]).exit_code == 0
    assert runner.invoke(args=["import-units", str(tmp_path / "units.csv")]).exit_code == 0
    result = runner.invoke(args=["import-sites", str(tmp_path / "sites.csv")])
    assert result.exit_code == 0 and "Imported 3 sites" in result.output, result.output
    with app.app_context(), db.write_transaction() as session:
        for username, role, code in (("boss", "city", "C"), ("street1", "street", "S1"), ("street2", "street", "S2"),
                                     ("comm", "community", "A1")):
            create_user(session, username, PASSWORD, role, code)
    return city


def test_import_sites_places_them_and_updates_by_code(app, mapped_city, runner, tmp_path):
    (tmp_path / "again.csv").write_text("\ufeffcode,name,type,community_code,unit,lat,lon\nP2,乙公厕（新）,toilet,A1,,,\n",
                                        encoding="utf-8")
    assert runner.invoke(args=["import-sites", str(tmp_path / "again.csv")]).exit_code == 0
    with app.app_context():
        sites = {s.code: s for s in db.session().scalars(select(Site))}
        assert (sites["P1"].site_type, sites["P1"].type_name, sites["P1"].unit.name, sites["P1"].lat) == (
            "market", "农贸市场", "市教育局", 30.005)
        assert (sites["P2"].name, sites["P2"].area.code, sites["P2"].lat) == ("乙公厕（新）", "A1", None)


@pytest.mark.parametrize(("row", "message"), [
    ("P9,新点位,飞机场,A1,,,", "line 3: site P9: type '飞机场' is none of 农贸市场"),
    ("P9,新点位,market,S1,,,", "line 3: site P9: community_code 'S1' is no community's code"),
    ("P9,新点位,market,A1,不存在的局,,", "line 3: site P9: no unit is named '不存在的局'"),
    ("P9,新点位,market,A1,,30.1,", "line 3: site P9: give both lat and lon, or neither"),
    ("P9,新点位,market,A1,,95,120", "line 3: site P9: latitude '95' is not a WGS84 latitude"),
    ("P1,重复,market,A1,,,", "line 3: site P1 appears twice in the file"),
    (",无编码,market,A1,,,", "line 3: code is required"),
])
def test_a_bad_sites_file_names_the_line_and_imports_nothing(app, mapped_city, runner, tmp_path, row, message):
    (tmp_path / "bad.csv").write_text(f"code,name,type,community_code,unit,lat,lon\nP1,甲,market,A1,,,\n{row}\n",
                                      encoding="utf-8")
    result = runner.invoke(args=["import-sites", str(tmp_path / "bad.csv")])
    assert result.exit_code == 1 and message in result.output, result.output
    with app.app_context():
        assert db.session().scalar(select(Site).where(Site.code == "P1")).name == "甲农贸市场"  # unchanged


def drawn_codes(html: str) -> set[str]:
    return set(re.findall(r'class="area" aria-label="[^"]*" data-code="(\w+)"', html))


@pytest.mark.parametrize(("username", "own", "inside", "outside"), [
    ("boss", "C", {"A1", "A2", "B1"}, None),
    ("street1", "S1", {"A1", "A2"}, "S2"),
    ("street2", "S2", {"B1"}, "S1"),
    ("comm", "A1", {"A1"}, "A2"),
])
def test_the_map_draws_every_community_of_the_viewers_area_and_only_those(app, mapped_city, username, own, inside,
                                                                          outside):
    client = logged_in(app.test_client(), username)
    html = client.get("/office/map").get_data(as_text=True)
    assert drawn_codes(html) == inside
    assert drawn_codes(client.get(f"/office/map/{own}").get_data(as_text=True)) == inside
    if outside:
        assert client.get(f"/office/map/{outside}").status_code == 404
        assert client.get(f"/office/area/{outside}/sites").status_code == 404
    sites = client.get(f"/office/area/{own}/sites").get_data(as_text=True)
    listed = set(re.findall(r'href="/office/site/(\w+)"', sites))
    expected = {"A1": {"P1"}, "A2": {"P2"}, "B1": {"P3"}}
    assert listed == set().union(*(expected[c] for c in inside))
    for code, community in (("P1", "A1"), ("P2", "A2"), ("P3", "B1")):
        assert client.get(f"/office/site/{code}").status_code == (200 if community in inside else 404)


def test_the_map_page_has_its_markers_the_figure_and_plotly_from_this_server(app, mapped_city):
    client = logged_in(app.test_client(), "boss")
    html = client.get("/office/map").get_data(as_text=True)
    assert '<title>甲农贸市场（农贸市场）：未检查</title>' in html and 'href="/office/site/P1"' in html
    assert "1 个点位没有经纬度，未画出" in html and "本区域共 3 个点位" in html
    figure = json.loads(re.search(r'<script type="application/json" id="map-figure">(.*?)</script>', html, re.S).group(1))
    assert figure["data"][0]["type"] == "choropleth" and figure["layout"]["geo"]["visible"] is False
    assert 'data-plotly="/office/vendor/plotly.min.js"' in html and "cdn" not in html.lower()
    script = client.get("/office/vendor/plotly.min.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript" and b"plotly" in script.data[:2000]
    assert client.get("/office/vendor/topojson/world_110m.json").get_json()["type"] == "Topology"
    site = client.get("/office/site/P1").get_data(as_text=True)
    assert "市教育局" in site and "北纬 30.00500，东经 120.00500" in site and 'id="site-map"' in site
    assert logged_in(app.test_client(), "boss").get("/office/site/NOPE").status_code == 404
    anonymous = app.test_client()
    for path in ("/office/map", "/office/vendor/plotly.min.js", "/office/site/P1", "/office/area/C/sites"):
        assert anonymous.get(path).status_code == 302


def test_a_city_without_outlines_says_how_to_import_them(app, city):
    with app.app_context(), db.write_transaction() as session:
        create_user(session, "boss", PASSWORD, "city", "C")
    html = logged_in(app.test_client(), "boss").get("/office/map").get_data(as_text=True)
    assert "flask import-boundaries" in html and "<svg" not in html
