"""Sites (实地考察点位): import from CSV (``flask import-sites``), each in a community, a unit's charge, at a place."""
from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from survey.csv_files import csv_reader
from survey.models import SITE_TYPES, Area, Site, Unit

SITE_COLUMNS = ("code", "name", "type", "community_code", "unit", "lat", "lon")
REQUIRED = ("code", "name", "type", "community_code")
MAX_BYTES = 8 * 1024 * 1024
MAX_ROWS = 50_000
TYPE_BY_NAME = {name: key for key, name in SITE_TYPES.items()}


class SiteError(ValueError):
    """A bad sites CSV; the message names the line."""


def site_type(text: str) -> str:
    """Return the type key for a type written as its key or its Chinese name; raise SiteError.

    >>> site_type("toilet"), site_type("农贸市场")
    ('toilet', 'market')
    """
    text = text.strip()
    if text in SITE_TYPES:
        return text
    if text in TYPE_BY_NAME:
        return TYPE_BY_NAME[text]
    raise SiteError(f"type {text[:40]!r} is none of {'、'.join(SITE_TYPES.values())} (or their keys: "
                    f"{', '.join(SITE_TYPES)})")


def _coordinate(text: str, name: str, limit: float) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise SiteError(f"{name} {text[:40]!r} is not a number") from None
    if not math.isfinite(value) or not -limit <= value <= limit:
        raise SiteError(f"{name} {text[:40]!r} is not a WGS84 {name} (between -{limit:g} and {limit:g})")
    return round(value, 7)


def import_sites(session: Session, text: str) -> int:
    """Create or update sites from CSV text (columns ``SITE_COLUMNS``, by code); return the rows read.

    ``unit`` is a responsible unit's name as imported (``flask import-units``), or empty; ``lat`` and
    ``lon`` are WGS84 degrees, both or neither. The whole file is applied or nothing is (the caller's
    transaction).
    """
    reader = csv_reader(text, SiteError)
    fields = [f.strip() for f in reader.fieldnames or []]
    reader.fieldnames = fields
    missing = [c for c in REQUIRED if c not in fields]
    if missing:
        raise SiteError(f"line 1: missing column(s) {', '.join(missing)}; expected {','.join(SITE_COLUMNS)}")
    communities = {a.code: a for a in session.scalars(select(Area).where(Area.level == "community"))}
    units = {u.name: u for u in session.scalars(select(Unit))}
    known = {s.code: s for s in session.scalars(select(Site))}
    seen: set[str] = set()
    count = 0
    for row in reader:
        line = reader.line_num
        if count >= MAX_ROWS:
            raise SiteError(f"line {line}: more than {MAX_ROWS:,} sites in one file")
        try:
            site = _site(row, communities, units, known, seen)
        except SiteError as exc:
            raise SiteError(f"line {line}: {exc}") from None
        session.add(site)
        known[site.code] = site
        count += 1
    if count == 0:
        raise SiteError("the file has no rows")
    session.flush()
    return count


def _site(row: dict, communities: dict[str, Area], units: dict[str, Unit], known: dict[str, Site],
          seen: set[str]) -> Site:
    def cell(name: str) -> str:
        value = row.get(name)
        return value.strip() if isinstance(value, str) else ""

    code, name = cell("code"), cell("name")
    if not code or len(code) > 64:
        raise SiteError("code is required (at most 64 characters)")
    if code in seen:
        raise SiteError(f"site {code} appears twice in the file")
    seen.add(code)
    if not name or len(name) > 200:
        raise SiteError(f"site {code}: name is required (at most 200 characters)")
    try:
        kind = site_type(cell("type"))
        lat, lon = _coordinate(cell("lat"), "latitude", 90), _coordinate(cell("lon"), "longitude", 180)
    except SiteError as exc:
        raise SiteError(f"site {code}: {exc}") from None
    community = communities.get(cell("community_code"))
    if community is None:
        raise SiteError(f"site {code}: community_code {cell('community_code')[:64]!r} is no community's code")
    unit = None
    if cell("unit"):
        unit = units.get(cell("unit"))
        if unit is None:
            raise SiteError(f"site {code}: no unit is named {cell('unit')[:200]!r}; import the units first")
    if (lat is None) != (lon is None):
        raise SiteError(f"site {code}: give both lat and lon, or neither")
    site = known.get(code) or Site(code=code)
    site.name, site.site_type, site.area, site.unit, site.lat, site.lon = name, kind, community, unit, lat, lon
    return site
