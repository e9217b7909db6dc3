"""Area boundaries from the city's GeoJSON (``flask import-boundaries``): checked, bounded, stored per area.

A city's GIS exports a FeatureCollection with one feature per area, ``properties.code`` the area's
code and a Polygon or MultiPolygon in WGS84 longitude/latitude. The file is read with budgets (bytes,
features, vertices, rings, nesting), so a hostile or careless file costs bounded time and memory;
every error names the feature (its number in the file and its code).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from survey.models import Area, AreaBoundary

MAX_BYTES = 32 * 1024 * 1024
MAX_FEATURES = 20_000
MAX_FEATURE_VERTICES = 50_000
MAX_TOTAL_VERTICES = 1_000_000
MAX_RINGS = 1_000  # per feature, holes included
DIGITS = 7  # about a centimetre: more is noise from the exporting program
WGS84_NAMES = ("CRS84", "EPSG:4326", "EPSG::4326")


class BoundaryError(ValueError):
    """A GeoJSON file that cannot be imported; the message names the feature."""


@dataclass(frozen=True)
class Boundary:
    """One feature's outline, as a MultiPolygon's coordinates, with its vertex count and extent."""

    code: str
    coordinates: list[list[list[list[float]]]]
    vertices: int
    extent: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat


def parse_geojson(data: bytes) -> list[Boundary]:
    """Return the features of a GeoJSON FeatureCollection of area outlines; raise BoundaryError.

    >>> square = [[[120, 30], [120.01, 30], [120.01, 30.01], [120, 30.01], [120, 30]]]
    >>> text = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"code": "A1"},
    ...         "geometry": {"type": "Polygon", "coordinates": square}}]}
    >>> [(b.code, b.vertices) for b in parse_geojson(json.dumps(text).encode())]
    [('A1', 5)]
    """
    if len(data) > MAX_BYTES:
        raise BoundaryError(f"the file has {len(data):,} bytes; at most {MAX_BYTES:,} are read "
                            "(simplify the outlines in the GIS before exporting)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BoundaryError("the file is not UTF-8 text; export GeoJSON as UTF-8") from None
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise BoundaryError("the file nests arrays or objects too deeply to be GeoJSON") from None
    except ValueError as exc:  # json.JSONDecodeError, an integer too long to read, NaN or Infinity
        raise BoundaryError(f"the file is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise BoundaryError('the file is not a GeoJSON FeatureCollection ({"type": "FeatureCollection", "features": [...]})')
    _check_crs(document.get("crs"))
    features = document.get("features")
    if not isinstance(features, list) or not features:
        raise BoundaryError("the FeatureCollection has no features")
    if len(features) > MAX_FEATURES:
        raise BoundaryError(f"the file has {len(features):,} features; at most {MAX_FEATURES:,} (one per area)")
    out: list[Boundary] = []
    seen: dict[str, int] = {}
    budget = MAX_TOTAL_VERTICES
    for number, feature in enumerate(features, start=1):
        code = _code(feature, number)
        where = f"feature {number} (code {code})"
        if code in seen:
            raise BoundaryError(f"{where}: the code appears already in feature {seen[code]}")
        seen[code] = number
        try:
            boundary = _boundary(code, feature.get("geometry"), min(budget, MAX_FEATURE_VERTICES))
        except BoundaryError as exc:
            raise BoundaryError(f"{where}: {exc}") from None
        budget -= boundary.vertices
        out.append(boundary)
    return out


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number GeoJSON allows")


def _check_crs(crs: object) -> None:
    """Refuse a (2008 GeoJSON) crs member that names anything but WGS84 longitude/latitude."""
    if crs is None:
        return
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) and isinstance(crs.get("properties"), dict) else None
    if not isinstance(name, str) or not any(n in name.upper() for n in WGS84_NAMES):
        raise BoundaryError(f"the file's crs is {str(name)[:80]!r}; export WGS84 longitude/latitude (EPSG:4326)")


def _code(feature: object, number: int) -> str:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise BoundaryError(f"feature {number}: not a GeoJSON Feature")
    properties = feature.get("properties")
    code = properties.get("code") if isinstance(properties, dict) else None
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    if not isinstance(code, str) or not code.strip():
        raise BoundaryError(f"feature {number}: properties.code (the area's code) is missing")
    code = code.strip()
    if len(code) > 64:
        raise BoundaryError(f"feature {number}: properties.code is longer than 64 characters")
    return code


def _boundary(code: str, geometry: object, budget: int) -> Boundary:
    if not isinstance(geometry, dict):
        raise BoundaryError("the feature has no geometry")
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise BoundaryError("the MultiPolygon has no polygons")
        polygons = coordinates
    else:
        raise BoundaryError(f"the geometry is a {str(kind)[:40]}; an area's outline is a Polygon or MultiPolygon")
    rings = sum(len(p) for p in polygons if isinstance(p, list))
    if rings > MAX_RINGS:
        raise BoundaryError(f"the outline has {rings:,} rings; at most {MAX_RINGS:,}")
    out: list[list[list[list[float]]]] = []
    vertices = 0
    lons: list[float] = []
    lats: list[float] = []
    for p, polygon in enumerate(polygons, start=1):
        if not isinstance(polygon, list) or not polygon:
            raise BoundaryError(f"polygon {p} has no rings")
        rings_out = []
        for r, ring in enumerate(polygon, start=1):
            where = f"ring {r} of polygon {p}"
            if not isinstance(ring, list) or len(ring) < 4:
                raise BoundaryError(f"{where} has fewer than 4 positions (a closed ring needs at least 4)")
            vertices += len(ring)
            if vertices > budget:
                raise BoundaryError(f"the outline has more than {budget:,} vertices "
                                    f"(at most {MAX_FEATURE_VERTICES:,} an area, {MAX_TOTAL_VERTICES:,} a file); "
                                    "simplify it in the GIS")
            positions = [_position(position, where, i) for i, position in enumerate(ring, start=1)]
            if positions[0] != positions[-1]:
                raise BoundaryError(f"{where} is not closed (its first and last positions differ)")
            lons.extend(lon for lon, _ in positions)
            lats.extend(lat for _, lat in positions)
            rings_out.append(positions)
        out.append(rings_out)
    return Boundary(code, out, vertices, (min(lons), min(lats), max(lons), max(lats)))


def _position(position: object, where: str, number: int) -> list[float]:
    if not isinstance(position, list) or len(position) not in (2, 3):
        raise BoundaryError(f"{where}, position {number}: not [longitude, latitude]")
    lon, lat = position[0], position[1]
    for value in (lon, lat):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise BoundaryError(f"{where}, position {number}: {str(value)[:40]} is not a number")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BoundaryError(f"{where}, position {number}: [{lon}, {lat}] is not a longitude and latitude; "
                            "export WGS84 (EPSG:4326), not projected metres")
    return [round(float(lon), DIGITS), round(float(lat), DIGITS)]


def import_boundaries(session: Session, boundaries: list[Boundary]) -> int:
    """Store each boundary as its area's outline (replacing an earlier one); return how many.

    Every code must be an area's; the caller's transaction applies the whole file or nothing.
    """
    codes = [b.code for b in boundaries]
    areas: dict[str, Area] = {}
    for start in range(0, len(codes), 500):
        chunk = codes[start:start + 500]
        areas.update({a.code: a for a in session.scalars(select(Area).where(Area.code.in_(chunk)))})
    for number, boundary in enumerate(boundaries, start=1):
        if boundary.code not in areas:
            raise BoundaryError(f"feature {number} (code {boundary.code}): no area has this code; import the areas first")
    ids = [areas[c].id for c in codes]
    for start in range(0, len(ids), 500):
        session.execute(delete(AreaBoundary).where(AreaBoundary.area_id.in_(ids[start:start + 500])))
    now = datetime.now(UTC)
    for boundary in boundaries:
        min_lon, min_lat, max_lon, max_lat = boundary.extent
        session.add(AreaBoundary(area_id=areas[boundary.code].id, coordinates=boundary.coordinates,
                                 vertices=boundary.vertices, min_lon=min_lon, min_lat=min_lat, max_lon=max_lon,
                                 max_lat=max_lat, imported_at=now))
    session.flush()
    return len(boundaries)
