"""Administrative areas: CSV import and subtree look-ups."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from survey.csv_files import csv_reader
from survey.models import LEVELS, Area

AREA_COLUMNS = ("code", "name", "level", "parent_code", "adult_population", "responsible_unit")
PARENT_LEVEL = {"district": "city", "street": "district", "community": "street", "grid": "community"}


class AreaImportError(ValueError):
    """A bad areas CSV; the message names the line."""


def import_areas(session: Session, text: str) -> int:
    """Create or update areas from CSV text (columns ``AREA_COLUMNS``); return rows read.

    Parents must come before their children (in the file or already in the database). The
    whole file is applied or nothing is. An area that moves to another parent takes its whole
    subtree along: every descendant's path (what scoping reads) changes in the same transaction.
    """
    reader = csv_reader(text, AreaImportError)
    missing = [c for c in ("code", "name", "level") if c not in (reader.fieldnames or [])]
    if missing:
        raise AreaImportError(f"line 1: missing column(s) {', '.join(missing)}; expected {','.join(AREA_COLUMNS)}")
    known = {a.code: a for a in session.scalars(select(Area))}
    count = 0
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        code = (row.get("code") or "").strip()
        name = (row.get("name") or "").strip()
        level = (row.get("level") or "").strip()
        parent_code = (row.get("parent_code") or "").strip()
        if not code or not name:
            raise AreaImportError(f"line {line}: code and name are required")
        if code in seen:
            raise AreaImportError(f"line {line}: code {code} appears twice in the file")
        seen.add(code)
        if level not in LEVELS:
            raise AreaImportError(f"line {line}: level {level!r} is not one of {', '.join(LEVELS)}")
        parent = None
        if level != "city":
            parent = known.get(parent_code)
            if parent is None:
                raise AreaImportError(f"line {line}: parent {parent_code!r} of {code} is unknown (list parents first)")
            if parent.level != PARENT_LEVEL[level]:
                raise AreaImportError(f"line {line}: a {level} must sit under a {PARENT_LEVEL[level]}, not a {parent.level}")
        population = (row.get("adult_population") or "").strip()
        if population and (not population.isdigit() or int(population) <= 0):
            raise AreaImportError(f"line {line}: adult_population {population!r} is not a positive whole number")
        area = known.get(code) or Area(code=code)
        if area.id is not None and area.level != level and any(a.parent_id == area.id for a in known.values()):
            raise AreaImportError(f"line {line}: {code} has areas under it, so its level cannot change from "
                                  f"{area.level} to {level}")
        old_path = area.path if area.id is not None else None
        area.name, area.level, area.parent = name, level, parent
        area.adult_population = int(population) if population else None
        area.responsible_unit = (row.get("responsible_unit") or "").strip() or None
        session.add(area)
        session.flush()
        area.path = f"{parent.path if parent else '/'}{area.id}/"
        if old_path is not None and old_path != area.path:
            _move_subtree(known.values(), old_path, area.path)
        known[code] = area
        count += 1
    if count == 0:
        raise AreaImportError("the file has no rows")
    return count


def _move_subtree(areas, old_path: str, new_path: str) -> None:
    """Give every area below ``old_path`` the same place below ``new_path``."""
    for below in areas:
        if below.path.startswith(old_path) and below.path != old_path:
            below.path = new_path + below.path[len(old_path):]
