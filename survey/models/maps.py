"""The map: areas' boundaries (from the city's GeoJSON) and sites (实地考察点位) placed in communities."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from survey.models.areas import Area
from survey.models.base import Base, UTCDateTime, utcnow
from survey.models.rectification import Unit

# The kinds of site the assessment's 实地考察点位 standards name (seeds 002, 003); a site's ``site_type``
# is one of these keys. A type's checklist questionnaire comes with inspections (issue 30, part 2).
SITE_TYPES = {
    "market": "农贸市场", "back_street": "背街小巷", "road": "主次干道", "toilet": "公共厕所",
    "park": "公园广场", "bus_stop": "公交站点", "station": "车站", "residential": "居民小区",
    "community_centre": "社区服务站", "practice_centre": "新时代文明实践站", "culture": "公共文化场所",
    "school": "学校周边", "hospital": "医院", "mall": "商场超市", "service_hall": "政务服务大厅",
    "construction": "建筑工地", "ads": "公益广告",
}


class AreaBoundary(Base):
    """An area's outline as its GeoJSON geometry, a MultiPolygon in WGS84 longitude/latitude, with its extent."""

    __tablename__ = "area_boundary"

    area_id: Mapped[int] = mapped_column(ForeignKey("area.id", ondelete="CASCADE"), primary_key=True)
    # [[[[lon, lat], ...] (outer ring), [hole], ...] (polygon), ...]: checked and bounded by survey/boundaries.py
    coordinates: Mapped[list] = mapped_column(JSON)
    vertices: Mapped[int] = mapped_column(Integer)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    area: Mapped[Area] = relationship()


class Site(Base):
    """A site (点位) that inspectors visit: in a community, the charge of a responsible unit, at a place."""

    __tablename__ = "site"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    site_type: Mapped[str] = mapped_column(String(32))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    area: Mapped[Area] = relationship()
    unit: Mapped[Unit | None] = relationship()

    @property
    def type_name(self) -> str:
        return SITE_TYPES.get(self.site_type, self.site_type)
