"""Responsible units (帮包单位/责任单位): import from CSV, edit, and which units an account may see."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from survey.csv_files import csv_reader
from survey.models import Area, Unit, User, unit_account, unit_community

UNIT_COLUMNS = ("name", "contact", "phone", "communities", "grids")
# Community codes in one cell: separated by semicolons (half or full width), 、, commas or spaces.
SEPARATORS = re.compile(r"[;；,，、\s]+")


class UnitError(ValueError):
    """A unit that cannot be saved, or a bad units CSV (the message names the line); fit to show."""


def split_codes(text: str) -> list[str]:
    """Return the community codes written in one cell, in order, without repeats.

    >>> split_codes("D01S1C1；D01S1C2、D01S1C1")
    ['D01S1C1', 'D01S1C2']
    """
    return list(dict.fromkeys(code for code in SEPARATORS.split(text or "") if code))


def _communities(session: Session, codes: list[str]) -> tuple[list[Area], list[str]]:
    found = {a.code: a for a in session.scalars(select(Area).where(Area.code.in_(codes)))} if codes else {}
    unknown = [c for c in codes if c not in found or found[c].level != "community"]
    return [found[c] for c in codes if c in found and found[c].level == "community"], unknown


def save_unit(session: Session, unit: Unit | None, name: str, contact: str, phone: str, community_codes: list[str],
              grids: str = "") -> Unit:
    """Create a unit (``unit`` None) or change one; raise UnitError with a message for the page."""
    name, contact, phone, grids = name.strip(), contact.strip(), phone.strip(), grids.strip()
    if not name or len(name) > 200:
        raise UnitError("单位名称不能为空，且不超过200个字")
    if len(contact) > 100 or len(phone) > 40 or len(grids) > 1000:
        raise UnitError("联系人不超过100个字，电话不超过40个字，网格/楼栋不超过1000个字")
    same = session.scalar(select(Unit).where(Unit.name == name))
    if same is not None and same is not unit:
        raise UnitError(f"已有名为 {name} 的单位")
    communities, unknown = _communities(session, community_codes)
    if unknown:
        raise UnitError(f"没有这些社区编码：{'、'.join(unknown)}")
    unit = unit or Unit()
    unit.name, unit.contact, unit.phone, unit.grids = name, contact, phone, grids
    unit.communities = communities
    session.add(unit)
    session.flush()
    return unit


def import_units(session: Session, text: str) -> int:
    """Create or update units from CSV text (columns ``UNIT_COLUMNS``, by name); return rows read.

    ``communities`` lists community codes (``D01S1C1;D01S1C2``); an updated unit's list is
    replaced. The whole file is applied or nothing is (the caller's transaction).
    """
    reader = csv_reader(text, UnitError)
    fields = [f.strip() for f in reader.fieldnames or []]
    reader.fieldnames = fields
    missing = [c for c in ("name", "communities") if c not in fields]
    if missing:
        raise UnitError(f"line 1: missing column(s) {', '.join(missing)}; expected {','.join(UNIT_COLUMNS)}")
    known = {u.name: u for u in session.scalars(select(Unit))}
    seen: set[str] = set()
    count = 0
    for row in reader:
        line = reader.line_num
        name = (row.get("name") or "").strip()
        if not name:
            raise UnitError(f"line {line}: name is required")
        if name in seen:
            raise UnitError(f"line {line}: unit {name} appears twice in the file")
        seen.add(name)
        codes = split_codes(row.get("communities") or "")
        if not codes:
            raise UnitError(f"line {line}: unit {name} names no community code")
        try:
            save_unit(session, known.get(name), name, row.get("contact") or "", row.get("phone") or "", codes,
                      row.get("grids") or "")
        except UnitError as exc:
            raise UnitError(f"line {line}: {exc}") from None
        count += 1
    if count == 0:
        raise UnitError("the file has no rows")
    return count


def unit_of(session: Session, user: User) -> Unit | None:
    """Return the unit of a unit account (None for any other account)."""
    if user.role != "unit":
        return None
    return session.scalar(select(Unit).join(unit_account, unit_account.c.unit_id == Unit.id)
                          .where(unit_account.c.user_id == user.id))


def units_by_community(session: Session, area_ids: list[int]) -> dict[int, list[Unit]]:
    """Return {community id: its units}, for the default unit of a new task and the problem list."""
    out: dict[int, list[Unit]] = {}
    if not area_ids:
        return out
    rows = session.execute(select(unit_community.c.area_id, Unit).join(Unit, Unit.id == unit_community.c.unit_id)
                           .where(unit_community.c.area_id.in_(area_ids)).order_by(Unit.name)).all()
    for area_id, unit in rows:
        out.setdefault(area_id, []).append(unit)
    return out
