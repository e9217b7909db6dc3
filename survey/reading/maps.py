"""What the map shows: the communities of an area with their outlines and scores, higher outlines, sites.

Plain functions over a session and an area the caller has checked (``survey.scope``): every query is
cut to the area's subtree (``scope.within``), so a map never draws a community outside it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from reports.maps import Marker, Outline, Shape
from survey.models import AnalysisRun, Area, AreaBoundary, AreaResult, Site
from survey.scope import within

OUTLINE_WEIGHT = {"city": 3.0, "district": 2.4, "street": 1.4}


@dataclass
class AreaMap:
    """An area's map: its communities as shapes, the outlines above them, its sites, what has no outline."""

    area: Area
    shapes: list[Shape] = field(default_factory=list)
    outlines: list[Outline] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    without_outline: list[Area] = field(default_factory=list)
    sites_without_place: int = 0

    @property
    def drawable(self) -> bool:
        return bool(self.shapes or self.markers)


def area_map(session: Session, area: Area, run: AnalysisRun | None, community_link: Callable[[Area], str | None],
             site_link: Callable[[Site], str | None]) -> AreaMap:
    """Return the map of ``area``: every community in its subtree (with its score in ``run``), and its sites."""
    found = AreaMap(area)
    communities = session.execute(
        select(Area, AreaBoundary).outerjoin(AreaBoundary, AreaBoundary.area_id == Area.id)
        .where(within(area), Area.level == "community").order_by(Area.code)
    ).all()
    results: dict[int, AreaResult] = {}
    if run is not None:
        results = {r.area_id: r for r in session.scalars(
            select(AreaResult).join(Area, Area.id == AreaResult.area_id)
            .where(AreaResult.run_id == run.id, within(area), Area.level == "community"))}
    for community, boundary in communities:
        if boundary is None:
            found.without_outline.append(community)
            continue
        result = results.get(community.id)
        found.shapes.append(Shape(
            community.code, community.name, boundary.coordinates,
            result.estimate if result else None, result.n if result else 0,
            result.ci_low if result else None, result.ci_high if result else None, community_link(community)))
    higher = session.execute(
        select(Area.name, Area.level, AreaBoundary.coordinates).join(AreaBoundary, AreaBoundary.area_id == Area.id)
        .where(within(area), Area.level.in_(list(OUTLINE_WEIGHT)))
    ).all()
    found.outlines = sorted((Outline(name, coordinates, OUTLINE_WEIGHT[level]) for name, level, coordinates in higher),
                            key=lambda outline: outline.weight)  # the heavier on top
    states = last_inspections(session, area)
    for site in sites_in(session, area):
        if site.lat is None or site.lon is None:
            found.sites_without_place += 1
            continue
        found.markers.append(Marker(site.code, site.name, site.lon, site.lat, states.get(site.id), site.type_name,
                                    site_link(site)))
    return found


def last_inspections(session: Session, area: Area) -> dict[int, str]:
    """Return {site id: "pass" or "fail"} for the sites of ``area`` by their last inspection.

    Inspections come with issue 30's part 2; until then no site has one and every marker is grey.
    """
    return {}


def sites_in(session: Session, area: Area, limit: int | None = None, offset: int = 0) -> list[Site]:
    """Return the sites in the subtree of ``area``, by community then code."""
    query = (select(Site).join(Area, Area.id == Site.area_id).where(within(area))
             .options(joinedload(Site.area), joinedload(Site.unit)).order_by(Area.code, Site.code))
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return list(session.scalars(query))


def sites_count(session: Session, area: Area) -> int:
    return int(session.scalar(select(func.count(Site.id)).join(Area, Area.id == Site.area_id).where(within(area))) or 0)


def site_by_code(session: Session, code: str) -> Site | None:
    """Return the site with ``code`` (the caller checks its community against the viewer's scope)."""
    return session.scalar(select(Site).where(Site.code == code).options(joinedload(Site.area), joinedload(Site.unit)))


def boundary_of(session: Session, area: Area) -> AreaBoundary | None:
    return session.get(AreaBoundary, area.id)
