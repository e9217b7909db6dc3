"""/office/map: the communities of the viewer's area coloured by satisfaction, with sites; site lists and pages.

Registered on the office blueprint. The drawing is server-side SVG (reports/maps.py), so it works on
a phone, with no JavaScript and in the PDF; on a desktop static/map.js loads plotly.js (served here
from the installed plotly package) and draws the same outlines as an interactive choropleth.
"""
from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

from flask import Blueprint, abort, jsonify, render_template, request, send_file, url_for
from markupsafe import Markup

from reports.maps import choropleth_figure, legend_html, map_svg
from survey import db
from survey.auth import login_required, staff_user
from survey.ids import query_id
from survey.models import AnalysisRun, Area, Site
from survey.reading import dashboard
from survey.reading.maps import area_map, site_by_code, sites_count, sites_in
from survey.scope import breadcrumbs, in_scope, scoped_area


def _plotly_js_path() -> Path:
    """Return the plotly.min.js the installed plotly package bundles (found, not imported: no start-up cost)."""
    spec = find_spec("plotly")
    if spec is None or spec.origin is None:
        raise RuntimeError("the plotly package is missing (it is in setup.cfg's install_requires)")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


PLOTLY_JS = _plotly_js_path()
SITES_PAGE = 200


def register(bp: Blueprint) -> None:
    """Add the map, the site list and the site page to the office blueprint."""
    bp.add_url_rule("/map", "map", login_required(map_page))
    bp.add_url_rule("/map/<code>", "area_map", login_required(map_page))
    bp.add_url_rule("/area/<code>/sites", "sites", login_required(sites_page))
    bp.add_url_rule("/site/<code>", "site", login_required(site_page))
    bp.add_url_rule("/vendor/plotly.min.js", "plotly_js", login_required(plotly_js))
    bp.add_url_rule("/vendor/topojson/<name>.json", "topojson", login_required(empty_topojson))


def _run(session) -> AnalysisRun | None:
    """Return the run of ?q= (citizen, else the first analysed) in ?wave=, else its newest; 404 for an unknown one."""
    analysed = dashboard.analysed_questionnaires(session)
    code = request.args.get("q") or next(iter(analysed), "citizen")
    if request.args.get("q") and code not in analysed:
        abort(404)
    runs = dashboard.runs_by_wave(session, code)
    wave_id = request.args.get("wave", type=query_id)
    chosen = [r for r in runs if r.wave_id == wave_id] if wave_id else runs[-1:]
    if wave_id and not chosen:
        abort(404)
    return chosen[0] if chosen else None


def _community_link(area: Area) -> str:
    return url_for("office.community", code=area.code)


def _site_link(site: Site) -> str:
    return url_for("office.site", code=site.code)


def map_page(code: str | None = None):
    """The map of the viewer's area (or of ``code`` within it): SVG for every screen, plotly on a desktop."""
    session = db.session()
    user = staff_user()
    place = scoped_area(session, user, code or user.area.code)
    run = _run(session)
    found = area_map(session, place, run, _community_link, _site_link)
    title = f"{place.name}社区满意度地图" + (f"（{run.wave.name}）" if run else "")
    svg = map_svg(found.shapes, found.markers, found.outlines, title=title) if found.drawable else None
    figure = None
    if found.shapes:
        figure = Markup(json.dumps(choropleth_figure(found.shapes, found.markers, title=title), ensure_ascii=False)
                        .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    children = sorted((c for c in place.children if c.level in ("district", "street")), key=lambda a: a.code)
    shapes = sorted(found.shapes, key=lambda s: (s.value is None, s.value if s.value is not None else 0))
    return render_template("office/map.html", area=place, run=run, map_svg=svg, figure=figure, found=found,
                           legend=legend_html(bool(found.markers)),
                           shapes=shapes, children=children, breadcrumbs=breadcrumbs(user, place),
                           sites_total=sites_count(session, place))


def sites_page(code: str):
    """The sites of an area, by community, a page at a time."""
    session = db.session()
    user = staff_user()
    place = scoped_area(session, user, code)
    page = dashboard.Page.of(request.args.get("page"), SITES_PAGE, sites_count(session, place))
    return render_template("office/sites.html", area=place, page=page, breadcrumbs=breadcrumbs(user, place),
                           sites=sites_in(session, place, limit=page.size, offset=page.offset))


def site_page(code: str):
    """One site: what and where it is, who is in charge; 404 outside the viewer's area, as if it did not exist."""
    session = db.session()
    user = staff_user()
    site = site_by_code(session, code)
    if site is None or not in_scope(user, site.area):
        abort(404)
    svg = None
    if site.lat is not None and site.lon is not None:
        found = area_map(session, site.area, None, _community_link, _site_link)
        markers = [m for m in found.markers if m.code == site.code]
        svg = map_svg(found.shapes, markers, title=f"{site.name}的位置", svg_id="site-map", labels=False,
                      marker_size=16)
    return render_template("office/site.html", site=site, area=site.area, map_svg=svg,
                           breadcrumbs=breadcrumbs(user, site.area))


# plotly.js asks for a world base map (topojson) for every geo plot, from its CDN unless told otherwise;
# the map draws the city's own outlines only, so it gets an empty one from here (no request leaves).
EMPTY_TOPOLOGY = {"type": "Topology", "arcs": [], "objects": {
    layer: {"type": "GeometryCollection", "geometries": []}
    for layer in ("coastlines", "land", "ocean", "lakes", "rivers", "countries", "subunits")}}


def empty_topojson(name: str):
    return jsonify(EMPTY_TOPOLOGY)


def plotly_js():
    """plotly.js from the installed plotly package: no CDN; cached by the browser a week."""
    return send_file(PLOTLY_JS, mimetype="text/javascript", max_age=7 * 24 * 3600)
